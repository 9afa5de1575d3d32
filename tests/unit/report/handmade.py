"""Hand-made run directories for the report tests: any variants, any testcases, any journal
fields (a shard, a run that never finished, test id rewrites), written as a real run writes
them (run.json and each variant's JUnit file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from stackmatrix.junit.write import write_error_junit
from stackmatrix.results.journal import RunJournal, Status, TestCounts, VariantResult

T0 = 1_773_480_000.0

KINDS = {"pass": "passed", "fail": "failure", "error": "error", "skip": "skipped"}


@dataclass(frozen=True)
class Case:
    """One testcase: ``kind`` is pass, fail, error or skip."""

    classname: str
    name: str
    kind: str = "pass"
    message: str = ""


@dataclass(frozen=True)
class Plan:
    """One variant of a hand-made run; ``cases`` None: its stack never ran the tests."""

    id: str
    values: Mapping[str, Any]
    status: Status = Status.PASSED
    cases: Sequence[Case] | None = ()
    reason: str = ""
    experimental: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def write_junit(path: Path, cases: Sequence[Case]) -> TestCounts:
    """A pytest-style JUnit file of *cases*."""
    suite = ET.Element("testsuite", {"name": "pytest"})
    tally = dict.fromkeys(KINDS, 0)
    for case in cases:
        element = ET.SubElement(suite, "testcase", {"classname": case.classname, "name": case.name})
        tally[case.kind] += 1
        if case.kind != "pass":
            ET.SubElement(element, KINDS[case.kind], {"message": case.message})
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return TestCounts(
        total=len(cases),
        passed=tally["pass"],
        failed=tally["fail"],
        errors=tally["error"],
        skipped=tally["skip"],
    )


def write_run(
    run_dir: Path,
    plans: Sequence[Plan],
    *,
    run_id: str = "20260314-092600-00000000000000a1",
    started_at: float = T0,
    finished: bool = True,
    exit_code: int | None = None,
    **journal: Any,
) -> RunJournal:
    """Write a run of *plans* into *run_dir*; *journal* sets any other run.json field."""
    results = []
    for plan in plans:
        vdir = run_dir / plan.id
        if plan.cases is None:
            write_error_junit(vdir / "junit.xml", variant_id=plan.id, message=plan.reason)
            counts = TestCounts(total=1, errors=1)
        else:
            counts = write_junit(vdir / "junit.xml", plan.cases)
        results.append(
            VariantResult(
                id=plan.id,
                values=dict(plan.values),
                status=plan.status,
                experimental=plan.experimental,
                reason=plan.reason,
                started_at=started_at,
                finished_at=started_at + 10,
                tests=counts,
                junit=f"{plan.id}/junit.xml",
                **plan.extra,
            )
        )
    if exit_code is None and finished:
        exit_code = 0 if all(r.status.ok for r in results) else 1
    record = RunJournal(
        run_id=run_id,
        name="shop",
        spec_file="matrix.yaml",
        spec_digest=journal.pop("spec_digest", "sha256:0f3c"),
        started_at=started_at,
        finished_at=started_at + 20 if finished else None,
        exit_code=exit_code,
        variants=tuple(results),
        stackmatrix_version="0.1.0",
        **journal,
    )
    record.write(run_dir)
    return record


def grid_variants(
    postgres: Sequence[str], drivers: Sequence[str]
) -> list[tuple[str, dict[str, str]]]:
    """Ids and values of a postgres x driver matrix, in matrix order."""
    return [
        (f"postgres-{pg}_driver-{drv}", {"postgres": pg, "driver": drv})
        for pg in postgres
        for drv in drivers
    ]
