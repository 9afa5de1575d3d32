"""Turn bench/results.json into bench/README.md and bench/plot.png.

python bench/bench_publish.py      # rewrite both from the committed results.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PHASES = ("render", "build", "up", "ready", "tests", "collect", "down")
WAITS = {
    "redis": "`redis` probe (PING -> +PONG)",
    "log": "`log` probe (regex on the service log)",
    "tcp": "`tcp` probe (connect only)",
    "health": "healthcheck only (500 ms interval), no probe",
}


def _s(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "not measured"
    return "met" if value <= goal else "**not met**"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def readme(results: Mapping[str, Any]) -> str:
    """The Markdown page: headline figures with goals, then the details."""
    m, o, r = results["machine"], results["overhead"], results["readiness"]
    merge, expand, goals = results["merge"], results["expand"], results["goals"]
    k, n = o["jobs"], o["variants"]
    redis = r["latency_s"].get("redis", {})
    reps = o["repetitions"]
    headline = _table(
        ["figure", "value", "goal", ""],
        [
            [
                f"overhead: stackmatrix / script wall time, {n} variants, `--jobs {k}`",
                f"**{_s(o['overhead_ratio'], 3)}** ({_s(o['stackmatrix_median_s'])} s / "
                f"{_s(o['script_median_s'])} s; paired rounds: "
                f"{', '.join(_s(x, 3) for x in o['overhead_ratio_paired'])})",
                f"≤ {goals['overhead_ratio']:.2f}",
                _verdict(o["overhead_ratio"], goals["overhead_ratio"]),
            ],
            [
                f"parallel speed-up: `--jobs 1` / `--jobs {k}`",
                f"**{_s(o['speedup'])}x** ({_s(o['serial_median_s'])} s / "
                f"{_s(o['stackmatrix_median_s'])} s)",
                f"ideal {k}x on {m['nproc']} cores",
                "",
            ],
            [
                "readiness latency, `redis` probe (service listens -> tests start)",
                f"**{_s(redis.get('median'), 3)} s** (min {_s(redis.get('min'), 3)}, "
                f"max {_s(redis.get('max'), 3)}, {redis.get('samples', 0)} samples)",
                f"< {goals['readiness_latency_s']:.2f} s",
                _verdict(redis.get("median"), goals["readiness_latency_s"]),
            ],
            [
                f"merge {merge['files']} files x {merge['testcases_per_file']} testcases: "
                "stackmatrix / `junitparser merge`",
                f"**{_s(merge['ratio'], 3)}** ({_s(merge['stackmatrix_s'])} s / "
                f"{_s(merge['junitparser_s'])} s)",
                "< 1",
                _verdict(merge["ratio"], 1.0),
            ],
            [
                f"expand {expand['combinations']:,} combinations "
                f"({expand['variants']:,} variants after exclude/include)",
                f"**{_s(expand['load_expand_s'], 3)} s** load + expand; "
                f"{_s(expand['list_json_s'], 3)} s with `list --json` output",
                "",
                "",
            ],
        ],
    )
    sbs = _table(
        ["step (median per variant)", "stackmatrix", "script", "difference"],
        [
            [
                f"{row['step']} — {row['stackmatrix_is']} vs {row['script_is']}",
                _s(row["stackmatrix_s"]),
                _s(row["script_s"]),
                _s(row["difference_s"]),
            ]
            for row in o["side_by_side"]
        ]
        + [
            [
                "whole variant",
                _s(o["variant_wall_s"]["stackmatrix"]),
                _s(o["variant_wall_s"]["script"]),
                _s(_diff(o["variant_wall_s"]["stackmatrix"], o["variant_wall_s"]["script"])),
            ],
        ],
    )
    per_variant = _table(
        ["variant", *PHASES, "gaps", "sum", "script: up --wait", "tests", "logs", "down", "sum"],
        [
            [
                f"`{vid}`",
                *(_s(row["stackmatrix"][p]) for p in PHASES),
                _s(row["stackmatrix"]["unaccounted"]),
                _s(row["stackmatrix"]["wall"]),
                *(_s(row["script"][p]) for p in ("up", "tests", "logs", "down")),
                _s(row["script"]["wall"]),
            ]
            for vid, row in o["per_variant"].items()
        ],
    )
    readiness = _table(
        ["how the tests wait", "latency median", "min", "max", "samples", "variant status"],
        [
            [
                WAITS.get(wait, wait),
                _s(lat["median"], 3),
                _s(lat["min"], 3),
                _s(lat["max"], 3),
                str(lat["samples"]),
                ", ".join(sorted(set(r["statuses"][wait]))),
            ]
            for wait, lat in r["latency_s"].items()
        ]
        + [
            [
                f"overhead matrix (healthchecks, then `redis` probe): {who}",
                _s(lat["median"], 3),
                _s(lat["min"], 3),
                _s(lat["max"], 3),
                str(lat["samples"]),
                "",
            ]
            for who, lat in o["readiness_with_healthchecks_s"].items()
        ],
    )
    noise = f"before: {_noise(results['noise_before'])}; after: {_noise(results['noise_after'])}"
    dirty = m["worktree_changes_in_src"]
    source = {
        "worktree": "the working tree"
        + (f" (uncommitted changes in src/: {len(dirty)} files)" if dirty else " (clean)"),
        "head": "the committed tree of this commit (`git archive HEAD src`)",
    }.get(results["source"], f"a copy of src/ at {results['source']}")
    leftovers = results["leftovers"]
    quick = (
        "\n> **Smoke-test run (`--quick`): one repetition each, small merge. "
        "Not a publishable result.**\n"
        if results.get("quick")
        else ""
    )
    return f"""# Benchmarks

