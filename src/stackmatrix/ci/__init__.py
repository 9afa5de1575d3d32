"""ci: where a run happens and what that place wants.

Owns: the one provider interface and its detection (``provider``); GitHub Actions' groups,
step summary (cut to GitHub's 1 MiB) and annotations (10 of each level a step) (``github``),
and the matrix JSON for ``strategy.matrix`` (``github_matrix``); GitLab CI's collapsible
sections (``gitlab``) and its child pipeline (``gitlab_pipeline``). Another CI is one new module
with one provider class.

May import: ``report``, ``results``, ``matrix``, ``spec``, ``errors``. Never the engine.
"""
