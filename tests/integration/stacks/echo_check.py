"""A tiny test suite run by stackmatrix against the echo stack; writes its own JUnit report.

CHECK_MODE: pass (default), fail, hang, nojunit, fork-hang, flaky (fails the first time only),
leave-child (passes, leaving a background child running).
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

mode = os.environ.get("CHECK_MODE", "pass")
if mode in {"hang", "fork-hang"}:
    if mode == "fork-hang":
        with Path(os.environ["CHILD_PID_FILE"]).open("w") as handle:
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            handle.write(str(child.pid))
    print("hanging", flush=True)
    time.sleep(600)

if mode == "leave-child":
    with Path(os.environ["CHILD_PID_FILE"]).open("w") as handle:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        handle.write(str(child.pid))

host, port = os.environ["ECHO_ADDR"].rsplit(":", 1)
started = time.monotonic()
with socket.create_connection((host, int(port)), timeout=5) as conn:
    conn.sendall(b"hi\n")
    reply = conn.recv(200).decode().strip()
expected = f"{os.environ['EXPECT']}:hi"
print(f"variant {os.environ['STACKMATRIX_VARIANT']}: echo replied {reply!r}")
first_time = False
if mode == "flaky":
    marker = Path(os.environ["FLAKY_MARKER"])
    first_time = not marker.exists()
    marker.touch()
ok = reply == expected and mode != "fail" and not first_time
failure = "" if ok else f"<failure message={quoteattr(f'expected {expected!r}, got {reply!r}')}/>"
if mode != "nojunit":
    with Path(os.environ["STACKMATRIX_JUNIT"]).open("w", encoding="utf-8") as report:
        report.write(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuite name="echo" tests="2" failures="{0 if ok else 1}">'
            f'<testcase classname="echo_check" name="test_reply" '
            f'time="{time.monotonic() - started:.3f}">'
            f"{failure}</testcase>"
            '<testcase classname="echo_check" name="test_env"/>'
            "</testsuite>\n"
        )
sys.exit(0 if ok else 1)
