"""Test command of the hostile axis value test: the value must arrive unchanged everywhere.

It compares the value from argv (${{ matrix.v }} in the command), from tests.env, from
STACKMATRIX_AXIS_V, and from inside the service (its environment, set by ${{ matrix.v }} in
the compose overlay) with the list of values the test wrote, and writes a JUnit report.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

expected = json.loads(Path("values.json").read_text(encoding="utf-8"))
seen = {
    "argv": sys.argv[1],
    "tests.env": os.environ["FROM_TEMPLATE"],
    "STACKMATRIX_AXIS_V": os.environ["STACKMATRIX_AXIS_V"],
    "service": subprocess.run(
        [
            "docker",
            "compose",
            "-p",
            os.environ["STACKMATRIX_PROJECT"],
            "-f",
            str(Path(os.environ["STACKMATRIX_JUNIT"]).with_name("compose.yaml")),
            "exec",
            "-T",
            "box",
            "printenv",
            "HOSTILE",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.removesuffix("\n"),
}
value = seen["STACKMATRIX_AXIS_V"]
problems = [f"{where}: {got!r} != {value!r}" for where, got in seen.items() if got != value]
if len(sys.argv) != 2:
    problems.append(f"the value arrived as {len(sys.argv) - 1} arguments: {sys.argv[1:]!r}")
if value not in expected:
    problems.append(f"{value!r} is none of the values of the matrix")
failure = f"<failure message={quoteattr('; '.join(problems))}/>" if problems else ""
with Path(os.environ["STACKMATRIX_JUNIT"]).open("w", encoding="utf-8") as report:
    report.write(
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="values">'
        f'<testcase classname="value_check" name="test_value_arrives">{failure}</testcase>'
        "</testsuite>\n"
    )
print("\n".join(problems) or "the value arrived unchanged everywhere")
sys.exit(1 if problems else 0)
