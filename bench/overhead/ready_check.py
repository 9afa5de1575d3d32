"""The readiness benchmark's test: the one service of the variant answers PING right away.

The service's address is the only ``STACKMATRIX_<SERVICE>_7000`` variable stackmatrix sets.
Writes a one-testcase JUnit report to STACKMATRIX_JUNIT; exits 1 when the service does not
answer (which is what happens when a probe let the tests start too early).
"""

from __future__ import annotations

import os
import socket
import sys
from xml.etree import ElementTree as ET


def ping(address: str) -> str:
    """The service's reply to PING, or why there is none."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"PING\n")
            return conn.recv(64).decode() or "connection closed without a reply"
    except OSError as error:
        return f"{type(error).__name__}: {error}"


def main() -> int:
    """Ping the service and write the report."""
    address = next(
        v for k, v in os.environ.items() if k.startswith("STACKMATRIX_") and k.endswith("_7000")
    )
    reply = ping(address)
    suite = ET.SubElement(ET.Element("testsuites"), "testsuite", {"name": "ready", "tests": "1"})
    case = ET.SubElement(suite, "testcase", {"classname": "ready", "name": "test_answers_ping"})
    ok = reply.startswith("+PONG")
    if not ok:
        suite.set("failures", "1")
        ET.SubElement(case, "failure", {"message": reply[:200]})
    ET.ElementTree(suite).write(os.environ["STACKMATRIX_JUNIT"], encoding="utf-8")
    print(f"PING -> {reply.strip()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
