"""A realistic run directory (five variants of a shop's stack) for the report tests and the
screenshot in docs/; the files look like what a real run leaves behind."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from stackmatrix.junit.write import write_error_junit
from stackmatrix.results.files import write_json_atomic
from stackmatrix.results.journal import RunJournal, Status, VariantResult
from stackmatrix.results.journal import TestCounts as Counts

T0 = 1_773_480_000.0  # 2026-03-14, a fixed clock keeps reports reproducible

TESTS = [
    ("tests.integration.test_orders", "test_create_order"),
    ("tests.integration.test_orders", "test_list_orders"),
    ("tests.integration.test_orders", "test_order_total_uses_numeric"),
    ("tests.integration.test_orders", "test_jsonb_search"),
    ("tests.integration.test_cache", "test_cache_hit"),
    ("tests.integration.test_cache", "test_cache_eviction"),
    ("tests.integration.test_migrations", "test_upgrade"),
    ("tests.integration.test_migrations", "test_downgrade"),
]

NUMERIC_FAILURE = """db = <psycopg.Connection [IDLE] (host=127.0.0.1 database=postgres)>

    def test_order_total_uses_numeric(db):
        order = create_order(db, items=[("apple", "10.50")])
>       assert order.total == 10.50
E       AssertionError: assert Decimal('10.5') == 10.50

tests/integration/test_orders.py:41: AssertionError"""

EVICTION_FAILURE = """    def test_cache_eviction(cache):
        fill(cache, 2_000)
>       assert cache.info("stats")["evicted_keys"] > 0
E       assert 0 > 0

