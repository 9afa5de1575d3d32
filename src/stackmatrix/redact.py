"""The one set of secret rules: which values are secret, and how every artifact masks them.

A value is secret when its variable's name looks like one (``*PASSWORD*``, ``*TOKEN*``, ...)
or is listed under ``secrets:`` in the matrix file, and a URL's password always is; wherever
the value comes from (see :func:`compose_secrets`). Pure: imports nothing of stackmatrix, so
every layer may use it.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MASK = "••••••"


# The one rule for what a name that holds a secret looks like, wherever it is written.
SECRET_WORDS = r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|CREDENTIAL|AUTH"  # noqa: S105 - names, not values
SECRET_NAME = re.compile(SECRET_WORDS, re.IGNORECASE)
# Such a name given a value in a text (YAML ``db_password: x``, ``API_KEY=x``).
SECRET_ASSIGNMENT = re.compile(rf"(?:{SECRET_WORDS})\w*\s*[:=]", re.IGNORECASE)


# userinfo in URLs: scheme://user:password@host
# Bounded repeats keep this linear on huge inputs (a 24 MiB line of letters, say).
URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]{0,30}://[^:/@\s]{1,256}:)(?P<pw>[^@/\s]{1,1024})(?=@)", re.I
)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return bool(SECRET_NAME.search(name))


def redact_text(text: str, secrets: Sequence[str] = ()) -> str:
    """Mask passwords in URLs and every given secret value in *text*."""
    text = URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_env(env: Mapping[str, str], extra_secret_names: Sequence[str] = ()) -> dict[str, str]:
    """A copy of *env* safe to print or store: secret-looking values masked."""
    return {
        key: MASK if is_secret_name(key) or key in extra_secret_names else redact_text(value)
        for key, value in env.items()
    }


def secret_values(env: Mapping[str, str], extra_secret_names: Sequence[str] = ()) -> list[str]:
    """The values of *env* that must never appear in output."""
    return [v for k, v in env.items() if v and (is_secret_name(k) or k in extra_secret_names)]


DOTENV = ".env"


def compose_environment(
    project_dir: Path | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables compose interpolates a project's files with: the project directory's
    ``.env`` file, overridden by *environ* (default: this process's), as ``docker compose``
    does."""
    env = dict(os.environ if environ is None else environ)
    if project_dir is None:
        return env
    return {**dict(read_env_file(project_dir / DOTENV)), **env}


def compose_secrets(
    compose: Mapping[str, Any],
    extra_secret_names: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    project_dir: Path | None = None,
) -> list[str]:
    """Every secret value a compose dict gives its services, wherever it comes from.

    Secret-looking names (or *extra_secret_names*) in a service's ``environment``, in its
    ``env_file`` files and in its build ``args``, with their values as compose interpolates
    them (``POSTGRES_PASSWORD: ${PGPASS}`` is the host's ``PGPASS``; ``environment:
    [API_TOKEN]`` is the host's ``API_TOKEN``); every host variable with a secret name that
    the document interpolates anywhere (``${CI_TOKEN}``); and the values of compose's own
    top-level ``secrets`` (from the environment, or a file's content). *environ* is the
    environment compose runs with (default: this process's); *project_dir*, when given, adds
    the values of its ``.env`` file, which compose interpolates too.
    """
    env = compose_environment(project_dir, environ)
    names = frozenset(extra_secret_names)

    def secret(name: str) -> bool:
        return is_secret_name(name) or name in names

    found: list[str] = []

    def add(name: str, value: str | None) -> None:
        if not secret(name):
            return
        if value is None:  # passed through from the host: compose gives it the host's value
            value = env.get(name, "")
        found.append(value)
        if "$" in value:
            found.append(interpolate(value, env))

    for service in _mappings((compose.get("services") or {}).values()):
        for name, value in _pairs(service.get("environment")):
            add(name, value)
        build = service.get("build")
        if isinstance(build, Mapping):
            for name, value in _pairs(build.get("args")):
                add(name, value)
        for path in _env_files(service.get("env_file")):
            for name, value in read_env_file(path):
                add(name, value)
    for config in _mappings((compose.get("secrets") or {}).values()):
        if isinstance(config.get("environment"), str):
            found.append(env.get(config["environment"], ""))
        if isinstance(config.get("file"), str):
            found.extend(_secret_file(Path(config["file"])))
    for name in sorted(_references(compose)):
        if secret(name) and env.get(name):
            found.append(env[name])
    return [value for value in dict.fromkeys(found) if value]


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME:+alt}, $NAME; $$ escapes.
_REFERENCE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """*text* with ``${NAME}`` references replaced as compose does (defaults included)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("dollar"):
            return "$"
        name = match.group("braced") or match.group("plain")
        value, op, arg = environ.get(name), match.group("op") or "", match.group("arg") or ""
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset else str(value)
        if op.endswith("+"):
            return "" if unset else arg
        return value or ""

    return _REFERENCE.sub(replace, text)


def _references(data: Any) -> set[str]:
    """Names of the variables a compose document interpolates."""
    if isinstance(data, str):
        if "$" not in data:
            return set()
        return {
            m.group("braced") or m.group("plain")
            for m in _REFERENCE.finditer(data)
            if not m.group("dollar")
        }
    if isinstance(data, Mapping):
        return {n for k, v in data.items() for n in _references(k) | _references(v)}
    if isinstance(data, list | tuple):
        return {n for item in data for n in _references(item)}
    return set()


def _mappings(items: Any) -> list[Mapping[str, Any]]:
    return [item for item in items if isinstance(item, Mapping)]


def _pairs(entries: Any) -> list[tuple[str, str | None]]:
    """``environment`` / ``args`` as (name, value); value None: passed through from the host."""
    if isinstance(entries, Mapping):
        return [(str(k), None if v is None else str(v)) for k, v in entries.items()]
    if isinstance(entries, list | tuple):
        pairs: list[tuple[str, str | None]] = []
        for item in entries:
            name, sep, value = str(item).partition("=")
            pairs.append((name, value if sep else None))
        return pairs
    return []


def _env_files(entry: Any) -> list[Path]:
    items = entry if isinstance(entry, list | tuple) else [] if entry is None else [entry]
    paths = []
    for item in items:
        path = item.get("path") if isinstance(item, Mapping) else item
        if isinstance(path, str):
            paths.append(Path(path))
    return paths


MAX_ENV_FILE_BYTES = 1024 * 1024


def read_env_file(path: Path) -> list[tuple[str, str]]:
    """The ``NAME=VALUE`` lines of an env file as compose reads them; [] if unreadable."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ENV_FILE_BYTES)
    except OSError:
        return []
    pairs = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        pairs.append((name.strip(), value))
    return pairs


