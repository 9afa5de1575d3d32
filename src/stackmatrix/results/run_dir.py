"""A run's identity and home: its run id, the digest of its matrix file, and
``OUT/runs/<run-id>`` with the ``latest`` link beside it."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from stackmatrix import __version__
from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import expand
from stackmatrix.results.files import output_error
from stackmatrix.results.journal import RunJournal, VariantResult, exit_code_of
from stackmatrix.spec.models import Spec

DEFAULT_OUT = Path(".stackmatrix")


def new_run_id() -> str:
    """A run id unique per invocation, sortable by time: ``20261122-180401-`` and 64 random
    bits, so two runs started in the same second on one engine never share one."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(8)


def spec_digest(spec: Spec) -> str:
    """sha256 of the matrix file's bytes."""
    return hashlib.sha256(spec.path.read_bytes()).hexdigest()


def prepare_run_dir(out_dir: Path, run_id: str, *, shared: bool = False) -> Path:
    """Create ``OUT/runs/<run-id>``, point ``OUT/runs/latest`` at it, and mark it live: this
    process's pid and start time, so ``gc`` can tell a run still going from a dead one.

    *shared*: several processes of one run (nox sessions) may each call this.
    """
    runs = out_dir / "runs"
    run_dir = runs / run_id
    latest = runs / "latest"
    for path, kind in ((out_dir, "the output directory"), (runs, "its runs folder")):
        if path.exists() and not path.is_dir():
            raise UsageError(
                f"cannot use the output directory {out_dir}: {kind} {path} is a file, not a "
                "folder; move it away or use another --out"
            )
    if latest.is_dir() and not latest.is_symlink():
        raise UsageError(
            f"cannot use the output directory {out_dir}: {latest} is a folder, not the link to "
            "the latest run that stackmatrix keeps there; move it away or use another --out"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=shared)
        mark_live(run_dir)
        tmp = runs / f".latest-{run_id}-{os.getpid()}-{threading.get_ident()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_id)
        tmp.replace(latest)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise output_error(run_dir, error) from None  # exit 3, like a full disk later on
        raise UsageError(
            f"cannot use the output directory {out_dir}: {error.strerror or error}"
        ) from None
    return run_dir


LIVE_FILE = ".live"
"""In a run directory: a line ``PID START-TIME BOOT-ID`` per process working on the run."""


def process_start_time(pid: int) -> int | None:
    """When *pid* started, in clock ticks since boot (``/proc/PID/stat`` field 22); None when
    there is no such process (or it is a zombie). With the pid, it names one process: a pid
    reused by another process later has another start time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] in ("Z", "X"):
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def mark_live(run_dir: Path, pid: int | None = None) -> None:
    """Record that process *pid* (default: this one) works on *run_dir*."""
    pid = os.getpid() if pid is None else pid
    started = process_start_time(pid)
    if started is None:
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(run_dir / LIVE_FILE, flags, 0o644)
    with os.fdopen(fd, "a", encoding="ascii") as handle:
        handle.write(f"{pid} {started} {_boot_id()}\n")


def live_processes(run_dir: Path) -> list[int]:
    """The pids marked in *run_dir* that are still the same processes: same pid, same start
    time, same boot. A pid reused by an unrelated process does not count."""
    try:
        fd = os.open(run_dir / LIVE_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as handle:
        lines = handle.read(64 * 1024).splitlines()
    boot = _boot_id()
    alive = set()
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        if parts[2] != boot:
            continue  # marked before the last reboot
        if process_start_time(int(parts[0])) == int(parts[1]):
            alive.add(int(parts[0]))
    return sorted(alive)


def is_marked(run_dir: Path) -> bool:
    """Whether *run_dir* records its processes (runs of older versions do not)."""
    return (run_dir / LIVE_FILE).is_file()


def journal_of(
    spec: Spec,
    run_id: str,
    *,
    started_at: float,
    variants: tuple[VariantResult, ...] = (),
    finished_at: float | None = None,
    interrupted: bool = False,
    profile: str | None = None,
    shard: str | None = None,
    jobs: int = 1,
    pid: int | None = None,
    rerun_of: str | None = None,
    rerun_tests: bool = False,
) -> RunJournal:
    """The journal of a run of *spec*: its identity, the variants so far and, once
    *finished_at* is given, the exit code they make."""
    return RunJournal(
        run_id=run_id,
        name=spec.name,
        spec_file=str(spec.path),
        spec_digest=spec_digest(spec),
        started_at=started_at,
        finished_at=finished_at,
        profile=profile,
        shard=shard,
        exit_code=None if finished_at is None else exit_code_of(variants, interrupted=interrupted),
        interrupted=interrupted,
        jobs=jobs,
        pid=pid,
        variants=variants,
        stackmatrix_version=__version__,
        rerun_of=rerun_of,
        rerun_tests=rerun_tests,
        matrix_variants=tuple(variant.id for variant in expand(spec)),
        test_ids=tuple(rule.model_dump() for rule in spec.report.test_ids),
    )
