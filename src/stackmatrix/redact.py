"""The one set of secret rules: which values are secret, and how every artifact masks them.

A value is secret when its variable's name looks like one (``*PASSWORD*``, ``*TOKEN*``, ...)
or is listed under ``secrets:`` in the matrix file, and a URL's password always is. Pure:
imports nothing of stackmatrix, so every layer may use it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

MASK = "••••••"


SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|CREDENTIAL|AUTH", re.IGNORECASE)


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


def compose_secrets(
    compose: Mapping[str, Any], extra_secret_names: Sequence[str] = ()
) -> list[str]:
    """Values of secret ``environment`` entries (secret-looking names, or *extra_secret_names*)
    of every service of a compose dict."""
    found: list[str] = []
    for service in (compose.get("services") or {}).values():
        environment = (service or {}).get("environment") or {}
        if isinstance(environment, Mapping):
            pairs = [(str(k), "" if v is None else str(v)) for k, v in environment.items()]
        else:
            pairs = [tuple(str(item).split("=", 1)) for item in environment if "=" in str(item)]  # type: ignore[misc]
        found.extend(
            value
            for name, value in pairs
            if value and (is_secret_name(name) or name in extra_secret_names)
        )
    return found


def redact_file(path: Path, secrets: Sequence[str]) -> None:
    """Mask *secrets* (as written, and XML-escaped) in a text file, in place."""
    if not path.is_file():
        return
    wanted = {s for s in secrets if len(s) >= 3}
    wanted |= {xml_escape(s, {'"': "&quot;"}) for s in wanted}
    data = path.read_bytes()
    text = data.decode("utf-8", errors="surrogateescape")
    cleaned = text
    for secret in sorted(wanted, key=len, reverse=True):
        cleaned = cleaned.replace(secret, MASK)
    if cleaned != text:
        path.write_bytes(cleaned.encode("utf-8", errors="surrogateescape"))


def format_command(argv: Sequence[str], secrets: Sequence[str] = ()) -> str:
    """A shell-quoted, redacted rendering of *argv* for logs and messages."""
    return redact_text(shlex.join(argv), secrets)
