"""Test command of the secret tests: prints every secret it was given, puts them in its JUnit
failure message and text, and fails, as a careless test suite does."""

import os
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

names = os.environ["LEAKED_NAMES"].split(",")
leaked = " ".join(f"{name}={os.environ[name]}" for name in names)
print(f"argv: {sys.argv[1:]}")
print(f"connecting with {leaked}")
with Path(os.environ["STACKMATRIX_JUNIT"]).open("w", encoding="utf-8") as report:
    report.write(
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="leaky">'
        '<testcase classname="leaky_check" name="test_login" file="leaky_check.py" line="9">'
        f"<failure message={quoteattr('login refused: ' + leaked)}>{escape(leaked)}</failure>"
        "</testcase></testsuite>\n"
    )
sys.exit(1)
