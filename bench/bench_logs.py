"""A service that floods its log: what collecting it costs stackmatrix.

A container on the real engine writes SIZE bytes of log (1.5 GB by default; each line carries
a secret), then stackmatrix's own log collection (``Stack.save_logs``, in a fresh process)
streams it to disk with the default per-service cap, masking the secret as it goes. Reported:
the collecting process's peak RSS (``VmHWM`` of ``/proc/self/status``), the bytes on disk, the
bytes cut, the seconds it took, and whether any secret survived. Everything the benchmark
starts carries a label of its own and is removed at the end.

    python bench/bench_logs.py [--mib 1500] [--cap-mib 50] [--out bench/logs.json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "debian:bookworm-slim"
SECRET = "hunter2-" + secrets.token_hex(8)

# Runs in a fresh interpreter so that its peak RSS is the collection's alone.
COLLECT = r"""
import json, sys, threading, time
from pathlib import Path
from stackmatrix.engine.stack import Stack
project, out, cap, secret = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
stack = Stack(project=project, compose_file=out / "compose.yaml", project_directory=out,
              services=["flood"], cancel=threading.Event())
stack.refresh()
began = time.monotonic()
written = stack.save_logs(out / "logs", cap=cap, secrets=[secret])
seconds = time.monotonic() - began
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"seconds": round(seconds, 1),
                  "peak_rss_kib": int(status["VmHWM"].split()[0]),
                  "file": str(written["flood"])}))
"""


def _docker(*args: str, timeout: float = 120) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=timeout
    ).stdout.strip()


def run(mib: int, cap_mib: int) -> dict[str, Any]:
    """Flood, collect, measure; always removes the container."""
    token = secrets.token_hex(4)
    # Not the run label: another run's `gc --all` must not take the container away mid-way.
    project, label = f"bench-logs-{token}", f"io.stackmatrix.bench=logs-{token}"
    line = f"GET /api/orders?page=42 200 12ms token={SECRET} " + "x" * 40
    size = mib * 1024 * 1024
    container = _docker(
        "run", "-d", "--label", label,
        "--label", f"com.docker.compose.project={project}",
        "--label", "com.docker.compose.service=flood",
        IMAGE, "sh", "-c", f"yes '{line}' | head -c {size}",
    )  # fmt: skip
    try:
        began = time.monotonic()
        while _docker("inspect", "--format", "{{.State.Status}}", container) != "exited":
            time.sleep(1)
        flood_seconds = time.monotonic() - began
        with tempfile.TemporaryDirectory(prefix="bench-logs-") as scratch:
            out = Path(scratch)
            (out / "compose.yaml").write_text("services: {}\n")
            collected = subprocess.run(
                [sys.executable, "-c", COLLECT, project, scratch, str(cap_mib * 1024 * 1024),
                 SECRET],
                capture_output=True, text=True, check=True, timeout=1800, cwd=ROOT,
            )  # fmt: skip
            result: dict[str, Any] = json.loads(collected.stdout.splitlines()[-1])
            path = Path(result.pop("file"))
            data = path.read_bytes()
            note = next((ln for ln in data.splitlines() if ln.startswith(b"[stackmatrix:")), b"")
            on_disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
            return {
                "log_mib_written_by_the_service": mib,
                "cap_mib": cap_mib,
                "flood_seconds": round(flood_seconds, 1),
                "collect_seconds": result["seconds"],
                "peak_rss_mib": round(result["peak_rss_kib"] / 1024, 1),
                "log_file_bytes": len(data),
                "run_dir_bytes": on_disk,
                "cut_note": note.decode(),
                "secret_left_unmasked": SECRET.encode() in data,
                "masked_lines": data.count("token=••••••".encode()),
            }
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1500, help="log the service writes (MiB)")
    parser.add_argument("--cap-mib", type=int, default=50, help="per-service cap (MiB)")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    figures = run(args.mib, args.cap_mib)
    text = json.dumps(figures, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
