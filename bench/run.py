"""Run every benchmark of stackmatrix in one go; write bench/results.json, README.md, plot.png.

    python bench/run.py [--rounds 4] [--serial-rounds 3] [--jobs 3] [--quick] [--source head]
    python bench/run.py --only cli|report|overhead12|...   (one benchmark; the rest is kept)

Figures that compare two things are ratios of medians taken in this same run, with the two
sides interleaved round by round, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import bench_overhead as ovh
import bench_publish

BENCH = Path(__file__).parent
ROOT = BENCH.parent
GOALS = {
    "overhead_ratio": 0.85,
    "readiness_latency_s": 0.25,
    # CLI start-up (median of 10 wall times) and `run` to its first engine call.
    "help_s": 0.15,
    "list_s": 0.25,
    "run_first_engine_call_s": 0.3,
    # `report` over 1,000,000 testcases.
    "report_1m_s": 20.0,
    "report_1m_rss_mib": 500.0,
    "results_json_bytes_per_testcase": 60.0,
    "merge_ratio": 1.0,
}
# What --only can name: each is one benchmark, whose figures replace its own in results.json.
BENCHMARKS = ("overhead", "readiness", "expand", "merge", "cli", "report", "overhead12")


def log(message: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


STARTED = time.perf_counter()


def median(values: Sequence[float | None]) -> float | None:
    """Median of the known values, rounded; None when there are none."""
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded, or None."""
    return round(a / b, 3) if a is not None and b else None


