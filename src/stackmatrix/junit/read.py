"""Reading JUnit XML safely: bounded size, no entities, no network; per-testcase results.

A testcase's outcome is the first of error, failure, skipped that it contains, so each testcase
counts exactly once and ``tests == passed + failures + errors + skipped``. Counts always come
from the testcases; the count attributes of a file are never trusted.
"""

from __future__ import annotations

import enum
import errno
import math
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as StdET

import defusedxml
from junitparser import junitparser as _jp

from stackmatrix.junit.entities import declared_encoding, may_declare_entities, refuse_entities
from stackmatrix.junit.slots import slots_maker
from stackmatrix.results.journal import TestCounts

# Elements come from whichever ElementTree junitparser uses (lxml when installed, else the
# standard library); both share the API used here, so they are typed loosely on purpose.
XmlElement = Any
ETREE: Any = vars(_jp)["etree"]

MAX_JUNIT_BYTES = 128 * 1024 * 1024
"""Inputs larger than this are reported as broken instead of being loaded into memory."""
NESTED_SUITE_SEPARATOR = " / "

_RESULT_TAGS = ("skipped", "error", "failure")
_UNSEEN: Any = object()
_ILLEGAL_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Outcome(enum.StrEnum):
    """Outcome of one testcase."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One testcase as read from a JUnit file (names as the tests wrote them)."""

    suite: str
    classname: str
    name: str
    outcome: Outcome
    message: str = ""  # message attribute of the failure/error/skipped element
    text: str = ""  # its text: usually the traceback
    file: str | None = None
    line: int | None = None
    time: float | None = None
    # ``classname::name``, or just the name when there is no classname.
    test_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        test_id = f"{self.classname}::{self.name}" if self.classname else self.name
        object.__setattr__(self, "test_id", sys.intern(test_id))


new_case_result: Callable[..., CaseResult] = slots_maker(CaseResult)
"""A CaseResult from all its fields in order, ``test_id`` last (``classname::name``, interned;
the name alone without a classname), as its ``__init__`` makes it, in a fraction of the time:
for the million testcases of a big run."""


@dataclass(frozen=True)
class ParsedReport:
    """The outcome of reading one JUnit file: a root element, or the problem that prevented it."""

    path: Path
    root: XmlElement | None
    problem: str = ""
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Reading


def clean_xml_text(text: str) -> str:
    """Replace characters XML 1.0 cannot carry (ANSI escapes, NUL, ...) by a visible ``\\xNN``."""
    if _ILLEGAL_XML_CHARS.search(text) is None:
        return text
    return _ILLEGAL_XML_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _safe_parse(data: bytes) -> XmlElement:
    """Parse without entities, external references or network; raises on any of them."""
    if may_declare_entities(data):
        refuse_entities(data)
    if ETREE is StdET:
        # Entity-free (checked above): the C parser builds the tree, several times faster
        # than the pure-Python parser defusedxml subclasses.
        return StdET.fromstring(data)  # noqa: S314 - entity-free, checked by expat above
    # junitparser runs on lxml here: the document is known to be entity-free, so parse it
    # with a hardened lxml parser to get elements junitparser can hold.
    parser = ETREE.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    return ETREE.fromstring(data, parser)


