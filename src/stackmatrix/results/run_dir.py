"""A run's identity and home: its run id, the digest of its matrix file, and
``OUT/runs/<run-id>`` with the ``latest`` link beside it."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from stackmatrix import __version__
from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import expand
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
    """Create ``OUT/runs/<run-id>`` and point ``OUT/runs/latest`` at it.

    *shared*: several processes of one run (nox sessions) may each call this.
    """
    runs = out_dir / "runs"
    run_dir = runs / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=shared)
        latest = runs / "latest"
        tmp = runs / f".latest-{run_id}-{os.getpid()}-{threading.get_ident()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_id)
        tmp.replace(latest)
    except OSError as error:
        raise UsageError(
            f"cannot use the output directory {out_dir}: {error.strerror or error}"
        ) from None
    return run_dir


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
