"""cli: the ``stackmatrix`` command line, one module per group of subcommands.

``main`` builds the parser and turns errors into exit codes; ``matrix`` (list, render,
gha-matrix) and ``results`` (merge, report) never load the engine; ``run`` and ``gc`` import
it when they run. May import every other package.
"""
