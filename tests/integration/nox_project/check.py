"""The project's test suite: talks to its variant's echo server and writes a JUnit report.

NOXIT_FAIL=ID,...  the listed variants fail; NOXIT_HANG=DIR  write DIR/<variant> and hang.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

variant = os.environ["STACKMATRIX_VARIANT"]
hang = os.environ.get("NOXIT_HANG")
if hang:
    (Path(hang) / variant).write_text(str(os.getpid()))
    time.sleep(600)

host, port = os.environ["ECHO_ADDR"].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=5) as conn:
    conn.sendall(b"hi\n")
    reply = conn.recv(200).decode().strip()
expected = f"{os.environ['EXPECT']}:hi"
print(f"variant {variant}: echo replied {reply!r}; python {sys.prefix}")
problems = {
    "test_reply": "" if reply == expected else f"expected {expected!r}, got {reply!r}",
    # The tests run with the nox session's environment: its virtualenv's python first on PATH.
    "test_session_venv": ""
    if os.environ.get("VIRTUAL_ENV") == sys.prefix
    else f"python {sys.prefix} is not the session's virtualenv {os.environ.get('VIRTUAL_ENV')}",
    "test_wanted_outcome": "asked to fail by NOXIT_FAIL"
    if variant in os.environ.get("NOXIT_FAIL", "").split(",")
    else "",
}
cases = "".join(
    f'<testcase classname="check" name="{name}">'
    + (f"<failure message={quoteattr(problem)}/>" if problem else "")
    + "</testcase>"
    for name, problem in problems.items()
)
failures = sum(1 for problem in problems.values() if problem)
Path(os.environ["STACKMATRIX_JUNIT"]).write_text(
    f'<?xml version="1.0" encoding="utf-8"?>\n'
    f'<testsuite name="check" tests="{len(problems)}" failures="{failures}">{cases}</testsuite>\n',
    encoding="utf-8",
)
sys.exit(1 if failures else 0)
