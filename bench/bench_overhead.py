"""Run the overhead matrix (bench/overhead) with stackmatrix and with the hand-written script.

Each function runs one thing once and returns plain data (JSON-ready dicts); bench/run.py
repeats them, takes medians and ratios. Nothing here decides what is good or bad.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

OVERHEAD = Path(__file__).parent / "overhead"
MATRIX = OVERHEAD / "matrix.yaml"
READINESS = OVERHEAD / "readiness.yaml"
SCRIPT = OVERHEAD / "script.sh"
# The script's variant names (FLAVOR-SIZE) -> stackmatrix's ids, for side-by-side tables.
SCRIPT_VARIANTS = ("a-s", "a-m", "b-s", "b-m", "c-s", "c-m")
# The same matrix at 12 variants: flavor a/b/c x size s/m/l/xl (matrix_of writes it).
SIZES_12 = ("s", "m", "l", "xl")
SCRIPT_VARIANTS_12 = tuple(f"{f}-{s}" for f in "abc" for s in SIZES_12)
PHASES = ("render", "build", "up", "ready", "tests", "collect", "down")
LISTENING = re.compile(r"listening at (\d+(?:\.\d+)?)")
CHECKS_TIME = re.compile(r"checks passed in (\d+\.\d+) s")
RUN_LABEL = "io.stackmatrix.run"


def cpu_now() -> tuple[float, float]:
    """CPU seconds so far: busy on the whole machine (``/proc/stat``: user, nice, system,
    irq, softirq; not idle, iowait or steal), and of this process's waited-for descendants."""
    with Path("/proc/stat").open(encoding="ascii") as stat:
        fields = [int(f) for f in stat.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK"),
        children.ru_utime + children.ru_stime,
    )


def cpu_since(began: tuple[float, float]) -> dict[str, float]:
    """The CPU seconds spent since *began* (a :func:`cpu_now`): ``machine`` (everything that
    ran, the engine and the containers included) and ``tree`` (the command and its children)."""
    machine, tree = cpu_now()
    return {"machine": round(machine - began[0], 2), "tree": round(tree - began[1], 2)}


def stackmatrix_id(script_variant: str) -> str:
    """``a-s`` -> ``flavor-a_size-s``."""
    flavor, size = script_variant.split("-")
    return f"flavor-{flavor}_size-{size}"