class _Unreadable(Exception):
    """Internal signal carrying the reason a file cannot be read."""

    pass


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """The bytes of *path*, opened without following a symbolic link (a report the tests
    turned into a link to a file elsewhere is refused, never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise _Unreadable("file not found") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise _Unreadable(_link_problem(path)) from exc
        if exc.errno == errno.EISDIR:
            raise _Unreadable("is a directory, not a file") from exc
        raise _Unreadable(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _Unreadable("is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("is not a regular file")
        if info.st_size > max_bytes:
            raise _Unreadable(f"file is {info.st_size} bytes, over the limit of {max_bytes} bytes")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise _Unreadable(f"cannot read file: {exc.strerror or exc}") from exc
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:
        raise _Unreadable(f"file is over the limit of {max_bytes} bytes")
    if not data.strip():
        raise _Unreadable("file is empty")
    return data


def _link_problem(path: Path) -> str:
    try:
        target = f" to {path.readlink()}"
    except OSError:
        target = ""
    return f"is a symbolic link{target}; links in a run directory are not followed"


def _parse_bytes(data: bytes) -> tuple[XmlElement, str]:
    """The root element and a note on any repair made; raises _Unreadable."""
    try:
        return _safe_parse(data), ""
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        raise _Unreadable(f"XML entities are not allowed ({type(exc).__name__})") from exc
    except StdET.ParseError as exc:
        repaired = _repair(data)
        if repaired is not None:
            try:
                return _safe_parse(repaired[0]), repaired[1]
            except (StdET.ParseError, defusedxml.DefusedXmlException):
                pass
        raise _Unreadable(f"not well-formed XML: {exc}") from exc
    except Exception as exc:  # lxml's own errors, when junitparser runs on lxml
        raise _Unreadable(f"not well-formed XML: {exc}") from exc


def parse_junit(path: Path, *, max_bytes: int | None = None) -> ParsedReport:
    """Read a JUnit file safely; a missing, empty, oversized (over *max_bytes*, default
    ``MAX_JUNIT_BYTES``), malformed or non-JUnit file yields a report with a ``problem``
    instead of raising."""
    limit = MAX_JUNIT_BYTES if max_bytes is None else max_bytes
    try:
        root, repaired = _parse_bytes(_read_bounded(path, limit))
    except _Unreadable as exc:
        return ParsedReport(path, None, str(exc))
    tag = root.tag if isinstance(root.tag, str) else "?"
    if tag not in ("testsuites", "testsuite"):
        return ParsedReport(
            path,
            None,
            f"not a JUnit report: root element is <{tag}>, expected <testsuites> or <testsuite>",
        )
    return ParsedReport(path, root, "", (f"{path}: {repaired}",) if repaired else ())


def _repair(data: bytes) -> tuple[bytes, str] | None:
    """Fix the two common defects of reports written by test runners: invalid UTF-8 and control
    characters (ANSI colours) in text. Returns the fixed document and what was done, or None."""
    encoding = declared_encoding(data)
    if encoding not in ("utf-8", "utf8"):
        return None
    what = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        what.append("invalid UTF-8 bytes replaced by U+FFFD")
    cleaned = clean_xml_text(text)
    if cleaned != text:
        what.append("characters not allowed in XML replaced by \\xNN")
    if not what:
        return None
    return cleaned.encode("utf-8"), "; ".join(what)


def outcome_of(case: XmlElement) -> tuple[Outcome, XmlElement | None]:
    if not len(case):
        return Outcome.PASSED, None
    found: dict[str, XmlElement] = {}
    for child in case:
        tag = child.tag
        if tag in _RESULT_TAGS and tag not in found:
            found[tag] = child
    for tag, outcome in (
        ("error", Outcome.ERROR),
        ("failure", Outcome.FAILED),
        ("skipped", Outcome.SKIPPED),
    ):
        if tag in found:
            return outcome, found[tag]
    return Outcome.PASSED, None


def _iter_suites(elem: XmlElement, path: tuple[str, ...]) -> Iterator[tuple[XmlElement, str]]:
    """Every ``<testsuite>`` under *elem* (depth first), with its flattened name."""
    for child in elem.findall("testsuite"):  # a loop in C over a suite's many testcases
        own = child.get("name") or ""
        name_path = (*path, own) if own else path
        yield child, NESTED_SUITE_SEPARATOR.join(name_path)
        yield from _iter_suites(child, name_path)


def suites_of_root(root: XmlElement, fallback: str) -> Iterator[tuple[XmlElement, str]]:
    if root.tag == "testsuite":
        own = root.get("name") or fallback
        yield root, own
        yield from _iter_suites(root, (own,))
    else:
        yield from _iter_suites(root, ())


_FLOATS: dict[str, float | None] = {}
_FLOATS_KEPT = 65_536  # distinct times remembered: test runners write few (0.001 steps)


def to_float(raw: str | None) -> float | None:
    if raw is None:
        return None
    known = _FLOATS.get(raw, _UNSEEN)
    if known is not _UNSEEN:
        return known  # type: ignore[no-any-return]
    try:
        value: float | None = float(raw.replace(",", ""))
    except ValueError:
        value = None
    if value is not None and not math.isfinite(value):
        value = None
    if len(_FLOATS) < _FLOATS_KEPT:
        _FLOATS[raw] = value
    return value


def to_int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def case_groups(root: XmlElement, fallback: str) -> list[tuple[XmlElement, str, list[XmlElement]]]:
    """(suite element, suite name, its testcases) of a report; testcases directly under
    ``<testsuites>`` form a group of the root's own."""
    groups: list[tuple[XmlElement, str, list[XmlElement]]] = [
        (suite, name or fallback, suite.findall("testcase"))
        for suite, name in suites_of_root(root, fallback)
    ]
    loose = root.findall("testcase") if root.tag == "testsuites" else []
    if loose:
        groups.append((root, root.get("name") or fallback, loose))
    return groups


def result_of(case: XmlElement) -> tuple[Outcome, str, str]:
    """The outcome of a testcase that has children, and the message and text of the element
    that says it (one string for each repeated message or traceback)."""
    outcome, result = outcome_of(case)
    if result is None:
        return outcome, "", ""
    intern = sys.intern
    return outcome, intern(result.get("message") or ""), intern(result.text or "")


def iter_cases(parsed: ParsedReport) -> Iterator[CaseResult]:
    """Every testcase of a readable report; testcases directly under ``<testsuites>`` count too.
    Repeated names and messages share one string (a million testcases repeat most of them)."""
    root = parsed.root
    if root is None:
        return
    intern = sys.intern
    make = new_case_result
    passed = Outcome.PASSED
    for _suite, name_of_suite, cases in case_groups(root, parsed.path.stem):
        suite_name = intern(name_of_suite)
        for case in cases:
            get = case.get
            line = get("line")
            if len(case):
                outcome, message, text = result_of(case)
            else:  # most testcases: passed, nothing inside
                outcome, message, text = passed, "", ""
            classname = intern(get("classname") or "")
            name = intern(get("name") or "")
            yield make(
                suite_name,
                classname,
                name,
                outcome,
                message,
                text,
                get("file"),
                to_int(line) if line is not None else None,
                to_float(get("time")),
                intern(f"{classname}::{name}") if classname else name,
            )


def count_outcomes(outcomes: Iterable[Outcome]) -> TestCounts:
    """Totals of a sequence of testcase outcomes."""
    return counts_of(Counter(outcomes))  # counted in C


def counts_of(tally: Mapping[Outcome, int]) -> TestCounts:
    """Totals from a count per outcome."""
    return TestCounts(
        total=sum(tally.values()),
        passed=tally[Outcome.PASSED],
        failed=tally[Outcome.FAILED],
        errors=tally[Outcome.ERROR],
        skipped=tally[Outcome.SKIPPED],
    )


def read_counts(path: Path) -> TestCounts:
    """Totals of a JUnit file, counted from its testcases; an unreadable file counts as 1 error."""
    parsed = parse_junit(path)
    if parsed.root is None:
        return TestCounts(total=1, errors=1)
    return count_outcomes(case.outcome for case in iter_cases(parsed))
