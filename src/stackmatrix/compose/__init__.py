"""compose: one variant rendered into one Compose document (``render``), Compose files merged
the way ``docker compose -f a -f b`` does (``merge``), and the label names every object
carries (``labels``).

May import: ``matrix``, ``spec``, ``redact``, ``errors``. Pure: data in, data out.
"""