Measured on commit `{m["commit"][:12]}` ({m["commit_subject"]}), code under test: {source},
at {results["measured_at"]}. Machine: {m["nproc"]} cores ({m["cpu_model"]}), {m["memory_gib"]} GiB,
kernel {m["kernel"]}, Docker Engine {m["docker_server"]} (CLI {m["docker_client"]}), Compose
{m["docker_compose"]}, Python {m["python"]}. The whole run took {results["took_s"]:.0f} s.
{since(results)}{quick}
Reproduce with `scripts/nox -s bench` (or `.venv/bin/python bench/run.py`); `--quick` is a
one-minute smoke test, `--source head` measures the committed tree only,
`python bench/bench_publish.py` rewrites this page from `results.json`.

## Headline

{headline}

Every ratio is of two medians taken in the same run; the two sides alternate round by round
({reps["script"]} script runs, {reps["stackmatrix"]} stackmatrix `--jobs {k}` runs,
{reps["serial"]} `--jobs 1` runs, after one uncounted warm-up of each). Other people's
containers share this engine ({noise}), which adds noise: hence medians, and the paired
per-round ratios beside them. `junitparser merge` ran {len(merge["junitparser_runs_s"])} time(s)
only, since one run takes minutes; stackmatrix's merge is the median of
{len(merge["stackmatrix_runs_s"])}. Both wrote {merge["stackmatrix_testcases_out"]:,} and
{merge["junitparser_testcases_out"]:,} testcases ({merge["input_mib"]} MiB of input).

![wall times, phases and readiness latency](plot.png)

## The overhead matrix

`bench/overhead/matrix.yaml`: {n} variants (flavor a/b/c x size s/m), each a stack of two
`debian:bookworm-slim` containers with `init: true` running a perl-base TCP server
(`server.pl`) with a 500 ms healthcheck; a `redis` probe on one of them; a dozen checks
(`checks.py`, ~1.3 s) on the host. `bench/overhead/script.sh` does the same by hand with
`compose.yaml`: `docker compose up -d --wait`, two `port` lookups, the checks, `logs`,
`down -v --remove-orphans`, {k} variants at a time through `xargs -P {k}`. stackmatrix also
follows one streaming `docker stats` per stack from bring-up until its logs are collected
(one sample a second: {_s(o["stats_samples_per_variant"], 0)} sample(s) per variant, median),
saves logs per service and each variant's resource plot, and writes run.json, junit.xml,
summary.md and report.html; the script writes one log file and the checks' JUnit file.
A stackmatrix variant frees its slot once its logs are collected: its `down` runs in the
background while the next variant comes up (by default as many downs as jobs: a wave that
ends together hands on all its slots at once); the script's `xargs` slot is busy until its
`down -v` returns.

