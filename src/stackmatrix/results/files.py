"""Writing the files of a run directory: atomically, privately when they hold secrets, never
through a symbolic link, and with a clear error when the disk is full."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stackmatrix.errors import StackmatrixError
from stackmatrix.redact import redact_file


class OutputError(StackmatrixError):
    """A file of the run directory could not be written (a full disk, a folder gone)."""

    exit_code = 3


def output_error(path: Path, error: OSError) -> OutputError:
    """The error a user reads when *path* cannot be written."""
    why = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        why = f"{why} (the disk under {path.parent} is full; free space or use --out elsewhere)"
    elif error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EEXIST):
        why = f"{why} (its folder was removed or replaced while the run went on)"
    return OutputError(f"cannot write {path}: {why}")


def write_private_if(path: Path, text: str, *, private: bool) -> None:
    """Write *text*; the file is 0600 from the start when it holds secrets.

    The new text replaces *path* only once fully written (a full disk leaves the old file
    whole), and a symbolic link at *path* is replaced, never written through. A device or a
    pipe (``-o /dev/stdout``) is written in place.
    """
    mode = 0o600 if private else 0o644
    try:
        info = path.lstat()
    except OSError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISLNK(info.st_mode):
        with path.open("w", encoding="utf-8") as handle:
            handle.write(text)
        return
    with atomic_target(path) as tmp:  # mkstemp: created 0600
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
        tmp.chmod(mode)


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary file beside *path* to write; it replaces *path* only once fully written.

    Renaming replaces a symbolic link at *path* itself, so nothing is written through one.
    An OSError (a full disk, say) leaves *path* as it was and is raised as an OutputError.
    """
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        yield tmp
        tmp.replace(path)
    except OSError as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise output_error(path, error) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write *text* (UTF-8), replacing *path* only once fully written."""
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write *data* as indented JSON, replacing *path* only once fully written."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def open_new(path: Path, *, private: bool = False) -> int:
    """A file descriptor to write *path* from scratch, never through a link: a symbolic link
    (or anything but a regular file) at *path* is removed first, and the open refuses one
    that appears meanwhile (``O_NOFOLLOW``)."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISREG(path.lstat().st_mode):
            path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, 0o600 if private else 0o644)


def remove_links(run_dir: Path) -> list[str]:
    """Remove every symbolic link (and pipe, socket or device) under *run_dir*, without
    following any; returns what was removed, as ``relative/path -> target``.

    The tests or a service may leave a link where stackmatrix writes or reads
    (``junit.xml -> /etc/passwd``); once removed, nothing reads, writes or uploads through it,
    and the run directory holds regular files and folders only.
    """
    refused = _replace_unless_folder(run_dir)
    if not run_dir.is_dir():
        return refused
    for folder, dirs, files in os.walk(run_dir, followlinks=False):
        base = Path(folder)
        for name in [*dirs, *files]:
            entry = base / name
            try:
                info = entry.lstat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
                continue
            relative = entry.relative_to(run_dir).as_posix()
            if stat.S_ISLNK(info.st_mode):
                with contextlib.suppress(OSError):
                    relative = f"{relative} -> {entry.readlink()}"
            else:
                relative = f"{relative} (not a regular file)"
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
            refused.append(relative)
        dirs[:] = [d for d in dirs if (base / d).is_dir() and not (base / d).is_symlink()]
    return sorted(refused)


def _replace_unless_folder(folder: Path) -> list[str]:
    """A *folder* the tests replaced by a link (or a file) is removed, unfollowed, and made a
    real, empty folder again; returns what was refused, as :func:`remove_links` does."""
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return []
    if stat.S_ISDIR(info.st_mode):
        return []
    what = f"{folder.name} (not a folder)"
    if stat.S_ISLNK(info.st_mode):
        with contextlib.suppress(OSError):
            what = f"{folder.name} -> {folder.readlink()}"
    folder.unlink()
    folder.mkdir()
    return [what]


KEPT_AS_WRITTEN = frozenset({"compose.yaml"})
"""Files that must keep their secrets (compose reads them back); stackmatrix writes them 0600."""


def seal_variant_dir(directory: Path, secrets: Sequence[str]) -> list[str]:
    """Make a variant's folder safe to keep and upload, once its tests and builds are done:
    every link (or pipe, device) removed, unfollowed, and *secrets* masked in every regular
    file but the compose file (build.log, tests.log, junit.xml, logs/*, whatever the tests
    left). Returns the links refused, as :func:`remove_links` does."""
    refused = remove_links(directory)
    if not directory.is_dir():
        return refused
    for folder, _dirs, files in os.walk(directory, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if name in KEPT_AS_WRITTEN and Path(folder) == directory:
                continue
            try:
                redact_file(path, secrets)
            except OSError as error:  # unreadable, say: never kept unmasked
                with contextlib.suppress(OSError):
                    path.unlink()
                refused.append(f"{path.relative_to(directory).as_posix()} (could not be masked:"
                               f" {error.strerror or error}; removed)")  # fmt: skip
    return refused
