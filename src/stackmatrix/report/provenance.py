"""What a variant ran, as the reports say it: one short line for a table cell, every value for a
detail view, and what changed between two runs of the same variant.

The values come from ``run.json`` (masked where they were recorded); every value shown here
also goes through :func:`stackmatrix.redact.redact_text` (a password in a URL, say a package
installed from ``git+https://user:token@host/...``), so no report shows more than the journal.

Public, for every page that shows provenance: :func:`provenance_text` (a cell),
:func:`provenance_html` (the cell unfolding to every value), :func:`service_text`,
:func:`service_fields`, :func:`short_id`, :func:`masked`; :func:`provenance_changes` (two runs
of one variant) with :class:`ProvenanceChange`, :func:`changes_text`,
:func:`provenance_comparable`, :func:`packages_cut` and :func:`known_only`; and
:func:`provenance_dict` / :func:`provenance_from` (``results.json``).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from stackmatrix.junit.merged_suites import MAX_PROVENANCE_PACKAGES
from stackmatrix.redact import redact_text
from stackmatrix.results.journal import Provenance, ServiceProvenance

SHORT_ID_HEX = 12
"""Hex digits of an image id or digest in the short form (``sha256:1a2b3c4d5e6f``)."""

MAX_TEXT_CHARS = 160
"""The longest :func:`provenance_text` (a table cell), cut with an ellipsis."""

PACKAGES_IN_TEXT = 3
"""Packages named in :func:`provenance_text`; the others are counted."""

CHANGES_IN_TEXT = 4
"""Changes named in :func:`changes_text`; the others are counted."""

# Version sources that name the software they asked: ``db postgres 17.2``.
_NAMED_SOFTWARE = frozenset({"postgres", "redis"})
_HEX = re.compile(r"[0-9a-f]+")
ARROW = "→"

PACKAGES_IN_HTML = 200
"""Packages listed in :func:`provenance_html`; the others are counted (all are in run.json)."""

PACKAGES_CAP = MAX_PROVENANCE_PACKAGES
"""The most packages a variant records: a side with that many may have been cut, so no
package of it is called new or gone."""

_SERVICE_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(ServiceProvenance))
_COMPARED_FIELDS = ("version", "image_id", "digest", "image")


def masked(provenance: Provenance) -> Provenance:
    """*provenance* with every value (and package name) passed through the secret masking."""
    if not provenance:
        return provenance
    return dataclasses.replace(
        provenance,
        services={
            name: ServiceProvenance(
                **{f: redact_text(getattr(svc, f)) for f in _SERVICE_FIELD_NAMES}
            )
            for name, svc in provenance.services.items()
        },
        python=redact_text(provenance.python),
        packages={redact_text(k): redact_text(v) for k, v in provenance.packages.items()},
    )


def packages_cut(provenance: Provenance) -> bool:
    """Whether *provenance*'s packages may be only some of them: it says so
    (``packages_cut``), or it holds :data:`PACKAGES_CAP` of them, as many as are kept."""
    return provenance.packages_cut > 0 or len(provenance.packages) >= PACKAGES_CAP


def provenance_comparable(before: Provenance, after: Provenance) -> bool:
    """Whether two runs recorded anything to compare: a service both name with a value on
    both sides, the tests' Python on both, or packages on both."""
    for name, old in before.services.items():
        new = after.services.get(name)
        if new is not None and any(getattr(old, f) and getattr(new, f) for f in _COMPARED_FIELDS):
            return True
    both = bool(before.python and after.python)
    return both or bool(before.packages and after.packages)


def short_id(value: str, hex_digits: int = SHORT_ID_HEX) -> str:
    """An image id or a repo digest, short: ``sha256:1a2b3c4d5e6f``; a repo digest
    (``NAME@sha256:...``) loses its name; anything else is returned as it is."""
    tail = value.rpartition("@")[2]
    algorithm, sep, digits = tail.partition(":")
    if sep and _HEX.fullmatch(digits):
        return f"{algorithm}:{digits[:hex_digits]}"
    return tail if sep or not _HEX.fullmatch(tail) else tail[:hex_digits]


def _software(svc: ServiceProvenance) -> str:
    return svc.version_source if svc.version_source in _NAMED_SOFTWARE else ""


def _what(svc: ServiceProvenance) -> str:
    """``postgres 17.2 · sha256:1a2b3c4d5e6f``: the version (or the image reference) and the
    short image id (or digest); empty when nothing is known."""
    parts = []
    if svc.version:
        parts.append(" ".join(p for p in (_software(svc), svc.version) if p))
    elif svc.image:
        parts.append(svc.image)
    ident = short_id(svc.image_id or svc.digest)
    if ident:
        parts.append(ident)
    return redact_text(" · ".join(parts))


