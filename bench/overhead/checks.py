"""The benchmark stacks' test suite: a dozen short checks against the two services.

Reads ECHO_ADDR and KV_ADDR (``127.0.0.1:PORT``) and EXPECT (the variant's tag) from the
environment, writes a JUnit report to the path in STACKMATRIX_JUNIT (or JUNIT), prints how
long the checks took, and exits 1 when one fails. Each check then pauses CHECK_SECONDS
(default 0.1), like a small real test.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from xml.etree import ElementTree as ET

STARTED = time.perf_counter()
PAUSE = float(os.environ.get("CHECK_SECONDS", "0.1"))


def ask(address: str, line: str) -> str:
    """Send one line to a service and return its whole reply."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(line.encode() + b"\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    return reply.decode()


def expect_reply(address: str, line: str, wanted: str) -> Callable[[], None]:
    """A check that *line* sent to *address* gets the reply *wanted*."""

    def check() -> None:
        reply = ask(address, line)
        if reply != wanted:
            raise AssertionError(f"sent {line!r}, got {reply!r}, wanted {wanted!r}")

    return check


def checks() -> dict[str, Callable[[], None]]:
    """Name -> check; each raises AssertionError when the stack misbehaves."""
    echo, kv, expect = os.environ["ECHO_ADDR"], os.environ["KV_ADDR"], os.environ["EXPECT"]
    found: dict[str, Callable[[], None]] = {}
    for number in range(5):
        text = f"hello {number}"
        found[f"test_echo_{number}"] = expect_reply(echo, text, f"echo-{expect}:{text}\n")
        text = f"key{number}=value"
        found[f"test_kv_{number}"] = expect_reply(kv, text, f"kv-{expect}:{text}\n")
    found["test_echo_ping"] = expect_reply(echo, "PING", "+PONG\r\n")
    found["test_kv_ping"] = expect_reply(kv, "PING", "+PONG\r\n")
    return found


def main() -> int:
    """Run every check, write the JUnit report, exit 1 on any failure."""
    suite = ET.Element("testsuite", {"name": "overhead-checks"})
    failures = 0
    for name, check in checks().items():
        began = time.perf_counter()
        case = ET.SubElement(suite, "testcase", {"classname": "checks", "name": name})
        try:
            check()
            time.sleep(PAUSE)
        except (AssertionError, OSError) as error:
            failures += 1
            ET.SubElement(case, "failure", {"message": str(error)[:200]})
        case.set("time", f"{time.perf_counter() - began:.3f}")
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    root = ET.Element("testsuites")
    root.append(suite)
    junit = os.environ.get("STACKMATRIX_JUNIT") or os.environ.get("JUNIT") or "junit.xml"
    ET.ElementTree(root).write(junit, encoding="utf-8", xml_declaration=True)
    elapsed = time.perf_counter() - STARTED
    print(f"{len(suite) - failures}/{len(suite)} checks passed in {elapsed:.3f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