def git(*args: str) -> str:
    """Output of a read-only git command in the repository."""
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def machine_facts() -> dict[str, Any]:
    """The commit measured and what it ran on."""
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
    total_kb = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
    docker = json.loads(
        subprocess.run(
            ["docker", "version", "--format", "{{json .}}"],
            capture_output=True, text=True, check=False,
        ).stdout or "{}"
    )  # fmt: skip
    compose = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False
    ).stdout.strip()
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "commit": git("rev-parse", "HEAD"),
        "commit_subject": git("log", "-1", "--format=%s"),
        "worktree_changes_in_src": git("status", "--porcelain", "--", "src").splitlines(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(total_kb / 2**20, 1),
        "kernel": platform.release(),
        "docker_server": (docker.get("Server") or {}).get("Version"),
        "docker_client": (docker.get("Client") or {}).get("Version"),
        "docker_compose": compose,
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def code_under_test(source: str, scratch: Path) -> Iterator[dict[str, str]]:
    """The environment that makes ``python -m stackmatrix`` run the chosen source tree.

    ``worktree``: the checkout as it is; ``head``: the committed tree (``git archive HEAD``),
    so edits in progress elsewhere in the tree are not measured; a path: a copy of ``src``.
    """
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    env.pop("GITHUB_STEP_SUMMARY", None)
    if source == "head":
        target = scratch / "head"
        target.mkdir()
        archive = subprocess.run(
            ["git", "archive", "HEAD", "src"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        env["PYTHONPATH"] = str(target / "src")
    elif source != "worktree":
        env["PYTHONPATH"] = str(Path(source).resolve())
    # Bytecode as an installed package has it (pip compiles at install): an interpreter told
    # not to write any (PYTHONDONTWRITEBYTECODE) would otherwise compile every changed module
    # again in every child, and the start-up figures would count the compiler.
    tree = Path(env.get("PYTHONPATH") or ROOT / "src")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True)
    yield env


class Bench:
    """The repetitions of the engine benchmarks and the run ids they used."""

    def __init__(
        self,
        scratch: Path,
        env: Mapping[str, str],
        jobs: int,
        candidate_env: Mapping[str, str] | None = None,
    ) -> None:
        self.scratch = scratch
        self.env = env
        self.candidate_env = candidate_env
        self.jobs = jobs
        self.count = 0
        self.run_ids: list[str] = []

    def _out(self, kind: str) -> Path:
        self.count += 1
        return self.scratch / f"{self.count:02d}-{kind}"

    def script(self, variants: Sequence[str] = ovh.SCRIPT_VARIANTS) -> dict[str, Any]:
        label = f"bench-{time.strftime('%H%M%S')}-{os.getpid()}-{self.count}"
        self.run_ids.append(label)
        result = ovh.run_script(self._out("script"), label, self.jobs, self.env, variants=variants)
        self._check("script", result)
        return result

    def resting(self) -> dict[str, Any]:
        label = f"bench-{time.strftime('%H%M%S')}-{os.getpid()}-{self.count}-rest"
        self.run_ids.append(label)
        try:
            result = ovh.resting_load(label, self.jobs, self.env)
        except OSError as error:  # no docker to start: recorded, the rounds are kept
            result = {"healthy": False, "machine_cpu_per_s": None, "errors": [str(error)]}
        if result["machine_cpu_per_s"] is None:
            log(f"stacks at rest: NOT MEASURED ({'; '.join(result['errors'])})")
        else:
            log(
                f"{result['stacks']} stacks at rest: {result['machine_cpu_per_s']} busy CPU-s "
                f"a second (without: {result['machine_cpu_per_s_without']})"
            )
        return result

    def stackmatrix(
        self, matrix: Path, jobs: int, *, experimental: bool = False, candidate: bool = False
    ) -> dict[str, Any]:
        env = self.candidate_env if candidate and self.candidate_env else self.env
        what = f"{'candidate' if candidate else 'stackmatrix'} {matrix.name} --jobs {jobs}"
        result = ovh.run_stackmatrix(matrix, self._out(f"{matrix.stem}-j{jobs}"), jobs, env)
        if result["run_id"]:
            self.run_ids.append(result["run_id"])
        self._check(what, result, experimental)
        return result

    def _check(self, what: str, result: dict[str, Any], experimental: bool = False) -> None:
        result["valid"] = ovh.ok(result, allow_experimental=experimental)
        log(f"{what}: {result['wall_s']:.2f} s" + ("" if result["valid"] else "  (NOT VALID)"))
        if not result["valid"]:
            log(result.get("stderr_tail") or json.dumps(result["variants"])[:2000])


def overhead_rounds(bench: Bench, rounds: int, serial_rounds: int) -> dict[str, Any]:
    """Interleaved repetitions: script --jobs K, stackmatrix --jobs K, stackmatrix --jobs 1
    (and a candidate source tree --jobs K when one is given)."""
    log("warm-up (not counted): script and stackmatrix once each")
    bench.script()
    bench.stackmatrix(ovh.MATRIX, bench.jobs)
    runs: dict[str, list[dict[str, Any]]] = {"script": [], "stackmatrix": [], "serial": []}
    if bench.candidate_env:
        runs["candidate"] = []
    for index in range(rounds):
        order: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("script", bench.script),
            ("stackmatrix", lambda: bench.stackmatrix(ovh.MATRIX, bench.jobs)),
        ]
        if bench.candidate_env:
            order.append(
                ("candidate", lambda: bench.stackmatrix(ovh.MATRIX, bench.jobs, candidate=True))
            )
        if index % 2:
            order.reverse()
        if index < serial_rounds:
            order.append(("serial", lambda: bench.stackmatrix(ovh.MATRIX, 1)))
        for name, action in order:
            runs[name].append(action())
    return runs


def summarize_overhead(runs: Mapping[str, list[dict[str, Any]]], jobs: int) -> dict[str, Any]:
    """Medians, ratios and the phase breakdown from the valid repetitions."""
    valid = {name: [r for r in rs if r["valid"]] for name, rs in runs.items()}
    walls = {name: [r["wall_s"] for r in rs] for name, rs in valid.items()}
    paired = [
        s["wall_s"] / c["wall_s"]
        for s, c in zip(runs["stackmatrix"], runs["script"], strict=False)
        if s["valid"] and c["valid"]
    ]
    sm_variants = [v for r in valid["stackmatrix"] for v in r["variants"]]
    sc_variants = [v for r in valid["script"] for v in r["variants"]]
    phases = {p: median([v["phases"].get(p) for v in sm_variants]) for p in ovh.PHASES}
    per_variant = {}
    for vid in sorted({v["id"] for v in sm_variants}):
        mine = [v for v in sm_variants if v["id"] == vid]
        theirs = [v for v in sc_variants if v["id"] == vid]
        per_variant[vid] = {
            "stackmatrix": {p: median([v["phases"].get(p) for v in mine]) for p in ovh.PHASES}
            | {
                "unaccounted": median([v["unaccounted_s"] for v in mine]),
                "checks": median([v["checks_s"] for v in mine]),
                "wall": median([v["wall_s"] for v in mine]),
            },
            "script": {
                p: median([v["phases"].get(p) for v in theirs])
                for p in ("up", "tests", "logs", "down")
            }
            | {
                "checks": median([v["checks_s"] for v in theirs]),
                "wall": median([v["wall_s"] for v in theirs]),
            },
        }

    def sm(key: str) -> float | None:
        return median([v[key] for v in sm_variants])

    def tool_only(v: Mapping[str, Any]) -> float:
        p: Mapping[str, float] = v["phases"]
        checks: float = v["checks_s"] or 0.0
        unaccounted: float = v["unaccounted_s"]
        return (
            p.get("render", 0) + p.get("build", 0) + p.get("collect", 0)
            + unaccounted + (p.get("tests", 0) - checks)
        )  # fmt: skip

    script_phase = {
        p: median([v["phases"].get(p) for v in sc_variants])
        for p in ("up", "tests", "logs", "down")
    }
    sm_up_ready = median([v["phases"]["up"] + v["phases"]["ready"] for v in sm_variants])
    comparison = [
        ("bring-up and readiness", sm_up_ready, script_phase["up"], "up + ready", "up -d --wait"),
        ("tests", phases["tests"], script_phase["tests"], "tests (+ stats sampler)",
         "port lookups + checks"),
        ("logs", phases["collect"], script_phase["logs"], "collect (logs + stats.json)", "logs"),
        ("teardown", phases["down"], script_phase["down"], "down", "down -v"),
        ("checks process alone", sm("checks_s"), median([v["checks_s"] for v in sc_variants]),
         "checks.py", "checks.py"),
    ]  # fmt: skip
    script_wall, sm_wall, serial_wall = (
        median(walls[n]) for n in ("script", "stackmatrix", "serial")
    )
    return {
        "variants": len(ovh.SCRIPT_VARIANTS),
        "services_per_variant": 2,
        "jobs": jobs,
        "repetitions": {name: len(rs) for name, rs in valid.items()},
        "invalid_repetitions": {name: len(runs[name]) - len(rs) for name, rs in valid.items()},
        "wall_s": walls,
        "script_median_s": script_wall,
        "stackmatrix_median_s": sm_wall,
        "serial_median_s": serial_wall,
        "overhead_ratio": ratio(sm_wall, script_wall),
        "overhead_ratio_paired_median": median(paired),
        "overhead_ratio_paired": [round(r, 3) for r in paired],
        "speedup": ratio(serial_wall, sm_wall),
        "cpu_s": _cpu_medians(valid),
        "startup_s": median([r["startup_s"] for r in valid["stackmatrix"]]),
        "reports_s": median([r["reports_s"] for r in valid["stackmatrix"]]),
        "variant_wall_s": {
            "stackmatrix": sm("wall_s"),
            "script": median([v["wall_s"] for v in sc_variants]),
        },
        "phases_median_s": phases,
        "unaccounted_median_s": sm("unaccounted_s"),
        "tool_only_per_variant_s": median([tool_only(v) for v in sm_variants]),
        "tests_minus_checks_s": {
            "stackmatrix": median([_excess(v) for v in sm_variants]),
            "script": median([_excess(v) for v in sc_variants]),
        },
        "stats_samples_per_variant": median([v["stats_samples"] for v in sm_variants]),
        "script_phases_median_s": script_phase,
        "side_by_side": [
            {
                "step": step,
                "stackmatrix_s": a,
                "script_s": b,
                "difference_s": (round(a - b, 3) if a is not None and b is not None else None),
                "stackmatrix_is": sa,
                "script_is": sb,
            }
            for step, a, b, sa, sb in comparison
        ],
        "per_variant": per_variant,
        "readiness_with_healthchecks_s": {
            "stackmatrix": _latency(sm_variants),
            "script": _latency(sc_variants),
        },
        "candidate": _candidate(runs, valid, script_wall, sm_wall) if "candidate" in runs else None,
        "runs": runs,
    }


def _cpu_medians(valid: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per side, the median CPU seconds of a run (the machine's and the command tree's) and
    how busy that kept the cores over the run's wall time."""
    cores = os.cpu_count() or 1
    out = {}
    for name in ("script", "stackmatrix"):
        rs = [r for r in valid.get(name, []) if r.get("cpu_s")]
        machine = median([r["cpu_s"]["machine"] for r in rs])
        busy = median([r["cpu_s"]["machine"] / (r["wall_s"] * cores) for r in rs])
        out[name] = {
            "machine": machine,
            "tree": median([r["cpu_s"]["tree"] for r in rs]),
            "busy_fraction": None if busy is None else round(busy, 3),
        }
    return out


def overhead12_rounds(bench: Bench, rounds: int) -> dict[str, Any]:
    """The overhead matrix at 12 variants (flavor a/b/c x size s/m/l/xl): script and
    stackmatrix ``--jobs K``, alternating which goes first, *rounds* pairs, no warm-up (the
    6-variant rounds warm the same images up; run alone, the first pair pays for it)."""
    matrix = ovh.matrix_of(ovh.SIZES_12, bench.scratch / "matrix-12")
    runs: dict[str, list[dict[str, Any]]] = {"script": [], "stackmatrix": []}
    for index in range(rounds):
        order: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("script", lambda: bench.script(ovh.SCRIPT_VARIANTS_12)),
            ("stackmatrix", lambda: bench.stackmatrix(matrix, bench.jobs)),
        ]
        if index % 2:
            order.reverse()
        for name, action in order:
            runs[name].append(action())
    valid = {name: [r for r in rs if r["valid"]] for name, rs in runs.items()}
    walls = {name: [r["wall_s"] for r in rs] for name, rs in valid.items()}
    paired = [
        s["wall_s"] / c["wall_s"]
        for s, c in zip(runs["stackmatrix"], runs["script"], strict=False)
        if s["valid"] and c["valid"]
    ]
    script_wall, sm_wall = median(walls["script"]), median(walls["stackmatrix"])
    per_variant = {
        vid: {
            name: median(
                [v["wall_s"] for r in valid[name] for v in r["variants"] if v["id"] == vid]
            )
            for name in ("stackmatrix", "script")
        }
        for vid in map(ovh.stackmatrix_id, ovh.SCRIPT_VARIANTS_12)
    }
    return {
        "variants": len(ovh.SCRIPT_VARIANTS_12),
        "jobs": bench.jobs,
        "rounds": rounds,
        "repetitions": {name: len(rs) for name, rs in valid.items()},
        "invalid_repetitions": {name: len(runs[name]) - len(rs) for name, rs in valid.items()},
        "wall_s": walls,
        "script_median_s": script_wall,
        "stackmatrix_median_s": sm_wall,
        "overhead_ratio": ratio(sm_wall, script_wall),
        "overhead_ratio_paired": [round(r, 3) for r in paired],
        "startup_s": median([r["startup_s"] for r in valid["stackmatrix"]]),
        "reports_s": median([r["reports_s"] for r in valid["stackmatrix"]]),
        "variant_wall_s": {
            name: median([v["wall_s"] for r in valid[name] for v in r["variants"]])
            for name in ("stackmatrix", "script")
        },
        "cpu_s": _cpu_medians(valid),
        "per_variant_wall_s": per_variant,
        "noise": ovh.engine_noise(),
        "runs": runs,
    }


def _candidate(
    runs: Mapping[str, list[dict[str, Any]]],
    valid: Mapping[str, list[dict[str, Any]]],
    script_wall: float | None,
    sm_wall: float | None,
) -> dict[str, Any]:
    """The candidate tree against the script and against the measured tree, same rounds."""
    wall = median([r["wall_s"] for r in valid["candidate"]])
    variants = {
        name: [v for r in valid[name] for v in r["variants"]]
        for name in ("stackmatrix", "candidate")
    }

    def facts(name: str) -> dict[str, Any]:
        vs = variants[name]
        return {
            "wall_s": median([r["wall_s"] for r in valid[name]]),
            "startup_s": median([r["startup_s"] for r in valid[name]]),
            "reports_s": median([r["reports_s"] for r in valid[name]]),
            "tests_minus_checks_s": median([_excess(v) for v in vs]),
            **{f"{p}_s": median([v["phases"].get(p) for v in vs]) for p in ovh.PHASES},
        }

    paired = [
        c["wall_s"] / s["wall_s"]
        for c, s in zip(runs["candidate"], runs["script"], strict=False)
        if c["valid"] and s["valid"]
    ]
    return {
        "overhead_ratio": ratio(wall, script_wall),
        "overhead_ratio_paired": [round(r, 3) for r in paired],
        "versus_measured": ratio(wall, sm_wall),
        "measured": facts("stackmatrix"),
        "candidate": facts("candidate"),
    }


def _excess(v: Mapping[str, Any]) -> float | None:
    """Time of the tests phase not spent in the checks process."""
    checks = v["checks_s"]
    tests: float | None = v["phases"].get("tests")
    return None if checks is None or tests is None else tests - checks


def _latency(variants: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    values = [
        v["tests_started_at"] - v["listening_at"]
        for v in variants
        if v.get("tests_started_at") and v.get("listening_at")
    ]
    return {
        "median": median(values),
        "min": round(min(values), 3) if values else None,
        "max": round(max(values), 3) if values else None,
        "samples": len(values),
    }


def readiness_rounds(bench: Bench, rounds: int, *, candidate: bool = False) -> dict[str, Any]:
    """The readiness matrix *rounds* times; latency per way of waiting."""
    runs = [
        bench.stackmatrix(ovh.READINESS, 2, experimental=True, candidate=candidate)
        for _ in range(rounds)
    ]
    by_wait: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for v in run["variants"]:
            by_wait.setdefault(v["id"].removeprefix("wait-"), []).append(v)
    return {
        "rounds": rounds,
        "server_listen_delay_s": 1.5,
        "latency_s": {wait: _latency(vs) for wait, vs in by_wait.items()},
        "statuses": {wait: [v["status"] for v in vs] for wait, vs in by_wait.items()},
        "ready_phase_s": {
            wait: median([v["phases"].get("ready") for v in vs]) for wait, vs in by_wait.items()
        },
        "runs": runs,
    }


def merge_benchmark(ours_repeat: int, theirs_repeat: int, files: int, cases: int) -> dict[str, Any]:
    """stackmatrix's JUnit merge vs ``junitparser merge`` on the same generated reports."""
    import bench_merge  # noqa: PLC0415 - imports junitparser, only needed here
    from junitparser import JUnitXml  # noqa: PLC0415

    from stackmatrix.junit.merge import JunitInput, merge_junit  # noqa: PLC0415
    from stackmatrix.junit.write import read_counts  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="stackmatrix-bench-merge-") as tmp:
        folder = Path(tmp)
        paths = bench_merge.write_inputs(folder, files, cases)
        inputs = [
            JunitInput(p, f"v{i:03d}", {"db": str(i % 3), "cache": "on"})
            for i, p in enumerate(paths)
        ]
        ours_out, theirs_out = folder / "ours.xml", folder / "junitparser.xml"

        def theirs() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                bench_merge.junitparser_merge([str(p) for p in paths], str(theirs_out))

        ours_runs = _times(lambda: merge_junit(inputs, ours_out), ours_repeat)
        log(f"merge: stackmatrix {statistics.median(ours_runs):.2f} s")
        theirs_runs = _times(theirs, theirs_repeat)
        log(f"merge: junitparser {statistics.median(theirs_runs):.2f} s")
        return {
            "files": files,
            "testcases_per_file": cases,
            "input_mib": round(sum(p.stat().st_size for p in paths) / 2**20, 1),
            "stackmatrix_s": median(ours_runs),
            "stackmatrix_runs_s": [round(t, 3) for t in ours_runs],
            "junitparser_s": median(theirs_runs),
            "junitparser_runs_s": [round(t, 3) for t in theirs_runs],
            "ratio": ratio(median(ours_runs), median(theirs_runs)),
            "stackmatrix_testcases_out": read_counts(ours_out).total,
            "junitparser_testcases_out": int(JUnitXml.fromfile(str(theirs_out)).tests),
        }


def _times(action: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return times


def expand_benchmark(env: Mapping[str, str], repeat: int) -> dict[str, Any]:
    """bench/bench_expand.py: 10,000 combinations, load + expand (+ list output)."""
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_expand.py"), "--repeat", str(repeat)],
        env=dict(env), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def cli_benchmark(env: Mapping[str, str], repeat: int) -> dict[str, Any]:
    """bench/bench_cli.py: start-up of --help, list, render, gha-matrix; run's first engine call."""
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_cli.py"), "--repeat", str(repeat)],
        env=dict(env), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def report_benchmark(
    env: Mapping[str, str], sizes: str, timeout: float, junitparser_up_to: int
) -> dict[str, Any]:
    """bench/bench_report.py: report and merge over generated runs of 200k and 1M testcases."""
    argv = [sys.executable, str(BENCH / "bench_report.py"), "--sizes", sizes]
    argv += ["--timeout", str(timeout), "--junitparser-up-to", str(junitparser_up_to)]
    out = subprocess.run(argv, env=dict(env), capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return result


def parse_args() -> argparse.Namespace:
    """The command line; ``--quick`` shrinks every repetition count to one."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3, help="K: stacks at a time (default 3)")
    parser.add_argument("--rounds", type=int, default=4, help="script vs stackmatrix pairs")
    parser.add_argument("--serial-rounds", type=int, default=3, help="stackmatrix --jobs 1 runs")
    parser.add_argument("--readiness-rounds", type=int, default=3)
    parser.add_argument("--merge-repeat", type=int, default=3, help="stackmatrix merge runs")
    parser.add_argument(
        "--junitparser-repeat", type=int, default=1, help="junitparser runs (one takes minutes)"
    )
    parser.add_argument("--expand-repeat", type=int, default=5)
    parser.add_argument(
        "--source", default="worktree", help="what to measure: worktree, head, or a src folder"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one round of each, small merge: a smoke test"
    )
    parser.add_argument(
        "--candidate",
        type=Path,
        metavar="SRC",
        help="also time a changed copy of src/ (its stackmatrix package) in the same rounds",
    )
    parser.add_argument(
        "--candidate-label",
        default="",
        metavar="TEXT",
        help="what the --candidate copy is, for the README (default: a changed copy)",
    )
    parser.add_argument("--cli-repeat", type=int, default=10, help="runs of each CLI command")
    parser.add_argument(
        "--rounds-12", type=int, default=2, help="12-variant script/stackmatrix pairs"
    )
    parser.add_argument(
        "--report-sizes", default="20x10000,20x50000", help="VARIANTSxTESTCASES, comma-separated"
    )
    parser.add_argument(
        "--report-timeout", type=float, default=600, help="seconds per report/merge measurement"
    )
    parser.add_argument(
        "--junitparser-up-to",
        type=int,
        default=200_000,
        metavar="N",
        help="time junitparser merge at report sizes of at most N testcases",
    )
    parser.add_argument(
        "--only",
        choices=BENCHMARKS,
        help="run one benchmark; the other figures are kept from the existing results.json",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results.json")
    parser.add_argument("--keep-runs", action="store_true", help="keep the run folders")
    args = parser.parse_args()
    args.merge_size = (200, 500)
    if args.quick:
        args.rounds = args.serial_rounds = args.readiness_rounds = 1
        args.merge_repeat = args.junitparser_repeat = args.expand_repeat = 1
        args.merge_size = (20, 500)
        args.cli_repeat = 3
        args.rounds_12 = 1
        args.report_sizes = "4x10000"
    return args


def run_benchmarks(
    args: argparse.Namespace, results: dict[str, Any], scratch: Path, selected: Sequence[str]
) -> Bench | None:
    """Run the *selected* benchmarks into *results*; the engine ones share one Bench."""
    bench: Bench | None = None
    with code_under_test(args.source, scratch) as env:
        candidate_env = None
        if args.candidate:
            candidate_env = {**env, "PYTHONPATH": str(args.candidate.resolve())}
            results["candidate_source"] = str(args.candidate)
            results["candidate_label"] = args.candidate_label
        bench = Bench(scratch, env, args.jobs, candidate_env)
        if "overhead" in selected:
            runs = overhead_rounds(bench, args.rounds, args.serial_rounds)
            results["overhead"] = summarize_overhead(runs, args.jobs)
            results["overhead"]["resting"] = bench.resting()
        if "readiness" in selected:
            results["readiness"] = readiness_rounds(bench, args.readiness_rounds)
            if candidate_env:
                results["readiness_candidate"] = readiness_rounds(
                    bench, min(args.readiness_rounds, 2), candidate=True
                )
        if "overhead12" in selected:
            log("overhead matrix at 12 variants")
            results["overhead12"] = overhead12_rounds(bench, args.rounds_12)
        if "overhead" in selected or "readiness" in selected:
            results["noise_after"] = ovh.engine_noise()
            results["leftovers"] = ovh.labelled_leftovers(bench.run_ids)
        if "overhead12" in selected:
            results["overhead12"]["leftovers"] = ovh.labelled_leftovers(bench.run_ids)
        if "expand" in selected:
            results["expand"] = expand_benchmark(env, args.expand_repeat)
            log(f"expand: {results['expand']['load_expand_s']} s")
        if "cli" in selected:
            results["cli"] = cli_benchmark(env, args.cli_repeat)
            log(f"cli: {json.dumps(results['cli']['commands'])}")
        if "report" in selected:
            log(f"report at {args.report_sizes} (timeout {args.report_timeout:.0f} s each)")
            results["report"] = report_benchmark(
                env, args.report_sizes, args.report_timeout, args.junitparser_up_to
            )
    if "merge" in selected:
        if args.source != "worktree":
            sys.path.insert(0, env["PYTHONPATH"])
        results["merge"] = merge_benchmark(
            args.merge_repeat, args.junitparser_repeat, *args.merge_size
        )
    return bench


def main() -> int:
    """Run the benchmarks, write the results; exit 1 when a run was invalid or left objects."""
    args = parse_args()
    began = time.time()
    selected = [args.only] if args.only else list(BENCHMARKS)
    results: dict[str, Any] = {}
    if args.only and args.output.is_file():
        results = json.loads(args.output.read_text(encoding="utf-8"))
    if not args.only:
        results = {"machine": machine_facts(), "source": args.source}
    if not args.only or args.only in ("overhead", "readiness"):  # beside their noise_after
        results["noise_before"] = ovh.engine_noise()
    commit = git("rev-parse", "HEAD")  # what `--source head` archives, before others commit
    log(f"measuring {commit[:12]} ({args.source}): {', '.join(selected)}")
    scratch = Path(tempfile.mkdtemp(prefix="stackmatrix-bench-"))
    bench: Bench | None = None
    try:
        bench = run_benchmarks(args, results, scratch, selected)
    finally:
        if bench is not None:
            ovh.remove_labelled(bench.run_ids)
        if args.keep_runs:
            log(f"run folders kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(began))
    if args.only:
        results.setdefault("measured_separately", {})[args.only] = {
            "measured_at": measured_at,
            "commit": commit,
            "source": args.source,
            # Edits in progress are measured only when the working tree is.
            "worktree_changes_in_src": (
                git("status", "--porcelain", "--", "src").splitlines()
                if args.source == "worktree"
                else []
            ),
            "took_s": round(time.time() - began, 1),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }
    else:
        results["quick"] = args.quick
        results["took_s"] = round(time.time() - began, 1)
        results["measured_at"] = measured_at
    results["goals"] = GOALS
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.output.resolve() == (BENCH / "results.json").resolve() and "overhead" in results:
        publish(results)
    log(f"wrote {args.output}; took {round(time.time() - began, 1)} s")
    print(json.dumps(headline(results), indent=2))
    invalid = any(
        any(results[name]["invalid_repetitions"].values())
        for name in ("overhead", "overhead12")
        if name in selected and name in results
    )
    left = [results.get("leftovers", {}), results.get("overhead12", {}).get("leftovers", {})]
    return 1 if invalid or any(v for counts in left for v in counts.values()) else 0


def headline(results: Mapping[str, Any]) -> dict[str, Any]:
    """The few figures printed at the end, against their goals."""
    return {row[0]: f"{row[1]} (goal {row[2]}: {row[3] or '-'})" for row in goal_rows(results)}


def _verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "not measured"
    return "met" if value <= goal else "not met"


def goal_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, goal, met / not met) for every figure that has a goal."""
    goals = GOALS
    rows: list[tuple[str, str, str, str]] = []
    for key, label in (("overhead", "6 variants"), ("overhead12", "12 variants")):
        o = results.get(key)
        if o:
            rows.append((
                f"overhead: stackmatrix / script wall time, {label}, `--jobs {o['jobs']}`",
                f"{o['overhead_ratio']} ({o['stackmatrix_median_s']} s / {o['script_median_s']}"
                f" s; paired: {', '.join(map(str, o['overhead_ratio_paired']))})",
                f"≤ {goals['overhead_ratio']}",
                _verdict(o["overhead_ratio"], goals["overhead_ratio"]),
            ))  # fmt: skip
    cli = results.get("cli")
    if cli:
        commands = cli["commands"]
        for name, goal in (("--help", "help_s"), ("list", "list_s"), ("render", None),
                           ("gha-matrix", None), ("python -c pass", None)):  # fmt: skip
            c = commands[name]
            label = name if name.startswith("python") else f"stackmatrix {name}"
            rows.append((
                f"`{label}`{' (the floor)' if name.startswith('python') else ''}, median of "
                f"{cli['repeat']}",
                f"{c['median_s']} s (min {c['min_s']}, max {c['max_s']})",
                f"≤ {goals[goal]} s" if goal else "",
                _verdict(c["median_s"], goals[goal]) if goal else "",
            ))  # fmt: skip
        first = cli["run_first_engine_call"]
        rows.append((
            "`stackmatrix run`: process start -> first `docker` call (fake docker), median of "
            f"{first['samples']}",
            f"{first['median_s']} s (min {first['min_s']}, max {first['max_s']})",
            f"≤ {goals['run_first_engine_call_s']} s",
            _verdict(first["median_s"], goals["run_first_engine_call_s"]),
        ))  # fmt: skip
    for size in (results.get("report") or {}).get("sizes", []):
        rows.extend(_report_rows(size))
    return rows


def _report_rows(size: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    goals = GOALS
    n = size["testcases"]
    million = n >= 1_000_000
    what = f"{n:,} testcases ({size['variants']} x {size['testcases_per_variant']:,})"
    report, merge, jp = size["report"], size["merge"], size.get("junitparser_merge")
    rows: list[tuple[str, str, str, str]] = []
    if not report["finished"]:
        rows.append((f"`report`, {what}", f"did not finish in {report['timeout_s']:.0f} s",
                     f"≤ {goals['report_1m_s']:.0f} s" if million else "", "not met"))  # fmt: skip
    elif report["exit_code"]:
        rows.append((f"`report`, {what}", f"failed: exit {report['exit_code']}", "", "not met"))
    else:
        rows += [
            (f"`report`, {what}: wall time", f"{report['wall_s']} s",
             f"≤ {goals['report_1m_s']:.0f} s" if million else "(1M: ≤ 20 s)",
             _verdict(report["wall_s"], goals["report_1m_s"]) if million else ""),
            (f"`report`, {what}: peak RSS", f"{report['peak_rss_mib']} MiB",
             f"≤ {goals['report_1m_rss_mib']:.0f} MiB" if million else "(1M: ≤ 500 MiB)",
             _verdict(report["peak_rss_mib"], goals["report_1m_rss_mib"]) if million else ""),
            (f"`report`, {what}: results.json per testcase",
             f"{report['results_json_bytes_per_testcase']} bytes "
             f"({(report['results_json_bytes'] or 0) / 2**20:.1f} MiB)",
             f"≤ {goals['results_json_bytes_per_testcase']:.0f} bytes",
             _verdict(report["results_json_bytes_per_testcase"],
                      goals["results_json_bytes_per_testcase"])),
        ]  # fmt: skip
    merge_value = (
        f"{merge['wall_s']} s, {merge['peak_rss_mib']} MiB"
        if merge["finished"] and not merge["exit_code"]
        else (f"did not finish in {merge['timeout_s']:.0f} s" if not merge["finished"]
              else f"failed: exit {merge['exit_code']}")
    )  # fmt: skip
    if jp and jp["finished"] and not jp["exit_code"] and merge["finished"]:
        merge_ratio = round(merge["wall_s"] / jp["wall_s"], 3)
        theirs = f"{jp['wall_s']} s, {jp['peak_rss_mib']} MiB"
        met = "met" if merge_ratio < goals["merge_ratio"] else "not met"
        rows.append((f"`stackmatrix merge` / `junitparser merge`, {what}",
                     f"{merge_ratio} ({merge_value} / {theirs})", "< 1", met))  # fmt: skip
    else:
        jp_text = (
            "not timed at this size" if not jp
            else f"junitparser did not finish in {jp['timeout_s']:.0f} s" if not jp["finished"]
            else f"junitparser failed: exit {jp['exit_code']}"
        )  # fmt: skip
        rows.append((f"`stackmatrix merge`, {what}", f"{merge_value} ({jp_text})", "", ""))
    return rows


GOALS_HEADING = "## Goals: start-up, 12 variants, reports at a million testcases"
KEPT_HEADING = "## Images from a registry"


def publish(results: Mapping[str, Any]) -> None:
    """README.md and plot.png from bench_publish, then the goal table of the newer benchmarks
    and the hand-written registry section (bench_pull.py), kept from the previous README."""
    readme = BENCH / "README.md"
    old = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    kept = old[old.index(KEPT_HEADING) :] if KEPT_HEADING in old else ""
    bench_publish.publish(results, BENCH)
    page = readme.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + goals_section(results)
    if kept:
        page += "\n" + kept.rstrip("\n") + "\n"
    readme.write_text(page, encoding="utf-8")


def _load_after(facts: Mapping[str, Any], figures: Mapping[str, Any] | None) -> str:
    load = facts.get("loadavg_1m_after", (figures or {}).get("loadavg_1m"))
    return "" if load is None else f", load average after: {load}"


def goals_section(results: Mapping[str, Any]) -> str:
    """Markdown: every figure with a goal, its value and whether it is met."""
    separately = results.get("measured_separately", {})
    lines = [
        GOALS_HEADING,
        "",
        "Each figure against its goal (benchmarks, not timed tests). "
        + "; ".join(
            f"`{name}` measured {facts['measured_at']} at `{facts['commit'][:12]}`"
            + (" plus uncommitted changes in src/" if facts.get("worktree_changes_in_src") else "")
            + f" ({facts['took_s']} s{_load_after(facts, results.get(name))})"
            for name, facts in sorted(separately.items())
        )
        + ("." if separately else "")
        + f" The rest: the full run of {results.get('measured_at', '?')} at "
        + f"`{results.get('machine', {}).get('commit', '?')[:12]}`.",
        "",
        "| figure | value | goal |  |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in goal_rows(results)),
        "",
        "How: `bench/bench_cli.py` runs each command as a child process (the console script, the "
        "repository's `matrix.yaml`), output to /dev/null, and takes the median wall time; for "
        "`run`, a fake `docker` first on PATH writes bash's `$EPOCHREALTIME` and exits 1 (an "
        "engine that is down), and the figure is that moment minus the time just before the child "
        "was spawned: the real engine is never called. `bench/bench_report.py` writes run "
        "directories (run.json and one pytest-shaped JUnit file per variant: 1 in 20 testcases "
        "fails with a message, a traceback and captured output, a few more fail in one variant "
        "only, 1 in 50 is skipped), then runs `stackmatrix report RUN_DIR --out OUT` and "
        "`stackmatrix merge -o FILE RUN_DIR`, each killed after a timeout, and reads the child's "
        "peak RSS from `wait4` (`ru_maxrss`). The 12-variant overhead matrix is "
        "`bench/overhead/matrix.yaml` with the size axis `s, m, l, xl`; the script runs the "
        "same 12 variants. One of them alone: `.venv/bin/python bench/run.py --only cli` "
        "(or `report`, `overhead12`, ...); the other figures stay as they were.",
    ]
    for key in ("cli", "report"):
        if key in results and "loadavg_1m" in results[key]:
            lines.append(f"Load average (1 min) after `{key}`: {results[key]['loadavg_1m']}.")
    o12 = results.get("overhead12")
    if o12:
        lines.append(
            f"12 variants: {o12['rounds']} pair(s) of runs, engine busy besides us: "
            f"{o12['noise']['running_containers']} running containers, load "
            f"{o12['noise']['loadavg_1m']}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
