"""``stackmatrix report`` (and ``merge``) over big generated runs: wall time, CPU time and
peak RSS.

Generates one run directory per size (run.json plus one pytest-shaped JUnit file per variant,
written as XML text directly), then runs ``stackmatrix report RUN_DIR --out OUT`` and
``stackmatrix merge -o FILE RUN_DIR`` as child processes, each bounded by a timeout, and reads
the child's CPU time and peak resident set size from ``wait4`` (``ru_maxrss``).
``junitparser merge`` over the same files is timed too up to ``--junitparser-up-to N``
testcases (it takes minutes).

Prints JSON. Usage:
    python bench/bench_report.py [--sizes 20x10000,20x50000] [--timeout 600] [--junitparser-up-to N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackmatrix.results.journal import RunJournal

SIZES = ((20, 10_000), (20, 50_000))
TRACEBACK = (
    'Traceback (most recent call last):\n  File "tests/test_mod.py", line 42, in test\n'
    "    assert response.status == 200\nAssertionError: assert 503 == 200\n"
)


def _esc(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def junit_text(variant: int, cases: int) -> str:
    """One variant's pytest-shaped report: 1 in 20 testcases fails in every variant, a few
    more fail in this variant only, 1 in 50 is skipped; failures carry a message, a traceback
    and captured output."""
    failure_body = _esc(TRACEBACK)
    out = _esc("GET /api/items -> 503\nretrying in 0.1 s\n")
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">',
        f'<testsuite name="pytest" tests="{cases}" timestamp="2026-03-14T09:00:{variant:02d}">',
    ]
    append = parts.append
    for no in range(cases):
        head = (
            f'<testcase classname="tests.integration.test_mod{no % 250}" '
            f'name="test_case_{no}[param{no % 7}]" time="0.{no % 1000:03d}"'
        )
        if no % 20 == 7 or no % 997 == variant:
            append(
                f'{head}><failure message="AssertionError: assert 503 == {200 + no % 3}">'
                f"{failure_body}</failure><system-out>{out}</system-out></testcase>"
            )
        elif no % 50 == 3:
            append(f'{head}><skipped type="pytest.skip" message="needs redis &gt;= 7"/></testcase>')
        else:
            append(f"{head}/>")
    parts.append("</testsuite></testsuites>\n")
    return "\n".join(parts)


def write_run(folder: Path, variants: int, cases: int) -> Path:
    """A run directory as ``stackmatrix run`` leaves it: run.json and ``<id>/junit.xml``."""
    run_dir = folder / f"run-{variants}x{cases}"
    run_dir.mkdir(parents=True)
    now = time.time()
    ids = [f"db-{i % 5}_cache-{i // 5}" for i in range(variants)]
    results = []
    for index, vid in enumerate(ids):
        (run_dir / vid).mkdir()
        (run_dir / vid / "junit.xml").write_text(junit_text(index, cases), encoding="utf-8")
        failed = sum(1 for no in range(cases) if no % 20 == 7 or no % 997 == index)
        skipped = sum(1 for no in range(cases) if no % 50 == 3 and no % 997 != index)
        results.append(
            {
                "id": vid,
                "values": {"db": str(index % 5), "cache": str(index // 5)},
                "status": "failed",
                "exit_code": 1,
                "started_at": now - 60,
                "finished_at": now - 1,
                "junit": f"{vid}/junit.xml",
                "tests": {
                    "total": cases,
                    "failed": failed,
                    "skipped": skipped,
                    "passed": cases - failed - skipped,
                    "errors": 0,
                },
            }
        )
    journal = {
        "run_id": f"{int(now * 1000) & 0xFFFFFFFFFFFF:016x}",
        "name": "bench-report",
        "spec_file": "matrix.yaml",
        "spec_digest": "0" * 64,
        "started_at": now - 61,
        "finished_at": now,
        "exit_code": 1,
        "jobs": 4,
        "variants": results,
        "matrix_variants": ids,
    }
    # Through the tool's own journal class, so the file is what the code under test writes.
    RunJournal.from_dict(journal).write(run_dir)
    return run_dir


def _session_rss_kib(session: int) -> int:
    """The resident set sizes (KiB) of every process of *session*, added up: the child and
    any process it started (a forked merge). Pages they share count once per process, so
    this is an upper bound of what they hold together."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        proc = Path(entry.path)
        try:
            stat = (proc / "stat").read_text(encoding="ascii", errors="replace")
            # The fields after the name: state, ppid, pgrp, session.
            if int(stat.rpartition(")")[2].split()[3]) != session:
                continue
            status = (proc / "status").read_text(encoding="ascii", errors="replace")
            total += sum(int(ln.split()[1]) for ln in status.splitlines() if ln[:6] == "VmRSS:")
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return total


