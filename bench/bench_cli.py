"""Start-up of the command line: wall time of the commands that never touch the engine, and
how soon ``run`` makes its first engine call.

Each command runs as a child process, the console script ``stackmatrix`` next to this
interpreter (what a user runs), on the repository's example ``matrix.yaml``; the figure is the
median of ``--repeat`` wall times (``time.perf_counter`` around ``subprocess.run``, output to
/dev/null). ``python -c pass`` with the same interpreter is the floor. Beside it, the median
CPU time (user + system) of the same children: on a shared machine the wall time counts the
waits for a core too, the CPU time much less so.

``run`` to its first engine call: a fake ``docker`` first on PATH (a bash script) appends
``$EPOCHREALTIME`` (bash's own clock, no extra process) to a file and exits 1 as an engine that
is down would; the figure is that moment minus ``time.time()`` taken just before the
``stackmatrix run`` child is spawned. So it counts process creation, interpreter start, imports,
reading the spec and whatever ``run`` does before it first calls ``docker``; the real engine is
never touched.

Prints JSON. Usage: python bench/bench_cli.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "matrix.yaml"
FAKE_DOCKER = """#!/bin/bash
echo "$EPOCHREALTIME $*" >> "$STACKMATRIX_BENCH_DOCKER_CALLS"
echo "Cannot connect to the Docker daemon (bench_cli fake docker)" >&2
exit 1
"""


def stackmatrix_argv() -> list[str]:
    """The console script next to this interpreter, else ``python -m stackmatrix``."""
    script = Path(sys.executable).with_name("stackmatrix")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "stackmatrix"]


def _children_cpu() -> float:
    """User + system seconds of every child waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall_times(argv: Sequence[str], repeat: int, env: Mapping[str, str]) -> dict[str, Any]:
    """Median, min and max of *repeat* wall times of *argv*, the median of their CPU times,
    and its last exit code."""
    times, cpu = [], []
    code = 0
    for _ in range(repeat):
        cpu_before = _children_cpu()
        began = time.perf_counter()
        code = subprocess.run(
            list(argv), cwd=ROOT, env=dict(env), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, check=False,
        ).returncode  # fmt: skip
        times.append(time.perf_counter() - began)
        cpu.append(_children_cpu() - cpu_before)
    return {
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
        "exit_code": code,
    }


def first_engine_call(repeat: int, env: Mapping[str, str], folder: Path) -> dict[str, Any]:
    """Seconds from spawning ``stackmatrix run`` to its first ``docker`` process (fake)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(FAKE_DOCKER, encoding="utf-8")
    fake.chmod(0o755)
    calls = folder / "calls"
    delays, totals, first_calls = [], [], []
    code = 0
    for index in range(repeat):
        calls.write_text("", encoding="utf-8")
        run_env = {
            **env,
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "STACKMATRIX_BENCH_DOCKER_CALLS": str(calls),
        }
        out = folder / f"out-{index}"
        argv = [*stackmatrix_argv(), "run", "-f", str(MATRIX), "--out", str(out)]
        spawned, began = time.time(), time.perf_counter()
        code = subprocess.run(
            argv, cwd=ROOT, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=False,
        ).returncode  # fmt: skip
        totals.append(time.perf_counter() - began)
        lines = calls.read_text(encoding="utf-8").splitlines()
        if lines:
            stamp, _, args = lines[0].partition(" ")
            delays.append(float(stamp) - spawned)
            first_calls.append(args)
    return {
        "median_s": round(statistics.median(delays), 3) if delays else None,
        "min_s": round(min(delays), 3) if delays else None,
        "max_s": round(max(delays), 3) if delays else None,
        "samples": len(delays),
        "first_call": first_calls[0] if first_calls else None,
        "whole_process_median_s": round(statistics.median(totals), 3),
        "exit_code": code,
    }


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    env = {**os.environ, "NO_COLOR": "1"}
    tool = stackmatrix_argv()
    listing = subprocess.run(
        [*tool, "list", "-f", str(MATRIX), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    variant_id = json.loads(listing)[0]["id"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--help": [*tool, "--help"],
        "list": [*tool, "list", "-f", str(MATRIX)],
        "render": [*tool, "render", "-f", str(MATRIX), variant_id],
        "gha-matrix": [*tool, "gha-matrix", "-f", str(MATRIX)],
    }
    result: dict[str, Any] = {"repeat": args.repeat, "matrix": "matrix.yaml"}
    result["commands"] = {
        name: wall_times(argv, args.repeat, env) for name, argv in commands.items()
    }
    with tempfile.TemporaryDirectory(prefix="stackmatrix-bench-cli-") as tmp:
        result["run_first_engine_call"] = first_engine_call(args.repeat, env, Path(tmp))
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
