"""Test command that writes a hostile JUnit report, chosen by the variant's `junit` axis.

xxe: an external entity naming a local file; dtd: an external DTD on a local HTTP port;
bomb: a billion-laughs entity bomb; huge: a 24 MiB attribute; badutf8: invalid UTF-8 and
terminal escapes. Exits 0: only the report can tell that something is wrong.
"""

import os
from pathlib import Path

kind = os.environ["STACKMATRIX_AXIS_JUNIT"]
out = os.environ["STACKMATRIX_JUNIT"]
head = '<?xml version="1.0" encoding="utf-8"?>\n'
case = '<testcase classname="c" name="ok"/>'
if kind == "xxe":
    planted = os.environ["PLANTED_FILE"]
    doc = (
        head + f'<!DOCTYPE testsuite [<!ENTITY xxe SYSTEM "file://{planted}">]>\n'
        '<testsuite name="s"><testcase classname="c" name="t">'
        '<failure message="&xxe;">&xxe;</failure></testcase></testsuite>'
    )
elif kind == "dtd":
    port = os.environ["DTD_PORT"]
    doc = (
        head + f'<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:{port}/evil.dtd">\n'
        f'<testsuite name="s">{case}</testsuite>'
    )
elif kind == "bomb":
    entities = '<!ENTITY lol0 "lol">'
    for level in range(1, 10):
        entities += f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">'
    doc = (
        head + f"<!DOCTYPE testsuite [{entities}]>\n"
        '<testsuite name="s"><testcase classname="c" name="t">'
        '<failure message="&lol9;">&lol9;</failure></testcase></testsuite>'
    )
elif kind == "huge":
    doc = (
        head
        + '<testsuite name="s"><testcase classname="c" name="t"><failure message="'
        + "A" * (24 * 1024 * 1024)
        + f'"/></testcase>{case}</testsuite>'
    )
elif kind == "badutf8":
    doc = ""
    with Path(out).open("wb") as raw:
        raw.write(
            head.encode()
            + b'<testsuite name="s"><testcase classname="c" name="caf\xe9">'
            + b'<failure message="red \x1b[31mtext\x1b[0m and bytes \xff\xfe\xc3"/>'
            + f"</testcase>{case}</testsuite>".encode()
        )
else:
    raise SystemExit(f"unknown kind {kind!r}")
if doc:
    with Path(out).open("w", encoding="utf-8") as report:
        report.write(doc)
