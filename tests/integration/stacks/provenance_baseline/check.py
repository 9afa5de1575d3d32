"""The suite run against the version server: it speaks protocol 1 only, so on a server of
another major version ``test_speaks_protocol_1`` fails where the variant is strict (MODE=strict);
``test_replies`` passes whatever the version. Writes its own JUnit report."""

import os
import socket
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

host, port = os.environ["APP_ADDR"].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=10) as conn:
    reply = conn.makefile().readline().strip()
print(f"variant {os.environ['STACKMATRIX_VARIANT']}: server said {reply!r}")
version = reply.removeprefix("version ")
strict = os.environ.get("MODE") == "strict"
speaks = version.startswith("1.") or not strict
message = quoteattr(f"protocol 1 wanted, got {version}")
failure = "" if speaks else f"<failure message={message}/>"
Path(os.environ["STACKMATRIX_JUNIT"]).write_text(
    '<?xml version="1.0" encoding="utf-8"?>\n'
    f'<testsuite name="version_check" tests="2" failures="{0 if speaks else 1}">'
    f'<testcase classname="version_check" name="test_speaks_protocol_1">{failure}</testcase>'
    f'<testcase classname="version_check" name="test_replies"/>'
    "</testsuite>\n",
    encoding="utf-8",
)
sys.exit(0 if speaks else 1)
