"""results: what a run produced, as data and on disk.

Owns: ``Status``, ``VariantResult`` and the run journal ``run.json`` (``journal``), the run id,
the spec digest and ``OUT/runs/<run-id>`` with its ``latest`` link (``run_dir``), and atomic
and private file writes (``files``), and the names a variant's ``stats.json`` shares between
the sampler and the report (``stats``).

May import: ``matrix``, ``spec``, ``errors``. Pure.
"""