def matrix_of(sizes: Sequence[str], folder: Path) -> Path:
    """bench/overhead/matrix.yaml with the size axis set to *sizes*, written into *folder*
    beside copies of the files it uses (server.pl, checks.py), so it runs from there."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("server.pl", "checks.py"):
        shutil.copy2(OVERHEAD / name, folder / name)
    text = MATRIX.read_text(encoding="utf-8")
    axis = "  size: [s, m]\n"
    if axis not in text:
        msg = f"{MATRIX}: no line {axis.strip()!r} to widen"
        raise ValueError(msg)
    target = folder / f"matrix-{len(sizes) * 3}.yaml"
    target.write_text(text.replace(axis, f"  size: [{', '.join(sizes)}]\n"), encoding="utf-8")
    return target


def listen_times(text: str) -> list[float]:
    """Every "listening at <epoch>" moment in a log."""
    return [float(m[1]) for m in LISTENING.finditer(text)]


def checks_seconds(text: str) -> float | None:
    """How long the checks themselves took, as checks.py printed it."""
    found = CHECKS_TIME.search(text)
    return float(found[1]) if found else None


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def run_stackmatrix(
    matrix: Path, out: Path, jobs: int, env: Mapping[str, str], timeout: float = 300
) -> dict[str, Any]:
    """``stackmatrix run -f MATRIX --jobs JOBS --out OUT`` once: wall time and run.json facts."""
    argv = [sys.executable, "-m", "stackmatrix", "run", "-f", str(matrix), "--jobs", str(jobs)]
    argv += ["--out", str(out)]
    began_wall, began, cpu = time.time(), time.perf_counter(), cpu_now()
    proc = subprocess.run(
        argv, cwd=matrix.parent, env=dict(env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - began
    cpu_s = cpu_since(cpu)
    ended_wall = began_wall + wall
    run_dir = (out / "runs" / "latest").resolve()
    journal: dict[str, Any] = json.loads(_read(run_dir / "run.json") or "{}")
    variants = []
    for v in journal.get("variants", []):
        listened = [t for log in v.get("logs", {}).values() for t in listen_times(
            _read(run_dir / log))]  # fmt: skip
        phases: dict[str, float] = v.get("phases", {})
        starts: dict[str, float] = v.get("phase_starts", {})
        span = (v.get("finished_at") or 0) - (v.get("started_at") or 0)
        variants.append(
            {
                "id": v["id"],
                "status": v["status"],
                "wall_s": round(span, 3),
                "phases": phases,
                "unaccounted_s": round(span - sum(phases.values()), 3),
                "checks_s": checks_seconds(_read(run_dir / (v.get("tests_log") or "-"))),
                "listening_at": max(listened) if listened else None,
                "tests_started_at": starts.get("tests"),
                "stats_samples": _stats_samples(run_dir / (v.get("stats") or "-")),
            }
        )
    started, finished = journal.get("started_at"), journal.get("finished_at")
    return {
        "exit_code": proc.returncode,
        "stderr_tail": proc.stderr[-2000:] if proc.returncode else "",
        "wall_s": round(wall, 3),
        "cpu_s": cpu_s,
        "run_id": journal.get("run_id"),
        # Process start -> journal start: interpreter, imports, spec, engine check.
        "startup_s": round(started - began_wall, 3) if started else None,
        # Journal end -> process exit: the reports (junit.xml, summary.md, report.html).
        "reports_s": round(ended_wall - finished, 3) if finished else None,
        "variants_span_s": round(finished - started, 3) if started and finished else None,
        "variants": variants,
        "reports_written": all(
            (run_dir / name).is_file() for name in ("junit.xml", "summary.md", "report.html")
        ),
    }


def _stats_samples(path: Path) -> int:
    text = _read(path)
    return len(json.loads(text).get("samples", [])) if text else 0


def run_script(
    out: Path,
    run_label: str,
    jobs: int,
    env: Mapping[str, str],
    *,
    timeout: float = 300,
    variants: Sequence[str] = SCRIPT_VARIANTS,
) -> dict[str, Any]:
    """script.sh once over *variants* (FLAVOR-SIZE): wall time and per-variant phase times."""
    argv = ["bash", str(SCRIPT), str(out), run_label, str(jobs), *variants]
    began, cpu = time.perf_counter(), cpu_now()
    proc = subprocess.run(
        argv, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.perf_counter() - began
    cpu_s = cpu_since(cpu)
    results = []
    for name in variants:
        folder = out / name
        lines = (line.split() for line in _read(folder / "times").splitlines())
        stamps = {phase: float(at) for phase, at in lines}
        order = ["up", "tests", "logs", "down", "end"]
        present = [p for p in order if p in stamps]
        phases = {a: round(stamps[b] - stamps[a], 3) for a, b in itertools.pairwise(present)}
        listened = listen_times(_read(folder / "logs" / "all.log"))
        results.append(
            {
                "id": stackmatrix_id(name),
                "exit": _read(folder / "exit").strip(),
                "wall_s": round(stamps.get("end", 0) - stamps.get("up", 0), 3),
                "phases": phases,
                "checks_s": checks_seconds(_read(folder / "tests.log")),
                "listening_at": max(listened) if listened else None,
                "tests_started_at": stamps.get("tests"),
            }
        )
    return {
        "exit_code": proc.returncode,
        "stderr_tail": proc.stderr[-2000:] if proc.returncode else "",
        "wall_s": round(wall, 3),
        "cpu_s": cpu_s,
        "run_label": run_label,
        "variants": results,
    }


def resting_load(
    run_label: str, jobs: int, env: Mapping[str, str], seconds: float = 5.0, timeout: float = 120
) -> dict[str, Any]:
    """The machine's busy CPU per second with no stack, then with *jobs* stacks of
    compose.yaml up and healthy but idle (their healthchecks and servers running, nothing
    else): the engine work either side carries for as long as its stacks live. ``healthy``
    says whether every stack came up; ``machine_cpu_per_s`` is None when one did not. Every
    ``up`` is over (ended or killed) before the ``down`` of every stack."""
    variants = SCRIPT_VARIANTS[:jobs]
    projects = [f"ovh-rest-{variant}-{run_label}" for variant in variants]
    result: dict[str, Any] = {
        "stacks": len(projects),
        "containers": 2 * len(projects),
        "seconds": seconds,
        "healthy": False,
        "machine_cpu_per_s_without": None,
        "machine_cpu_per_s": None,
        "errors": [],
    }

    def compose(project: str, variant: str, *args: str) -> subprocess.Popen[bytes]:
        flavor, size = variant.split("-")
        return subprocess.Popen(
            ["docker", "compose", "-p", project, "-f", str(OVERHEAD / "compose.yaml"), *args],
            env={**env, "FLAVOR": flavor, "SIZE": size, "RUN_LABEL": run_label},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(proc: subprocess.Popen[bytes], what: str) -> bool:
        """Wait for *proc* (killed past the timeout); whether it ended well."""
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            result["errors"].append(f"{what}: no answer in {timeout:.0f} s")
            return False
        if proc.returncode != 0:
            said = err.decode(errors="replace").strip().splitlines()[-1:]
            result["errors"].append(f"{what}: exit {proc.returncode} {' '.join(said)}".strip())
        return proc.returncode == 0

    def busy_per_second() -> float:
        began = cpu_now()[0]
        time.sleep(seconds)
        return round((cpu_now()[0] - began) / seconds, 3)

    result["machine_cpu_per_s_without"] = busy_per_second()
    ups: list[subprocess.Popen[bytes]] = []
    try:
        ups = [compose(p, v, "up", "-d", "--wait") for p, v in zip(projects, variants, strict=True)]
        ended = [finish(up, f"up {p}") for up, p in zip(ups, projects, strict=True)]
        result["healthy"] = all(ended)
        if result["healthy"]:
            result["machine_cpu_per_s"] = busy_per_second()
    finally:
        for up in ups:  # over before any down: a down racing its up leaves what up makes later
            if up.poll() is None:
                up.kill()
            up.wait()
        downs = [compose(p, v, "down", "-v") for p, v in zip(projects, variants, strict=True)]
        for down, project in zip(downs, projects, strict=True):
            finish(down, f"down {project}")
    return result


def ok(result: Mapping[str, Any], *, allow_experimental: bool = False) -> bool:
    """Whether every variant of a stackmatrix or script run passed (a fair comparison)."""
    good = {"passed", "0"} | ({"experimental-failed"} if allow_experimental else set())
    states = [v.get("status", v.get("exit")) for v in result["variants"]]
    return result["exit_code"] == 0 and bool(states) and all(s in good for s in states)


def labelled_leftovers(run_ids: Sequence[str]) -> dict[str, int]:
    """Containers, networks and volumes still carrying one of *run_ids* as run label."""
    counts = {"containers": 0, "networks": 0, "volumes": 0}
    for run_id in run_ids:
        label = f"label={RUN_LABEL}={run_id}"
        for kind, command in (
            ("containers", ["docker", "ps", "-aq", "--filter", label]),
            ("networks", ["docker", "network", "ls", "-q", "--filter", label]),
            ("volumes", ["docker", "volume", "ls", "-q", "--filter", label]),
        ):
            out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
            counts[kind] += len(out.split())
    return counts


def remove_labelled(run_ids: Sequence[str]) -> None:
    """Remove whatever a crashed repetition left, by label (only this benchmark's runs)."""
    for run_id in run_ids:
        label = f"label={RUN_LABEL}={run_id}"
        for list_cmd, remove_cmd in (
            (["docker", "ps", "-aq", "--filter", label], ["docker", "rm", "-fv"]),
            (["docker", "network", "ls", "-q", "--filter", label], ["docker", "network", "rm"]),
            (["docker", "volume", "ls", "-q", "--filter", label], ["docker", "volume", "rm"]),
        ):
            ids = subprocess.run(list_cmd, capture_output=True, text=True, check=False).stdout
            if ids.split():
                subprocess.run([*remove_cmd, *ids.split()], capture_output=True, check=False)


def engine_noise() -> dict[str, Any]:
    """How busy the machine is besides us: running containers, load average."""
    running = subprocess.run(
        ["docker", "ps", "-q"], capture_output=True, text=True, check=False
    ).stdout.split()
    return {"running_containers": len(running), "loadavg_1m": round(os.getloadavg()[0], 2)}