Where stackmatrix's time goes: per run, {_s(o["startup_s"])} s before the first variant starts
(interpreter, imports, spec, engine check) and {_s(o["reports_s"])} s after the last one ends
(merged JUnit, summary, HTML report). Per variant, the tool's own work — render, build check,
collect, gaps between phases, and the part of the tests phase that is not the checks process —
is {_s(o["tool_only_per_variant_s"])} s (median).

{sbs}

Phase medians per variant (seconds; stackmatrix from run.json, `gaps` = variant time not in
any phase, most of it between `ready` and `tests`, where the provenance of the ready stack is
asked: image digests, server versions, the tests' Python; script from its own timestamps):

{per_variant}

{costs(o)}
{machine_time(o, m, goals["overhead_ratio"])}
{candidate(results)}
### What brought the overhead down

The first measurement (commit `901a686`) gave 1.347 (15.32 s against 11.37 s). What this
benchmark showed, and what changed:

- Each variant waited 1.2-1.6 s after its tests for a `docker stats --no-stream` sample in
  flight (one such call takes 1-2.5 s). Sampling is now one streaming `docker stats` process
  per stack, killed when the tests end: nothing to wait for, and no process spawn per sample.
- The resource plots (0.2-0.4 s of CPU each) were drawn after the last variant. Each variant
  now draws its own while its stack is torn down and keeps it as `stats.svg`; the report
  reuses it.
- The report modules are imported in the background once the first
  tests start, instead of before the first stack; the console script then exits without the
  interpreter's teardown of those libraries (~0.2 s).
- Health was read (two docker processes) every 0.25 s while a stack came up; now a
  `docker events` stream of the project says when a container was created, started, died or
  changed health, and then it is read again (and once a second in any case).
- A variant held its slot until its stack was down (0.8-1 s of `down` per variant, on the
  critical path). Now it frees the slot once its logs are collected, and the next variant's
  bring-up overlaps that teardown; the run still waits for every `down` before it exits.
- With at most half of `jobs` downs in the background (1 of 3), the three variants of a wave
  that ended together freed one slot at once: the next wave's second and third variants
  waited for a down to end (about 2 s of the 6-variant run). The default is now `jobs` downs.
- Per variant, fewer engine calls on the critical path: no `docker compose config --services`
  after `up` (only with include or compose profiles), no health reading after a healthy
  event, logs of the services read side by side, and no `redis-server --version` looked for
  by `docker exec` in containers whose port does not speak Redis (two execs per variant here).
- Start-up: the GitHub annotations module (and the report's failure groups it needs), urllib
  and `xml.sax` are no longer imported before the first stack.
- On two cores the run is CPU-bound: during the script's 15.7 s the machine is 81-86 % busy
  (25-27 CPU-seconds, `/proc/stat`), mostly the engine's own work (dockerd, containerd, runc,
  iptables, the containers), the same for both sides. Process accounting showed stackmatrix's
  own process at 4.5 CPU-seconds a run, of which matplotlib was 3.1 s of the 5.6 s it held
  the GIL (its import, 0.8-1.1 s, and 0.1-0.2 s a plot). The plots are now written as SVG by
  stackmatrix (`report/svg.py`, 1 ms a plot): 5.6 -> 2.0 s of GIL time; in the same rounds
  the run took 0.904 of the time the code before took (6 variants, 4 rounds each). Compose
  files are dumped by libyaml's emitter (2.6 -> 0.55 ms each, four a variant).

## Readiness latency

`bench/overhead/readiness.yaml`: one service per variant that starts listening 1.5 s after
its container starts and logs that moment (`listening at <epoch>`, from `gettimeofday`); the
latency is the `tests` entry of `phase_starts` in run.json minus that moment, {r["rounds"]}
rounds, `--jobs 2`. A negative latency means the tests started before the service listened.

{readiness}

## Clean-up

Every container, network and volume of these runs carried `io.stackmatrix.run`; after the
run {leftovers["containers"]} containers, {leftovers["networks"]} networks and
{leftovers["volumes"]} volumes with the benchmark's run labels were left on the engine.
Raw repetitions, per-variant phases and all timings are in `results.json`.
"""


def _noise(noise: Mapping[str, Any]) -> str:
    """Running containers (when counted) and the 1-minute load average."""
    running = noise.get("running_containers")
    counted = "" if running is None else f"{running} running containers, "
    return f"{counted}load {noise['loadavg_1m']}"


def since(results: Mapping[str, Any]) -> str:
    """A sentence naming the benchmarks measured again on their own after the full run."""
    separately = results.get("measured_separately", {})
    if not separately:
        return ""
    runs = ", ".join(
        f"`{name}` at `{facts['commit'][:12]}` ({facts['measured_at']})"
        for name, facts in sorted(separately.items())
    )
    return (
        f"Measured again since, each on its own (their figures replace the full run's): {runs};"
        " details in the goals section below.\n"
    )


def costs(o: Mapping[str, Any]) -> str:
    """The largest costs of the tool itself, as this run measured them."""
    side = {row["step"]: row for row in o["side_by_side"]}
    excess = o.get("tests_minus_checks_s", {})
    rows = [
        ["start-up before the first variant starts", "per run", _s(o["startup_s"]), "0",
         "interpreter and imports (python-on-whales alone ~0.4 s), spec, engine check "
         "(`docker version` and `docker compose version`, asked at once)"],
        ["reports after the last variant ends", "per run", _s(o["reports_s"]), "0",
         "junit.xml, summary.md, report.html (the resource plots are drawn earlier, by each "
         "variant while its stack is torn down)"],
        ["tests phase beyond the checks process", "per variant",
         _s(excess.get("stackmatrix")), _s(excess.get("script")),
         "stackmatrix: starting the tests; script: two `docker compose port` lookups"],
        ["collect vs `logs`", "per variant", _s(side["logs"]["stackmatrix_s"]),
         _s(side["logs"]["script_s"]),
         "one `docker logs` per container, by id, then stopping the `docker stats` stream "
         "and writing stats.json; script: one call"],
        ["up + ready vs `up -d --wait`", "per variant",
         _s(side["bring-up and readiness"]["stackmatrix_s"]),
         _s(side["bring-up and readiness"]["script_s"]),
         "one `compose up` (no `config --services` without include or profiles); the "
         "project's `docker events` stream runs from before `up`: a container it reports "
         "healthy needs no new reading, any other event reads the state again (two docker "
         "calls: `ls -q`, one `inspect` of all containers), at least every second; then the "
         "probes: socket probes in-process every 0.05 s, log and command probes every 0.25 s"],
    ]  # fmt: skip
    table = _table(["cost (median)", "counted", "stackmatrix, s", "script, s", "what"], rows)
    return f"### Where the tool's own time goes\n\n{table}\n"


def machine_time(o: Mapping[str, Any], m: Mapping[str, Any], goal: float) -> str:
    """What kept the machine busy: each side's CPU seconds, the stacks' own load at rest, and
    what a rough model of a run makes of both at the goal."""
    cpu, rest = o.get("cpu_s"), o.get("resting")
    if (
        not cpu
        or not rest
        or rest.get("machine_cpu_per_s") is None
        or any(c["machine"] is None or c["busy_fraction"] is None for c in cpu.values())
    ):
        return ""  # measured by an older bench/run.py, or not measured
    walls = {"script": o["script_median_s"], "stackmatrix": o["stackmatrix_median_s"]}
    rows = [
        [name, _s(walls[name]), _s(c["machine"], 1), f"{100 * c['busy_fraction']:.0f} %",
         _s(c["tree"], 1), _s(_diff(c["machine"], c["tree"]), 1)]
        for name, c in cpu.items()
    ]  # fmt: skip
    table = _table(
        ["side", "wall, s", "machine CPU, s", "of the cores", "the command's processes, s",
         "the rest (engine, containers), s"],
        rows,
    )  # fmt: skip
    cores = m["nproc"]
    load = rest["machine_cpu_per_s"] - rest["machine_cpu_per_s_without"]
    once = {name: c["machine"] - load * walls[name] for name, c in cpu.items()}
    target = goal * walls["script"]
    share = cpu["stackmatrix"]["busy_fraction"]
    room = cores * share * target - load * target
    return f"""### Where the machine's time goes

Busy CPU seconds of a run (median), machine-wide from `/proc/stat` (user, nice, system, irq,
softirq) and of the command's own processes (`getrusage` of what it waited for: the script's
bash, docker and compose processes and checks; stackmatrix, its docker processes and checks):

