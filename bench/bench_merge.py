"""Time merging 200 JUnit files x 500 testcases: stackmatrix's merge vs ``junitparser merge``.

Prints JSON: the median of 3 runs of each, in seconds, and the testcase counts written.
Usage: python bench/bench_merge.py [--files N] [--cases N] [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

from junitparser import JUnitXml
from junitparser import cli as junitparser_cli

from stackmatrix.junit.merge import JunitInput, merge_junit
from stackmatrix.junit.write import read_counts

# `junitparser merge PATHS... OUTPUT`, called in-process; typed here since junitparser is not.
junitparser_merge: Callable[[list[str], str], int] = junitparser_cli.merge


def write_inputs(folder: Path, files: int, cases: int) -> list[Path]:
    """pytest-shaped reports, one per variant; 1 in 20 testcases fails, 1 in 50 is skipped."""
    paths = []
    for index in range(files):
        suite = ET.Element(
            "testsuite",
            {"name": "pytest", "timestamp": f"2026-03-14T09:{index // 60:02d}:{index % 60:02d}"},
        )
        for case_no in range(cases):
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "classname": f"tests.integration.test_mod{case_no % 25}",
                    "name": f"test_case_{case_no}",
                    "time": "0.012",
                },
            )
            if case_no % 20 == 7:
                failure = ET.SubElement(case, "failure", {"message": "assert 1 == 2"})
                failure.text = "def test():\n>       assert 1 == 2\nE       assert 1 == 2\n"
            elif case_no % 50 == 3:
                ET.SubElement(case, "skipped", {"message": "redis is off"})
            out = ET.SubElement(case, "system-out")
            out.text = "log line\n" * 3
        root = ET.Element("testsuites", {"name": "pytest tests"})
        root.append(suite)
        path = folder / f"variant-{index:03d}.xml"
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        paths.append(path)
    return paths


def median_seconds(action: Callable[[], None], repeat: int) -> float:
    """Median wall time of *repeat* runs of *action*."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stackmatrix-bench-") as tmp:
        folder = Path(tmp)
        paths = write_inputs(folder, args.files, args.cases)
        ours_out = folder / "ours.xml"
        theirs_out = folder / "junitparser.xml"
        inputs = [
            JunitInput(p, f"v{i:03d}", {"db": str(i % 3), "cache": "on"})
            for i, p in enumerate(paths)
        ]

        def ours() -> None:
            merge_junit(inputs, ours_out)

        def theirs() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                junitparser_merge([str(p) for p in paths], str(theirs_out))

        ours_s = median_seconds(ours, args.repeat)
        theirs_s = median_seconds(theirs, args.repeat)
        theirs_tests = JUnitXml.fromfile(str(theirs_out)).tests
        result = {
            "files": args.files,
            "testcases_per_file": args.cases,
            "repeat": args.repeat,
            "stackmatrix_merge_s": round(ours_s, 3),
            "junitparser_merge_s": round(theirs_s, 3),
            "ratio": round(ours_s / theirs_s, 3),
            "stackmatrix_testcases_out": read_counts(ours_out).total,
            "junitparser_testcases_out": theirs_tests,
            "input_megabytes": round(sum(p.stat().st_size for p in paths) / 2**20, 1),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
