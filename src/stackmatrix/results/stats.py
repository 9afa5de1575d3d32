"""A variant's ``stats.json``: the names the engine's sampler writes and the report reads."""

from __future__ import annotations

# The host side of a variant (the test command and what it starts), sampled beside the
# containers under this name: often the bottleneck of a run (pytest itself).
HOST_SERVICE = "tests (host)"