tests/integration/test_cache.py:33: AssertionError"""


@dataclass(frozen=True)
class _Plan:
    id: str
    values: Mapping[str, str | bool]
    status: Status
    outcomes: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> result
    experimental: bool = False
    reason: str = ""
    peak_memory: int | None = None


def _plans() -> list[_Plan]:
    redis_off = {
        "test_cache_hit": ("skipped", "redis is off in this variant", ""),
        "test_cache_eviction": ("skipped", "redis is off in this variant", ""),
    }
    old_pg = {"test_jsonb_search": ("skipped", "jsonb path queries need PostgreSQL 14+", "")}
    return [
        _Plan(
            "postgres-13_redis-off",
            {"postgres": "13", "redis": "off"},
            Status.FAILED,
            {
                **redis_off,
                **old_pg,
                "test_order_total_uses_numeric": (
                    "failure",
                    "AssertionError: assert Decimal('10.5') == 10.50",
                    NUMERIC_FAILURE,
                ),
            },
            reason="1 test failed",
            peak_memory=201 * 2**20,
        ),
        _Plan(
            "postgres-15_redis-off",
            {"postgres": "15", "redis": "off"},
            Status.PASSED,
            redis_off,
            peak_memory=214 * 2**20,
        ),
        _Plan(
            "postgres-15_redis-on",
            {"postgres": "15", "redis": "on"},
            Status.PASSED,
            peak_memory=236 * 2**20,
        ),
        _Plan(
            "postgres-17_redis-off",
            {"postgres": "17", "redis": "off"},
            Status.ERROR,
            reason="service db did not become healthy within 2m0s",
        ),
        _Plan(
            "postgres-17_redis-on",
            {"postgres": "17", "redis": "on", "experimental": True},
            Status.EXPERIMENTAL_FAILED,
            {"test_cache_eviction": ("failure", "assert 0 > 0", EVICTION_FAILURE)},
            experimental=True,
            reason="1 test failed",
            peak_memory=251 * 2**20,
        ),
    ]


def write_pytest_junit(path: Path, outcomes: Mapping[str, tuple[str, str, str]]) -> Counts:
    """A pytest-style JUnit file of the sample tests; *outcomes* overrides "passed" by name."""
    suite = ET.Element("testsuite", {"name": "pytest", "hostname": "runner-1"})
    tally = {"passed": 0, "failure": 0, "error": 0, "skipped": 0}
    for index, (classname, name) in enumerate(TESTS):
        case = ET.SubElement(
            suite, "testcase", {"classname": classname, "name": name, "time": f"{0.05 * index:.3f}"}
        )
        kind, message, text = outcomes.get(name, ("passed", "", ""))
        tally[kind] += 1
        if kind != "passed":
            result = ET.SubElement(case, kind, {"message": message})
            result.text = text or None
    root = ET.Element("testsuites", {"name": "pytest tests"})
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return Counts(
        total=len(TESTS),
        passed=tally["passed"],
        failed=tally["failure"],
        errors=tally["error"],
        skipped=tally["skipped"],
    )


def _write_stats(path: Path, services: list[str], seconds: int, seed: int) -> None:
    readings: list[dict[str, dict[str, float]]] = []
    for t in range(seconds):
        containers = {}
        for n, service in enumerate(services):
            wave = math.sin((t + 3 * n + seed) / 4.0)
            base = 180 if service == "db" else 24
            containers[service] = {
                "cpu_percent": round(max(0.0, (35 if service == "db" else 8) * (1 + wave)), 2),
                "memory_bytes": int((base + t * (1.5 if service == "db" else 0.3)) * 2**20),
                "memory_limit_bytes": 2 * 2**30,
                "net_rx_bytes": 1200 * t,
                "net_tx_bytes": 900 * t,
                "block_read_bytes": 4096 * t,
                "block_write_bytes": 8192 * t,
            }
        readings.append(containers)
    peaks = {
        s: {
            "cpu_percent": max(r[s]["cpu_percent"] for r in readings),
            "memory_bytes": max(r[s]["memory_bytes"] for r in readings),
        }
        for s in services
    }
    samples = [{"t": float(t), "containers": r} for t, r in enumerate(readings)]
    write_json_atomic(path, {"interval": 1.0, "samples": samples, "peaks": peaks})


def build_sample_run(run_dir: Path, *, run_id: str = "20260314-0926-a1b2") -> RunJournal:
    """Write a finished run of five variants (one failing only on PostgreSQL 13, one whose
    stack never came up, one experimental failure) into *run_dir* and return its journal."""
    results = []
    for seed, plan in enumerate(_plans()):
        vdir = run_dir / plan.id
        services = ["db", "cache"] if plan.values.get("redis") == "on" else ["db"]
        (vdir / "logs").mkdir(parents=True, exist_ok=True)
        (vdir / "compose.yaml").write_text(
            "services:\n  db:\n    build: {context: images/postgres}\n", encoding="utf-8"
        )
        for service in services:
            (vdir / "logs" / f"{service}.log").write_text(
                f"{service}-1  | ready to accept connections\n", encoding="utf-8"
            )
        if plan.status is Status.ERROR:
            detail = "db-1  | FATAL:  could not create shared memory segment: No space left"
            write_error_junit(
                vdir / "junit.xml", variant_id=plan.id, message=plan.reason, detail=detail
            )
            counts = Counts(total=1, errors=1)
            stats = None
            tests_log = None
        else:
            counts = write_pytest_junit(vdir / "junit.xml", plan.outcomes)
            _write_stats(vdir / "stats.json", services, seconds=40, seed=seed)
            stats = f"{plan.id}/stats.json"
            (vdir / "tests.log").write_text("collected 8 items\n", encoding="utf-8")
            tests_log = f"{plan.id}/tests.log"
            detail = ""
        start = T0 + 2 * seed
        results.append(
            VariantResult(
                id=plan.id,
                values=plan.values,
                status=plan.status,
                experimental=plan.experimental,
                project=f"shop-{plan.id}-{run_id}",
                reason=plan.reason,
                detail=detail,
                exit_code=None if plan.status is Status.ERROR else int(bool(counts.failed)),
                started_at=start,
                finished_at=start + (120.4 if plan.status is Status.ERROR else 47.3 + seed),
                tests=counts,
                peak_memory_bytes=plan.peak_memory,
                compose_file=f"{plan.id}/compose.yaml",
                junit=f"{plan.id}/junit.xml",
                tests_log=tests_log,
                stats=stats,
                logs={s: f"{plan.id}/logs/{s}.log" for s in services},
            )
        )
    journal = RunJournal(
        run_id=run_id,
        name="shop",
        spec_file="matrix.yaml",
        spec_digest="sha256:0f3c",
        started_at=T0,
        finished_at=T0 + 131.0,
        exit_code=1,
        jobs=3,
        variants=tuple(results),
        stackmatrix_version="0.1.0",
    )
    journal.write(run_dir)
    return journal
