"""A tiny suite for the history test: deterministic per night, so the expected counts are known.

It reads the night's number from the file HISTORY_NIGHT_FILE names. On variant ``flavor-a``
test_flaky fails on nights 1, 3 and 4 (zero-based); on ``flavor-b`` test_broken fails from
night 5 on; test_reply (the echo stack answers) always passes. Writes its own JUnit report.
"""

import os
import socket
from pathlib import Path
from xml.sax.saxutils import quoteattr

FLAKY_NIGHTS = {1, 3, 4}
BROKEN_FROM = 5

night = int(Path(os.environ["HISTORY_NIGHT_FILE"]).read_text(encoding="utf-8"))
variant = os.environ["STACKMATRIX_VARIANT"]
host, port = os.environ["ECHO_ADDR"].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=5) as conn:
    conn.sendall(b"hi\n")
    reply = conn.recv(200).decode().strip()

failures = {
    "test_reply": "" if reply.endswith(":hi") else f"no echo: {reply!r}",
    "test_flaky": (
        f"night {night}: the deliberately flaky test failed"
        if variant == "flavor-a" and night in FLAKY_NIGHTS
        else ""
    ),
    "test_broken": (
        f"night {night}: broken since night {BROKEN_FROM}"
        if variant == "flavor-b" and night >= BROKEN_FROM
        else ""
    ),
}
cases = "".join(
    f'<testcase classname="history_check" name="{name}">'
    + (f"<failure message={quoteattr(message)}/>" if message else "")
    + "</testcase>"
    for name, message in failures.items()
)
failed = sum(1 for message in failures.values() if message)
with Path(os.environ["STACKMATRIX_JUNIT"]).open("w", encoding="utf-8") as report:
    report.write(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<testsuite name="history" tests="{len(failures)}" failures="{failed}">{cases}'
        "</testsuite>\n"
    )
print(f"night {night} on {variant}: {failed} failed")
raise SystemExit(1 if failed else 0)
