"""A run directory with many failures: *tests* testcases failing on each of eight variants (the
last one experimental), for the tests of GitHub's limits (step summary size, annotations)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from stackmatrix.results.journal import RunJournal, Status, VariantResult
from stackmatrix.results.journal import TestCounts as Counts

T0 = 1_773_480_000.0
VARIANTS = [f"postgres-{13 + n}_python-3.1{n % 4}" for n in range(8)]
EXPERIMENTAL = VARIANTS[-1]


def message(variant: str, n: int) -> str:
    """The required variants fail each test alike; the experimental one fails its own way."""
    if variant == EXPERIMENTAL:
        return f"TimeoutError: test {n} waited 30 s for the queue"
    return f"AssertionError: expected total {n % 10} to equal {n % 10 + 1}"


def build_big_run(
    run_dir: Path, *, tests: int = 250, run_id: str = "20260314-0926-b1g", pad: int = 0
) -> int:
    """Write the run into *run_dir*; return how many failing testcases it has. *pad*: that many
    more characters in each test's name (long parametrized ids)."""
    results = []
    for index, variant in enumerate(VARIANTS):
        vdir = run_dir / variant
        vdir.mkdir(parents=True, exist_ok=True)
        suite = ET.SubElement(ET.Element("testsuites"), "testsuite", {"name": "pytest"})
        for n in range(tests):
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "classname": f"tests.test_orders_{n // 50}",
                    "name": f"test_total[{n}{'x' * pad}]",
                },
            )
            failure = ET.SubElement(case, "failure", {"message": message(variant, n)})
            failure.text = f"tests/test_orders_{n // 50}.py:{10 + n}: AssertionError"
        root = ET.Element("testsuites")
        root.append(suite)
        ET.ElementTree(root).write(vdir / "junit.xml", encoding="utf-8", xml_declaration=True)
        experimental = variant == EXPERIMENTAL
        results.append(
            VariantResult(
                id=variant,
                values={"postgres": str(13 + index), "python": f"3.1{index % 4}"},
                status=Status.EXPERIMENTAL_FAILED if experimental else Status.FAILED,
                experimental=experimental,
                reason=f"{tests} tests failed",
                exit_code=1,
                started_at=T0,
                finished_at=T0 + 30,
                tests=Counts(total=tests, failed=tests),
                junit=f"{variant}/junit.xml",
            )
        )
    RunJournal(
        run_id=run_id,
        name="shop",
        spec_file="matrix.yaml",
        spec_digest="sha256:0f3c",
        started_at=T0,
        finished_at=T0 + 60,
        exit_code=1,
        variants=tuple(results),
        stackmatrix_version="0.1.0",
        matrix_variants=tuple(VARIANTS),
    ).write(run_dir)
    return tests * len(VARIANTS)
