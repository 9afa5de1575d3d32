"""Images from a registry: stackmatrix's prepare stage against a hand-written compose script.

Six variants share two images served by a real local registry (Debian's docker-registry). The
script does what a CI job does by hand, three variants at a time: for each, `docker compose pull`,
`up -d --wait`, the check, `down -v`, so every variant pulls its image. stackmatrix pulls each
unique image once before the fan-out. Before every round both sides start with the images gone
from the engine. Reported: wall times (medians, rounds interleaved), their ratio, and how many
manifest requests the registry answered for each side.

    python bench/bench_pull.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration._matrix import make_project  # noqa: E402
from tests.integration.registry import Registry, local_registry  # noqa: E402

IMAGES = {"a": ("base/bookworm", "v1", "debian:bookworm-slim"),
          "b": ("base/trixie", "v1", "debian:trixie-slim")}  # fmt: skip
AXES = {"base": ["a", "b"], "n": ["1", "2", "3"]}
JOBS = 3

SCRIPT = r"""
set -euo pipefail
one() {
    local variant=$1 file=$2 expect=$3 project=bench-pull-$1-$RUN code=0
    dc() { docker compose -p "$project" -f "$file" "$@"; }
    dc pull --quiet >/dev/null 2>&1
    if dc up -d --wait >/dev/null 2>&1; then
        ECHO_ADDR=$(dc port echo 7000) EXPECT=$expect \
            STACKMATRIX_JUNIT=$OUT/$variant.xml STACKMATRIX_VARIANT=$variant CHECK_MODE=pass \
            python3 "$CHECK" >/dev/null 2>&1 || code=$?
    else
        code=1
    fi
    dc down -v --remove-orphans >/dev/null 2>&1
    echo "$code" >"$OUT/$variant.exit"
}
export -f one
xargs -P "$JOBS" -n 3 bash -c 'one "$1" "$2" "$3"' _
"""


def _manifests(registry: Registry) -> int:
    return len([r for r in registry.access_log() if "/manifests/" in r.path])


def _forget(registry: Registry) -> None:
    for reference in registry.local_references():
        registry.forget(reference)


def _project(root: Path, address: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    project = make_project(root, axes=AXES)
    spec: dict[str, Any] = yaml.safe_load(project.matrix.read_text())
    for base, (name, tag, _local) in IMAGES.items():
        image = {"services": {"echo": {"image": f"{address}/{name}:{tag}"}}}
        spec["overlays"].append({"when": {"base": [base]}, "compose": image})
    spec["run"]["jobs"] = JOBS
    project.matrix.write_text(yaml.safe_dump(spec, sort_keys=False))
    return project.root


def _stackmatrix(root: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackmatrix", *args], cwd=root, capture_output=True,
        text=True, check=False, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def _rendered(root: Path, folder: Path) -> list[str]:
    listed = _stackmatrix(root, folder, "list", "--json")
    pairs = []
    for variant in json.loads(listed.stdout):
        target = folder / f"{variant['id']}.yaml"
        folder.mkdir(parents=True, exist_ok=True)
        _stackmatrix(root, folder, "render", variant["id"], "-o", str(target), "--run-id", "bench")
        values = variant["values"]
        pairs += [variant["id"], str(target), f"{values['base']}-{values['n']}"]
    return pairs


def _round_stackmatrix(root: Path, out: Path) -> float:
    began = time.monotonic()
    done = _stackmatrix(root, out, "run", "--pull", "always", "--out", str(out))
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"stackmatrix run failed:\n{done.stdout}{done.stderr}")
    return took


def _round_script(root: Path, pairs: list[str], out: Path, run: str) -> float:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OUT": str(out), "RUN": run, "JOBS": str(JOBS),
           "CHECK": str(root / "echo_check.py")}  # fmt: skip
    began = time.monotonic()
    subprocess.run(["bash", "-c", SCRIPT], input="\n".join(pairs), text=True, env=env, check=True)
    took = time.monotonic() - began
    failed = [p.stem for p in out.glob("*.exit") if p.read_text().strip() != "0"]
    if failed:
        raise SystemExit(f"the script's variants failed: {failed}")
    return took


def pull_benchmark(rounds: int) -> dict[str, Any]:
    """Both sides, *rounds* times each, interleaved; medians, ratio and manifest requests."""
    with tempfile.TemporaryDirectory(prefix="stackmatrix-bench-pull-") as scratch:
        base = Path(scratch)
        with local_registry(base) as registry:
            for name, tag, local in IMAGES.values():
                registry.push(local, f"{name}:{tag}")
            root = _project(base / "project", registry.address)
            pairs = _rendered(root, base / "rendered")
            times: dict[str, list[float]] = {"stackmatrix": [], "script": []}
            manifests: dict[str, list[int]] = {"stackmatrix": [], "script": []}
            for index in range(rounds):
                for side in (
                    ("stackmatrix", "script") if index % 2 == 0 else ("script", "stackmatrix")
                ):
                    _forget(registry)
                    before = _manifests(registry)
                    if side == "stackmatrix":
                        took = _round_stackmatrix(root, base / f"out-{index}")
                    else:
                        took = _round_script(root, pairs, base / f"script-{index}", f"r{index}")
                    times[side].append(round(took, 3))
                    manifests[side].append(_manifests(registry) - before)
            _forget(registry)
    medians = {side: round(statistics.median(values), 3) for side, values in times.items()}
    return {
        "variants": 6,
        "unique_images": len(IMAGES),
        "jobs": JOBS,
        "rounds": rounds,
        "times_s": times,
        "median_s": medians,
        "ratio": round(medians["stackmatrix"] / medians["script"], 3),
        "manifest_requests": manifests,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("pull.json"))
    args = parser.parse_args()
    results = pull_benchmark(args.rounds)
    results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = json.dumps(results, indent=2) + "\n"
    args.output.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
