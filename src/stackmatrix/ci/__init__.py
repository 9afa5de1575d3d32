"""ci: where a run happens and what that place wants.

Owns: the one provider interface and its detection (``provider``), GitHub Actions' groups,
step summary and annotations (``github``), and the matrix JSON for ``strategy.matrix``
(``github_matrix``). Another CI is one new module with one provider class.

May import: ``report``, ``results``, ``matrix``, ``spec``, ``errors``. Never the engine.
"""
