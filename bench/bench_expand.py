"""Time `stackmatrix list` on a big matrix: 5 axes, 10,000 combinations, excludes and includes.

Prints JSON: the median of N runs (default 5), in seconds, of load+expand and of
load+expand+JSON output (what `stackmatrix list --json` does), and the variant count.
Usage: python bench/bench_expand.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from stackmatrix.cli.matrix import format_table, variants_json
from stackmatrix.matrix.expand import expand
from stackmatrix.spec.load import load_spec

AXES = {
    "python": [f"3.{minor}" for minor in range(5, 15)],
    "postgres": [str(version) for version in range(9, 19)],
    "redis": [f"{major}.{minor}" for major in (5, 6, 7, 8, 9) for minor in (0, 2)],
    "os": ["bullseye", "bookworm", "trixie", "alpine", "ubuntu"],
    "tls": ["off", "on"],
}  # 10 x 10 x 10 x 5 x 2 = 10,000 combinations


def matrix_document() -> dict[str, object]:
    """A matrix.yaml with 10,000 combinations, 6 partial excludes and 8 includes."""
    return {
        "name": "bench",
        "axes": AXES,
        "exclude": [
            {"python": "3.5", "postgres": "18"},
            {"os": "alpine", "tls": "on"},
            {"redis": "5.0", "postgres": "9"},
            {"python": "3.14", "os": "bullseye", "tls": "off"},
            {"postgres": "10", "redis": "9.2"},
            {"python": "3.6", "postgres": "17", "redis": "8.0", "os": "trixie", "tls": "on"},
        ],
        "include": [
            {"arch": "amd64"},
            {"os": "alpine", "libc": "musl"},
            {"python": "3.13", "free_threaded": True},
            {"postgres": "18", "redis": "9.2", "experimental": True},
            {"python": "3.15", "postgres": "19", "redis": "9.4", "os": "trixie", "tls": "on"},
            {"python": "3.15", "experimental": True},
            {"os": "windows", "tls": "off"},
            {"os": "alpine", "tls": "on", "arch": "arm64"},
        ],
        "overlays": [
            {"compose": {"services": {"db": {"image": "postgres:${{ matrix.postgres }}"}}}},
            {"when": {"tls": "on"}, "compose": {"services": {"db": {"command": ["-c", "ssl=on"]}}}},
        ],
        "ready": {"db": {"postgres": 5432}},
        "tests": {"command": "pytest --junitxml={junit}", "env": {"DB": "{{ ports.db.5432 }}"}},
    }


def median_seconds(action: Callable[[], object], repeat: int) -> tuple[float, float, list[float]]:
    """Median wall time, median CPU time, and all wall times of *repeat* runs of *action*.

    CPU time is reported too because wall time on a busy machine mostly measures the machine.
    """
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall), statistics.median(cpu), wall


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stackmatrix-bench-") as tmp:
        path = Path(tmp) / "matrix.yaml"
        path.write_text(yaml.safe_dump(matrix_document(), sort_keys=False), encoding="utf-8")
        variants = expand(load_spec(path))
        expand_s, expand_cpu, runs = median_seconds(lambda: expand(load_spec(path)), args.repeat)
        json_s, json_cpu, _ = median_seconds(
            lambda: variants_json(expand(load_spec(path))), args.repeat
        )
        table_s, table_cpu, _ = median_seconds(
            lambda: format_table(expand(load_spec(path))), args.repeat
        )
    combinations = 1
    for values in AXES.values():
        combinations *= len(values)
    result = {
        "axes": len(AXES),
        "combinations": combinations,
        "variants": len(variants),
        "experimental": sum(v.experimental for v in variants),
        "repeat": args.repeat,
        "load_expand_s": round(expand_s, 4),
        "load_expand_cpu_s": round(expand_cpu, 4),
        "load_expand_runs_s": [round(t, 4) for t in runs],
        "list_json_s": round(json_s, 4),
        "list_json_cpu_s": round(json_cpu, 4),
        "list_table_s": round(table_s, 4),
        "list_table_cpu_s": round(table_cpu, 4),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