{table}

With {rest["stacks"]} stacks of `compose.yaml` up, healthy and otherwise idle, the machine is
busy {_s(rest["machine_cpu_per_s"])} CPU-seconds a second \
({_s(rest["machine_cpu_per_s_without"], 3)} without them, one {_s(rest["seconds"], 0)} s \
sample each): {_s(load)} a second for their \
{rest["containers"]} containers, {100 * load / cores:.0f} % of the {cores} cores, mostly their \
healthchecks (a process started inside a container at every interval, through dockerd,
containerd and runc). Either side carries that load for as long as its stacks live.

A rough model of a run: that load over its whole wall time (as if {rest["stacks"]} stacks were \
always up), plus the work a run does once (bringing the stacks up and down, the checks, the \
command's own processes): {_s(once["script"], 1)} CPU-seconds for the script, \
{_s(once["stackmatrix"], 1)} for stackmatrix. At the goal ({goal} x {_s(walls["script"])} s = \
{_s(target)} s) and stackmatrix's share of the cores ({100 * share:.0f} %), a run has room for \
{_s(room, 1)} CPU-seconds of such work: stackmatrix would need \
{_s(once["stackmatrix"] - room, 1)} fewer, or a larger share of the cores. Its own processes \
take {_s(cpu["stackmatrix"]["tree"], 1)} CPU-seconds, the script's {_s(cpu["script"]["tree"], 1)}.
"""


def candidate(results: Mapping[str, Any]) -> str:
    """A second copy of src/ timed in the same rounds, when the run had one."""
    found = results["overhead"].get("candidate")
    if not found:
        return ""
    measured, changed = found["measured"], found["candidate"]
    keys = [("wall_s", "whole matrix, `--jobs K`"), ("startup_s", "start-up"),
            ("reports_s", "reports"), ("up_s", "up (per variant)"),
            ("ready_s", "ready (per variant)"),
            ("tests_minus_checks_s", "tests phase beyond the checks (per variant)"),
            ("collect_s", "collect (per variant)"), ("down_s", "down (per variant)")]  # fmt: skip
    table = _table(
        ["median, s", "measured tree", "`--candidate` copy", "difference"],
        [
            [label, _s(measured[key]), _s(changed[key]), _s(_diff(changed[key], measured[key]))]
            for key, label in keys
        ],
    )
    ready = results.get("readiness_candidate", {}).get("latency_s", {})
    lines = ", ".join(f"{w}: {_s(lat['median'], 3)} s" for w, lat in ready.items())
    paired = ", ".join(_s(x, 3) for x in found["overhead_ratio_paired"])
    label = results.get("candidate_label") or (
        "A copy of src/ with the changes proposed for the costs above"
    )
    return f"""### A second copy of src/, timed in the same rounds

{label} (`--candidate`; not the measured commit)
ran `--jobs K` in every round beside the measured tree: overhead ratio
**{_s(found["overhead_ratio"], 3)}** against the script (paired: {paired}), and
{_s(found["versus_measured"], 3)} times the measured tree's wall time.
{f"Its readiness latency: {lines}." if lines else ""}

{table}
"""


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def plot(results: Mapping[str, Any], path: Path) -> None:
    """Three panels: wall time per repetition, phases per variant, readiness latency."""
    import matplotlib as mpl  # noqa: PLC0415 - slow import, only needed here
    from matplotlib.figure import Figure  # noqa: PLC0415

    o, r = results["overhead"], results["readiness"]
    with mpl.rc_context({"font.size": 9}):
        figure = Figure(figsize=(13, 4.2), layout="constrained")
        walls, phases, ready = figure.subplots(1, 3, width_ratios=[1, 1.5, 1])
        k = o["jobs"]
        groups = [
            ("script", f"script\n--jobs {k}"),
            ("stackmatrix", f"stackmatrix\n--jobs {k}"),
            ("serial", "stackmatrix\n--jobs 1"),
        ]
        if o["runs"].get("candidate"):
            groups.append(("candidate", f"--candidate copy\n--jobs {k}"))
        for x, (key, _label) in enumerate(groups):
            runs = [run for run in o["runs"][key] if run["valid"]]
            if not runs:
                continue
            walls.plot([x] * len(runs), [run["wall_s"] for run in runs], "o", color="#08519c",
                       markersize=4, zorder=3)  # fmt: skip
            middle = _median([run["wall_s"] for run in runs])
            if key == "script":
                walls.bar(x, middle, color="#9ecae1", width=0.6)
                continue
            startup = _median([run["startup_s"] or 0.0 for run in runs])
            reports = _median([run["reports_s"] or 0.0 for run in runs])
            segments = (
                (startup, "#969696", "start-up"),
                (middle - startup - reports, "#9ecae1", "variants"),
                (reports, "#fd8d3c", "reports"),
            )
            bottom = 0.0
            for height, color, label in segments:
                walls.bar(x, height, bottom=bottom, color=color, width=0.6,
                          label=label if x == 1 else None)  # fmt: skip
                bottom += height
        walls.legend(fontsize=7, loc="upper left")
        walls.set_xticks(range(len(groups)), [label for _, label in groups])
        walls.set_ylabel("wall time of the whole matrix, s")
        walls.set_title(
            f"{o['variants']} variants: median bars, one dot per run\n"
            f"overhead {o['overhead_ratio']}, speed-up {o['speedup']}x",
            loc="left",
        )
        _phase_panel(phases, o)
        _readiness_panel(
            ready, r, results.get("readiness_candidate"), results["goals"]["readiness_latency_s"]
        )
        figure.savefig(path, dpi=110, metadata={"Software": None})


def _phase_panel(axes: Any, o: Mapping[str, Any]) -> None:
    colors = {
        "render": "#636363", "build": "#969696", "up": "#3182bd", "ready": "#6baed6",
        "tests": "#31a354", "collect": "#fd8d3c", "down": "#de2d26", "gaps": "#bdbdbd",
    }  # fmt: skip
    script_map = {"up": "up", "tests": "tests", "logs": "collect", "down": "down"}
    rows: list[tuple[str, dict[str, float]]] = []
    for vid, row in o["per_variant"].items():
        sm = {p: row["stackmatrix"][p] or 0.0 for p in PHASES}
        sm["gaps"] = max(0.0, row["stackmatrix"]["unaccounted"] or 0.0)
        rows.append((f"{vid} stackmatrix", sm))
        rows.append((f"{vid} script", {script_map[p]: row["script"][p] or 0.0 for p in script_map}))
    for y, (_label, parts) in enumerate(reversed(rows)):
        left = 0.0
        for phase in (*PHASES, "gaps"):
            width = parts.get(phase, 0.0)
            axes.barh(y, width, left=left, color=colors[phase], height=0.7)
            left += width
    axes.set_yticks(range(len(rows)), [label for label, _ in reversed(rows)], fontsize=7)
    axes.set_xlabel("seconds (median per variant)")
    axes.set_title("phases per variant (script: up --wait, tests, logs, down)", loc="left")
    handles = [axes.bar(0, 0, color=c, label=p) for p, c in colors.items()]
    axes.legend(
        handles=handles, fontsize=7, ncols=8, loc="upper center", bbox_to_anchor=(0.5, -0.12)
    )


def _readiness_panel(
    axes: Any, r: Mapping[str, Any], changed: Mapping[str, Any] | None, goal: float
) -> None:
    waits = list(r["latency_s"])
    sets = [(r, "#08519c", "measured tree", -0.1)]
    if changed:
        sets.append((changed, "#fd8d3c", "--candidate copy", 0.1))
    for found, color, label, shift in sets:
        for x, wait in enumerate(waits):
            values = [
                v["tests_started_at"] - v["listening_at"]
                for run in found["runs"]
                for v in run["variants"]
                if v["id"] == f"wait-{wait}" and v["tests_started_at"] and v["listening_at"]
            ]
            axes.plot([x + shift] * len(values), values, "o", color=color, markersize=4,
                      label=label if x == 0 else None)  # fmt: skip
    axes.axhline(goal, color="#de2d26", linestyle="--", linewidth=1, label=f"goal {goal} s")
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_xticks(range(len(waits)), waits)
    axes.set_ylabel("tests start - service listens, s")
    axes.set_title("readiness latency by way of waiting", loc="left")
    axes.legend(fontsize=7)


def publish(results: Mapping[str, Any], folder: Path) -> None:
    """Write README.md and plot.png into *folder*."""
    (folder / "README.md").write_text(readme(results), encoding="utf-8")
    plot(results, folder / "plot.png")


if __name__ == "__main__":
    here = Path(__file__).parent
    publish(json.loads((here / "results.json").read_text(encoding="utf-8")), here)
    sys.exit(0)