def _secret_file(path: Path) -> list[str]:
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_ENV_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return []
    return [text, text.strip()]


_CHUNK = 1 << 20  # files are masked a MiB at a time: a capped 50 MiB log is never held whole


def redact_file(path: Path, secrets: Sequence[str]) -> bool:
    """Mask *secrets* (as written, and XML-escaped) in a file, reading it a chunk at a time.

    Never through a symbolic link (a link is left alone: see ``results.files.remove_links``),
    and never in place: the masked copy replaces the file only once fully written, so a full
    disk leaves the old file whole, and a hard link to a file elsewhere is not rewritten.
    Returns whether the file was changed.
    """
    wanted = {s for s in secrets if len(s) >= 3}
    wanted |= {_xml_escaped(s) for s in wanted}
    raw = sorted({w.encode("utf-8", errors="surrogateescape") for w in wanted}, key=len)[::-1]
    if not raw:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # missing, or a link
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or not _holds_any(handle, raw):
            return False
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.redact")
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(out, "wb") as copy:
                handle.seek(0)
                _masked_chunks(handle, raw, copy.write, MASK.encode())
            tmp.chmod(stat.S_IMODE(info.st_mode))
            tmp.replace(path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            _blank_in_place(path, raw)  # a full disk: no room for a masked copy
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return True


def _holds_any(handle: Any, raw: Sequence[bytes]) -> bool:
    """Whether any of *raw* occurs in the rest of *handle* (chunks overlap by the longest)."""
    keep = len(raw[0]) - 1
    carry = b""
    while chunk := handle.read(_CHUNK):
        window = carry + chunk
        if any(secret in window for secret in raw):
            return True
        carry = window[len(window) - keep :] if keep else b""
    return False


def _masked_chunks(handle: Any, raw: Sequence[bytes], write: Any, mask: bytes) -> None:
    """Write the rest of *handle* with each of *raw* (longest first) replaced by *mask*.

    The last ``len(longest) - 1`` bytes of each chunk wait for the next one, so a secret that
    a chunk boundary splits is still found whole."""
    keep = len(raw[0]) - 1
    carry = b""
    while chunk := handle.read(_CHUNK):
        window = carry + chunk
        for secret in raw:
            window = window.replace(secret, mask)
        cut = max(len(window) - keep, 0)
        write(window[:cut])
        carry = window[cut:]
    write(carry)


def _blank_in_place(path: Path, raw: Sequence[bytes]) -> None:
    """Overwrite each secret in *path* by as many ``*`` bytes: the file keeps its size, so
    this needs no free space (the fallback of :func:`redact_file` on a full disk)."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        with os.fdopen(os.dup(fd), "rb") as handle:
            for secret in raw:
                handle.seek(0)
                offset = 0

                def put(data: bytes) -> None:
                    # Same length as what was read, and behind the reading: safe in place.
                    nonlocal offset
                    os.pwrite(fd, data, offset)
                    offset += len(data)

                _masked_chunks(handle, [secret], put, b"*" * len(secret))
    finally:
        os.close(fd)


def format_command(argv: Sequence[str], secrets: Sequence[str] = ()) -> str:
    """A shell-quoted, redacted rendering of *argv* for logs and messages."""
    return redact_text(shlex.join(argv), secrets)


def _xml_escaped(text: str) -> str:
    """*text* as XML writes it in text and in double-quoted attributes (what
    ``xml.sax.saxutils`` would give, without loading it and urllib with it at start-up)."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
