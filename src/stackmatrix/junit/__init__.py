"""junit: JUnit XML, the format every test runner writes.

Owns: bounded, entity-free reading with one outcome per testcase (``read``), the reports
stackmatrix writes itself and the names that mark a variant (``write``), and the
variant-aware merge of many reports into one (``merge``, with the suites it writes in
``merged_suites``).

May import: ``results``, ``spec``, ``errors``. Pure: used by the engine (a variant's counts,
the error report of a variant without one) and by the reports alike.
"""
