"""spec: the matrix file, from bytes to a validated, immutable ``Spec``.

Owns: YAML loading with the position of every key (``source``), the pydantic models
(``models``), matrix values and their text (``values``), the two template languages
(``templates``), checks that span several keys (``checks``), loading with profiles and every
problem as ``FILE:LINE:COL`` (``load``), and the JSON Schema generated from the models
(``schema``).

May import: ``errors`` only. Pure: no engine, no files but the matrix file and the compose
files it names.
"""
