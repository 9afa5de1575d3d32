"""Pure parts of running: shards, --only, exit codes, names, redaction, process groups."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackmatrix.engine.processes import run_logged
from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.matrix.select import select_only, select_shard
from stackmatrix.redact import MASK, format_command, redact_env, redact_text
from stackmatrix.results.journal import (
    RunJournal,
    Status,
    TestCounts,
    VariantResult,
    exit_code_of,
    parallelism,
)
from stackmatrix.spec.values import env_name


def _variants(n: int) -> list[Variant]:
    return [Variant(id=f"v-{i}", values={"v": str(i)}) for i in range(n)]


@given(st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=12))
def test_shards_cover_every_variant_exactly_once(n: int, count: int) -> None:
    variants = _variants(n)
    shards = [select_shard(variants, f"{i}/{count}") for i in range(1, count + 1)]
    ids = [v.id for shard in shards for v in shard]
    assert sorted(ids) == sorted(v.id for v in variants)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1/0", "x", "1/2/3", "a/b"])
def test_bad_shards_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        select_shard(_variants(3), bad)


def test_only_accepts_ids_and_patterns_and_names_unknown_ones() -> None:
    variants = _variants(12)
    assert [v.id for v in select_only(variants, ["v-1*"])] == ["v-1", "v-10", "v-11"]
    with pytest.raises(UsageError, match="no such variant") as info:
        select_only(variants, ["v-99"])
    assert "v-99" in str(info.value)


def _result(status: Status) -> VariantResult:
    return VariantResult(id="x", values={}, status=status)


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([Status.PASSED, Status.EXPERIMENTAL_FAILED], 0),
        ([Status.PASSED, Status.FAILED], 1),
        ([Status.FAILED, Status.CANCELLED], 1),
        ([Status.FAILED, Status.ERROR], 3),
        ([Status.PASSED, Status.INTERRUPTED], 130),
        ([], 0),
    ],
)
def test_exit_codes_follow_the_design(statuses: list[Status], code: int) -> None:
    assert exit_code_of([_result(s) for s in statuses], interrupted=False) == code


def test_interrupted_run_exits_130_whatever_finished() -> None:
    assert exit_code_of([_result(Status.PASSED)], interrupted=True) == 130


def test_env_names_are_shell_safe() -> None:
    assert env_name("db", "5432") == "STACKMATRIX_DB_5432"
    assert env_name("my-cache.svc", "53/udp") == "STACKMATRIX_MY_CACHE_SVC_53_UDP"
    assert env_name("axis", "python version") == "STACKMATRIX_AXIS_PYTHON_VERSION"


def test_secrets_are_masked_in_env_urls_and_commands() -> None:
    env = {
        "DB_PASSWORD": "hunter22",
        "API_TOKEN": "abc123",
        "DATABASE_URL": "postgresql://app:s3cret@127.0.0.1:5/db",
        "HOME": "/root",
    }
    safe = redact_env(env)
    assert safe["DB_PASSWORD"] == MASK
    assert safe["API_TOKEN"] == MASK
    assert safe["DATABASE_URL"] == f"postgresql://app:{MASK}@127.0.0.1:5/db"
    assert safe["HOME"] == "/root"
    assert "hunter22" not in format_command(["login", "--password", "hunter22"], ["hunter22"])
    assert redact_text("x=hunter22 y", ["hunter22"]) == f"x={MASK} y"


def test_journal_round_trips_through_json(tmp_path: Path) -> None:
    result = VariantResult(
        id="pg-15", values={"pg": "15"}, status=Status.FAILED, tests=TestCounts(3, 2, 1, 0, 0),
        phases={"up": 1.5}, ports={"db": {"5432": "127.0.0.1:4000"}},
    )  # fmt: skip
    journal = RunJournal(
        run_id="r",
        name="n",
        spec_file="m.yaml",
        spec_digest="d",
        started_at=1.0,
        variants=(result,),
    )
    journal.write(tmp_path)
    again = RunJournal.read(tmp_path)
    assert again == journal
    assert again.variants[0].status is Status.FAILED


def test_a_hung_process_group_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    outcome = run_logged(
        ["sh", "-c", script], log_path=tmp_path / "log", env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path, timeout=1, cancel=threading.Event(),
    )  # fmt: skip
    assert outcome.timed_out
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    assert (
        not Path(f"/proc/{child}").exists()
        or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    )
    assert "killed after the 1 s timeout" in (tmp_path / "log").read_text()


def test_a_missing_command_is_reported_not_raised(tmp_path: Path) -> None:
    outcome = run_logged(
        ["no-such-command-xyz"], log_path=tmp_path / "log", env={}, cwd=tmp_path,
        timeout=5, cancel=threading.Event(),
    )  # fmt: skip
    assert outcome.exit_code is None
    assert "cannot start 'no-such-command-xyz'" in outcome.start_error


@pytest.mark.parametrize(
    ("spans", "most"),
    [
        ([], 1),
        ([(0, 5)], 1),
        ([(0, 5), (1, 6), (2, 3)], 3),
        ([(0, 5), (5, 9), (9, 12)], 1),  # one after the other, each starting as one ends
        ([(0, 4), (1, 2), (3, 8), (5, 6)], 2),
    ],
)
def test_parallelism_is_the_most_variants_running_at_one_moment(
    spans: list[tuple[float, float]], most: int
) -> None:
    results = [
        replace(_result(Status.PASSED), id=f"v{i}", started_at=start, finished_at=end)
        for i, (start, end) in enumerate(spans)
    ]
    assert parallelism(results) == most