def measure(argv: Sequence[str], timeout: float, env: dict[str, str]) -> dict[str, Any]:
    """Run *argv* once: wall time, peak RSS of the child (wait4) and the peak of the RSS of
    all its processes added up (sampled every 20 ms), exit code, stderr tail; killed (and
    reported so) after *timeout* seconds."""
    tree_peak = 0
    with tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True
        )
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - began > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            tree_peak = max(tree_peak, _session_rss_kib(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return {
        "command": " ".join(argv),
        "exit_code": proc.returncode,
        "finished": not timed_out,
        "timeout_s": timeout,
        "wall_s": round(wall, 3),
        # CPU seconds of the child (user + system): on a shared machine, what the load leaves
        # of the wall time is noise; this is not.
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is in KiB on Linux
        # wait4 gives the largest of the processes, not their sum: sampled, added up.
        "peak_rss_all_processes_mib": round(max(tree_peak, usage.ru_maxrss) / 1024, 1),
        "stderr_tail": stderr[-1500:] if proc.returncode else "",
    }


def stackmatrix_argv() -> list[str]:
    """The console script next to this interpreter (what users run), else ``-m``."""
    script = Path(sys.executable).with_name("stackmatrix")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "stackmatrix"]


def one_size(
    folder: Path, variants: int, cases: int, timeout: float, *, junitparser: bool
) -> dict[str, Any]:
    """Generate the run, then time report and merge over it."""
    env = {**os.environ, "NO_COLOR": "1"}
    began = time.perf_counter()
    run_dir = write_run(folder, variants, cases)
    generated = time.perf_counter() - began
    junits = sorted(run_dir.glob("*/junit.xml"))
    testcases = variants * cases
    out = folder / f"report-{variants}x{cases}"
    tool = stackmatrix_argv()
    print(f"report {variants}x{cases} ...", file=sys.stderr, flush=True)
    report = measure([*tool, "report", str(run_dir), "--out", str(out)], timeout, env)
    results_json = out / "results.json"
    size = results_json.stat().st_size if report["finished"] and results_json.is_file() else None
    report["results_json_bytes"] = size
    report["results_json_bytes_per_testcase"] = round(size / testcases, 1) if size else None
    report["report_html_mib"] = (
        round((out / "report.html").stat().st_size / 2**20, 1)
        if (out / "report.html").is_file()
        else None
    )
    print(f"merge {variants}x{cases} ...", file=sys.stderr, flush=True)
    merge = measure([*tool, "merge", "-o", str(folder / "merged.xml"), str(run_dir)], timeout, env)
    result: dict[str, Any] = {
        "variants": variants,
        "testcases_per_variant": cases,
        "testcases": testcases,
        "input_mib": round(sum(p.stat().st_size for p in junits) / 2**20, 1),
        "generate_s": round(generated, 2),
        "report": report,
        "merge": merge,
        "junitparser_merge": None,
    }
    if junitparser:
        print(f"junitparser merge {variants}x{cases} ...", file=sys.stderr, flush=True)
        jp = Path(sys.executable).with_name("junitparser")
        argv = [str(jp)] if jp.is_file() else [sys.executable, "-m", "junitparser"]
        result["junitparser_merge"] = measure(
            [*argv, "merge", *map(str, junits), str(folder / "junitparser.xml")], timeout, env
        )
    for step in ("report", "merge", "junitparser_merge"):
        if result[step]:
            result[step]["command"] = result[step]["command"].replace(str(folder), "$TMP")[:240]
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return result


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``20x10000,20x50000`` -> [(20, 10000), (20, 50000)]."""
    sizes = []
    for item in text.split(","):
        variants, _, cases = item.partition("x")
        sizes.append((int(variants), int(cases)))
    return sizes


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(f"{v}x{c}" for v, c in SIZES))
    parser.add_argument("--timeout", type=float, default=600, help="seconds per measurement")
    parser.add_argument(
        "--junitparser-up-to",
        type=int,
        default=0,
        metavar="N",
        help="also time junitparser merge at sizes of at most N testcases (it takes minutes)",
    )
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="stackmatrix-bench-report-") as tmp:
        for variants, cases in parse_sizes(args.sizes):
            folder = Path(tmp) / f"{variants}x{cases}"
            folder.mkdir()
            runs.append(
                one_size(
                    folder,
                    variants,
                    cases,
                    args.timeout,
                    junitparser=variants * cases <= args.junitparser_up_to,
                )
            )
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"timeout_s": args.timeout, "sizes": runs}, indent=2))


if __name__ == "__main__":
    main()
