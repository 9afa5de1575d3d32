"""matrix: a ``Spec``'s axes, excludes and includes expanded into ordered ``Variant`` values,
exactly as GitHub Actions expands ``strategy.matrix``, and the choice of which variants a run
takes (``--only``, ``--shard I/N``, ``--jobs``).

May import: ``spec``, ``errors``. Pure.
"""