def service_text(name: str, svc: ServiceProvenance) -> str:
    """One service, short: ``db postgres 17.2 · sha256:1a2b3c4d5e6f`` (version first when
    known, the image reference otherwise); empty when nothing is known of it."""
    what = _what(svc)
    return f"{name} {what}" if what else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def provenance_text(provenance: Provenance, *, limit: int = MAX_TEXT_CHARS) -> str:
    """What a variant ran, in one line of at most *limit* characters: every service it knows
    something of, the tests' Python and the first packages (``db postgres 17.2 ·
    sha256:1a2b3c4d5e6f; cache redis 7.0.15 · sha256:...; python 3.12.1; sqlalchemy 2.0.36``).
    Empty when nothing was recorded."""
    parts = [t for name, svc in provenance.services.items() if (t := service_text(name, svc))]
    if provenance.python:
        parts.append(f"python {provenance.python}")
    packages = list(provenance.packages.items())
    parts += [f"{name} {version}" for name, version in packages[:PACKAGES_IN_TEXT]]
    if len(packages) > PACKAGES_IN_TEXT:
        parts.append(f"+{len(packages) - PACKAGES_IN_TEXT} packages")
    return _clip(redact_text("; ".join(parts)), limit)


def service_fields(svc: ServiceProvenance) -> list[tuple[str, str]]:
    """Every known value of one service, labelled, in full: image, image id, repo digest,
    version (and how it was asked)."""
    fields = [("image", svc.image), ("image id", svc.image_id), ("repo digest", svc.digest)]
    if svc.version:
        asked = f" (asked: {svc.version_source})" if svc.version_source else ""
        fields.append(("version", svc.version + asked))
    return [(label, redact_text(value)) for label, value in fields if value]


def provenance_html(provenance: Provenance) -> str:
    """What a variant ran, for a page: its :func:`provenance_text` unfolding (``<details>``) to
    a table of every value (each service's image, image id, repo digest and version with how it
    was asked; the tests' Python and packages); empty when nothing was recorded."""
    text = provenance_text(provenance)
    if not text:
        return ""
    rows = [
        (name, label, value)
        for name, svc in provenance.services.items()
        for label, value in service_fields(svc)
    ]
    if provenance.python:
        rows.append(("tests", "python", provenance.python))
    packages = list(provenance.packages.items())
    rows += [("package", name, version) for name, version in packages[:PACKAGES_IN_HTML]]
    if len(packages) > PACKAGES_IN_HTML:
        more = len(packages) - PACKAGES_IN_HTML
        rows.append(("package", f"and {more} more", "in run.json"))
    body = "".join(
        f"<tr><th>{escape(a)}</th><td>{escape(redact_text(b))}</td>"
        f"<td>{escape(redact_text(c))}</td></tr>"
        for a, b, c in rows
    )
    return f"<details><summary>{escape(text)}</summary><table>{body}</table></details>"


class Aspect(enum.StrEnum):
    """What about a variant's provenance changed."""

    VERSION = "version"  # a service's own version
    IMAGE = "image"  # a service's image id (its version equal or unknown)
    DIGEST = "digest"  # a service's repo digest (no image ids to compare)
    REFERENCE = "reference"  # a service's image reference (nothing else to compare)
    ADDED = "added"  # a service the baseline did not have
    GONE = "gone"  # a service the baseline had
    PYTHON = "python"  # the tests' Python
    PACKAGE = "package"  # a package's version (added or gone: one side is empty)


VERSION_ASPECTS = frozenset({Aspect.VERSION, Aspect.PYTHON, Aspect.PACKAGE})
"""Aspects that are versions (the rest are images and services)."""

SERVICE_ASPECTS = frozenset({Aspect.ADDED, Aspect.GONE})
"""Aspects that are services added or removed."""


