"""Test command of the interrupt tests: variant b's tests start only once variant a is recorded.

So a is finished (and its reports kept) before b is interrupted in a later phase. Then it runs
the echo check of the integration tests.
"""

import json
import os
import runpy
import time
from pathlib import Path

if os.environ.get("STACKMATRIX_AXIS_FLAVOR") == "b":
    journal = Path(os.environ["STACKMATRIX_JUNIT"]).parent.parent / "run.json"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            ids = {v["id"] for v in json.loads(journal.read_text())["variants"]}
        except (OSError, ValueError, KeyError):
            ids = set()
        if "flavor-a" in ids:
            break
        time.sleep(0.2)
runpy.run_path("echo_check.py", run_name="__main__")
