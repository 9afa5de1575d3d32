"""report: what people read after a run, from one or more run directories.

Owns: the report model read from run directories (``model``), the comparison with a baseline
(``baseline``), ``results.json`` and merged JUnit read back as a baseline (``results_file``,
``merged_junit``), what to run again (``rerun``), the words and icons of every enum
(``symbols``), plain text and Markdown (``text``, ``changes``), ``report.html`` (``html``),
resource plots (``plots``), and writing all of them (``build``).

May import: ``junit``, ``results``, ``matrix``, ``spec``, ``errors``, ``format``. Never the
engine or python-on-whales; nothing CI-specific (that is ``ci``).
"""
