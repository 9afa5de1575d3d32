"""A user project's noxfile: every variant of matrix.yaml becomes a nox session.

nox -l               # matrix-flavor-a, matrix-flavor-b and matrix
nox -j 2 -s matrix   # both variants side by side, then the merged report
nox -t flavor-a      # only the variants whose flavor is a
"""

from __future__ import annotations

import nox

from stackmatrix.nox import matrix_sessions

nox.options.sessions = ["matrix"]

matrix_sessions("matrix.yaml")