@dataclass(frozen=True)
class ProvenanceChange:
    """One thing a variant ran differently from another run of it."""

    subject: str  # the service, "python", or the package
    aspect: Aspect
    before: str
    after: str
    software: str = ""  # what was asked for the version (``postgres``), when it names it

    @property
    def text(self) -> str:
        """``db postgres 17.1 → 17.2``, ``db image sha256:aaa → sha256:bbb``, ``python 3.11.9
        → 3.12.1``, ``package sqlalchemy 2.0.35 → 2.0.36``, ``cache new: redis 7.0.15``."""
        before, after = self.before, self.after
        match self.aspect:
            case Aspect.VERSION:
                software = f"{self.software} " if self.software else ""
                text = f"{self.subject} {software}{before} {ARROW} {after}"
            case Aspect.IMAGE | Aspect.DIGEST:
                digits = SHORT_ID_HEX
                while short_id(before, digits) == short_id(after, digits) and digits < 64:
                    digits *= 2
                word = "image" if self.aspect is Aspect.IMAGE else "digest"
                text = f"{self.subject} {word} {short_id(before, digits)} {ARROW} "
                text += short_id(after, digits)
            case Aspect.REFERENCE:
                text = f"{self.subject} image {before} {ARROW} {after}"
            case Aspect.ADDED:
                text = f"{self.subject} new" + (f": {after}" if after else "")
            case Aspect.GONE:
                text = f"{self.subject} gone" + (f" (was {before})" if before else "")
            case Aspect.PYTHON:
                text = f"python {before} {ARROW} {after}"
            case Aspect.PACKAGE:
                if not before:
                    text = f"package {self.subject} new: {after}"
                elif not after:
                    text = f"package {self.subject} gone (was {before})"
                else:
                    text = f"package {self.subject} {before} {ARROW} {after}"
        return redact_text(text)

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict (``results.json``)."""
        return {
            "subject": redact_text(self.subject),
            "aspect": self.aspect.value,
            "before": redact_text(self.before),
            "after": redact_text(self.after),
            "text": self.text,
        }


def _service_change(
    name: str, before: ServiceProvenance, after: ServiceProvenance
) -> ProvenanceChange | None:
    """How one service differs: its version first; when the versions are equal or unknown, its
    image id, else its repo digest, else its image reference."""
    if before.version and after.version and before.version != after.version:
        software = _software(after) if _software(after) == _software(before) else ""
        return ProvenanceChange(name, Aspect.VERSION, before.version, after.version, software)
    pairs = (
        (Aspect.IMAGE, before.image_id, after.image_id),
        (Aspect.DIGEST, before.digest, after.digest),
        (Aspect.REFERENCE, before.image, after.image),
    )
    for aspect, old, new in pairs:
        if old and new:
            same = _content(old) == _content(new) if aspect is Aspect.DIGEST else old == new
            return None if same else ProvenanceChange(name, aspect, old, new)
    return None


def _content(digest: str) -> str:
    """A repo digest without its repository: the same image from a mirror is the same."""
    return digest.rpartition("@")[2]


def provenance_changes(before: Provenance, after: Provenance) -> tuple[ProvenanceChange, ...]:
    """What *after* ran differently from *before* (two runs of one variant): each service's
    version, else its image (see :func:`_service_change`), services added or gone, the tests'
    Python, and the packages. Nothing when either side recorded no provenance (an older run):
    unknown is not a change."""
    if not before or not after:
        return ()
    changes: list[ProvenanceChange] = []
    for name, new in after.services.items():
        old = before.services.get(name)
        if old is None:
            changes.append(ProvenanceChange(name, Aspect.ADDED, "", _what(new)))
        elif (change := _service_change(name, old, new)) is not None:
            changes.append(change)
    changes += [
        ProvenanceChange(name, Aspect.GONE, _what(old), "")
        for name, old in before.services.items()
        if name not in after.services
    ]
    if before.python and after.python and before.python != after.python:
        changes.append(ProvenanceChange("python", Aspect.PYTHON, before.python, after.python))
    if before.packages and after.packages:
        # A side that may be cut knows only some packages: one it lacks is not gone or new.
        cut = packages_cut(before) or packages_cut(after)
        for name in dict.fromkeys((*after.packages, *before.packages)):
            old_version, new_version = before.packages.get(name, ""), after.packages.get(name, "")
            if cut and not (old_version and new_version):
                continue
            if old_version != new_version:
                changes.append(ProvenanceChange(name, Aspect.PACKAGE, old_version, new_version))
    return tuple(changes)


def changes_text(changes: Sequence[ProvenanceChange], *, limit: int = CHANGES_IN_TEXT) -> str:
    """``db postgres 17.1 → 17.2, python 3.11.9 → 3.12.1`` and ``and 3 more`` past *limit*."""
    shown = ", ".join(c.text for c in changes[:limit])
    more = len(changes) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def provenance_dict(provenance: Provenance) -> dict[str, object]:
    """*provenance* as ``run.json`` writes it, masked (``results.json``)."""
    shown = masked(provenance)
    return {
        **dataclasses.asdict(shown),
        "services": {name: dataclasses.asdict(svc) for name, svc in shown.services.items()},
        "packages": dict(shown.packages),
    }


def provenance_from(data: object, where: str) -> Provenance:
    """The provenance a ``results.json`` row holds (absent: none); raises ValueError naming
    *where* when it is not one."""
    if data is None:
        return Provenance()
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: 'provenance' must be an object, not {data!r}")
    services = data.get("services") or {}
    packages = data.get("packages") or {}
    if not isinstance(services, Mapping) or not all(
        isinstance(v, Mapping) for v in services.values()
    ):
        raise ValueError(f"{where}: provenance 'services' must map names to objects")
    if not isinstance(packages, Mapping):
        raise ValueError(f"{where}: provenance 'packages' must map names to versions")
    return known_only(Provenance.from_dict(data))


def known_only(provenance: Provenance) -> Provenance:
    """*provenance* without the services it knows nothing of: a run that recorded only empty
    entries recorded nothing, and is compared with nothing."""
    services = {k: v for k, v in provenance.services.items() if v != ServiceProvenance()}
    if len(services) == len(provenance.services):
        return provenance
    return dataclasses.replace(provenance, services=services)
