"""Safe YAML loading that remembers where every key and value came from.

Scalars resolve with the YAML 1.2 core schema (as GitHub Actions and Compose read YAML):
``on``/``off``/``yes``/``no`` stay strings, there are no timestamps. Anchors, aliases and
merge keys (``<<``) work; alias bombs and deep nesting are stopped with a clear error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from stackmatrix.errors import SpecError

KeyPath = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_NODES = 100_000
_TOO_DEEP = f"nesting deeper than {MAX_DEPTH} levels"
# The only trace libyaml leaves of its own nesting limit is the text of its scanner error.
_LIBRARY_DEPTH_LIMIT = "exceeded maximum nesting depth"

_TAG = "tag:yaml.org,2002:"
_INT = r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
_FLOAT = (
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
    r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


class _CoreResolver(yaml.resolver.Resolver):
    """YAML 1.2 core schema resolver, plus the ``<<`` merge key."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class-level registry


for _tag, _regexp, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", rf"^(?:{_INT})$", "-+0123456789"),
    ("float", rf"^(?:{_FLOAT})$", "-+0123456789."),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
):
    _CoreResolver.add_implicit_resolver(_TAG + _tag, re.compile(_regexp), list(_first))


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    pass


_Loader.yaml_implicit_resolvers = _CoreResolver.yaml_implicit_resolvers


# Neither of these two is a dataclass: each dataclass costs a command's start about 1 ms of
# generated code, and every command that reads a matrix file imports this module.
class Mark(NamedTuple):
    """A 1-based position in a source file (ordered by line, then column)."""

    line: int
    column: int


class Document:
    """Plain data loaded from YAML, with the position of every value and key."""

    __slots__ = ("data", "keys", "values")

    def __init__(
        self,
        data: Any,
        values: dict[KeyPath, Mark] | None = None,
        keys: dict[KeyPath, Mark] | None = None,
    ) -> None:
        self.data = data
        self.values: dict[KeyPath, Mark] = {} if values is None else values
        self.keys: dict[KeyPath, Mark] = {} if keys is None else keys

    def __repr__(self) -> str:
        return f"Document(data={self.data!r}, values={self.values!r}, keys={self.keys!r})"

    def value_mark(self, path: KeyPath) -> Mark:
        """Position of the value at ``path`` or of its nearest known ancestor."""
        for end in range(len(path), -1, -1):
            mark = self.values.get(path[:end])
            if mark is not None:
                return mark
        return Mark(1, 1)

    def key_mark(self, path: KeyPath) -> Mark:
        """Position of the key that ends ``path`` (or of the value if there is no key)."""
        return self.keys.get(path) or self.value_mark(path)


def format_path(path: KeyPath) -> str:
    """``('include', 0, 'os')`` -> ``include[0].os``; the empty path is ``(root)``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def problem(source: str, mark: Mark | None, path: str, message: str) -> str:
    """One problem line: ``FILE:LINE:COL: key.path: message``."""
    where = f"{source}:{mark.line}:{mark.column}" if mark else source
    return f"{where}: {path}: {message}"


def read_text(path: Path, source: str) -> str:
    """Read a UTF-8 text file, turning every failure into a SpecError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise SpecError(f"{source}: is a directory, expected a YAML file") from None
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            problem(source, Mark(line, column), "(yaml)", "the file is not valid UTF-8 text")
        ) from None


def load_file(path: Path, source: str | None = None) -> Document:
    """Read and load a YAML file; ``source`` is how the file is named in messages."""
    name = str(path) if source is None else source
    return load_text(read_text(path, name), name)


def load_text(text: str, source: str) -> Document:
    """Load one YAML document. Raises SpecError with every problem found."""
    try:
        too_deep = _too_deep(text)
        if too_deep is not None:
            raise SpecError(problem(source, too_deep, "(yaml)", _TOO_DEEP))
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_syntax_problem(exc, source)) from None
    except yaml.YAMLError as exc:
        raise SpecError(_reader_problem(exc, text, source)) from None
    builder = _Builder(source)
    data = None if node is None else builder.build(node, ())
    if builder.problems:
        raise SpecError(builder.problems)
    return Document(data, builder.values, builder.keys)


def _too_deep(text: str) -> Mark | None:
    # The parser is iterative, PyYAML's composer is recursive: bound nesting before composing.
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH and event.start_mark is not None:
                return Mark(event.start_mark.line + 1, event.start_mark.column + 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = Mark(mark.line + 1, mark.column + 1) if mark else None
    if _LIBRARY_DEPTH_LIMIT in (exc.problem or ""):
        # libyaml 0.2.6+ (bundled since PyYAML 6.0.4) stops deep flow nesting itself, before
        # our own count reaches MAX_DEPTH: the same document gets the same message either way.
        return problem(source, where, "(yaml)", _TOO_DEEP)
    message = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem:
        message = f"{exc.problem} ({exc.context})"
    return problem(source, where, "(yaml)", message)


def _reader_problem(exc: yaml.YAMLError, text: str, source: str) -> str:
    position = getattr(exc, "position", 0)
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = getattr(exc, "character", None)
    if isinstance(character, int):
        character = chr(character)
    what = f"character {character!r}" if isinstance(character, str) else "a character"
    return problem(source, Mark(line, column), "(yaml)", f"{what} is not allowed in YAML")


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed node graph into plain data, expanding aliases within limits."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.values: dict[KeyPath, Mark] = {}
        self.keys: dict[KeyPath, Mark] = {}
        self.problems: list[str] = []
        self.nodes = 0

    def fail(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        self.problems.append(problem(self.source, _mark(node), format_path(path), message))

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SpecError(
                problem(
                    self.source,
                    self.values.get(path[:1]) or _mark(node),
                    format_path(path[:1]),
                    f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)",
                )
            )
        if len(path) > MAX_DEPTH:
            raise SpecError(
                problem(
                    self.source,
                    _mark(node),
                    format_path(path[:4]) + "...",
                    f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)",
                )
            )
        self.values[path] = _mark(node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + "seq":
                self.fail(node, path, f"unsupported tag {_short(node.tag)!r}")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag != _TAG + "map":
            self.fail(node, path, f"unsupported tag {_short(node.tag)!r}")
        return self.mapping(node, path)

    def scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        value: str = node.value
        kind = node.tag.removeprefix(_TAG)
        try:
            match kind:
                case "str":
                    return value
                case "null":
                    return None
                case "bool":
                    return {"true": True, "false": False}[value.lower()]
                case "int":
                    return _to_int(value)
                case "float":
                    return _to_float(value)
                case _:
                    self.fail(node, path, f"unsupported tag {_short(node.tag)!r}")
                    return value
        except (KeyError, ValueError):
            self.fail(node, path, f"{value!r} is not a valid {kind}")
            return value

    def mapping(self, node: yaml.Node, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in self._merged(node, path):
            result[key] = value
        seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, path, "a mapping key must be a plain value, not a collection")
                continue
            key = str(key_node.value)
            if key in seen:
                first = seen[key]
                self.fail(
                    key_node, (*path, key), f"duplicate key (first defined at line {first.line})"
                )
                continue
            seen[key] = _mark(key_node)
            self.keys[(*path, key)] = _mark(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _merged(self, node: yaml.Node, path: KeyPath) -> Iterator[tuple[str, Any]]:
        # Merge keys: explicit keys win, then earlier merge sources win over later ones.
        for key_node, value_node in node.value:
            if key_node.tag != _TAG + "merge":
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            taken: set[str] = set()
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.fail(
                        source, path, "a merge key (<<) takes a mapping or a list of mappings"
                    )
                    continue
                own = self.values[path]
                merged = self.build(source, path)
                self.values[path] = own
                for key, value in merged.items():
                    if key not in taken:
                        taken.add(key)
                        yield key, value


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _to_int(value: str) -> int:
    text = value.lstrip("+")
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _to_float(value: str) -> float:
    lowered = value.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(value)
