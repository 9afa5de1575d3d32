"""Expand a spec's matrix into ordered variants, exactly as GitHub Actions expands a matrix."""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from stackmatrix.spec.checks import value_key
from stackmatrix.spec.models import Spec
from stackmatrix.spec.values import Scalar, scalar_text

MAX_ID_LENGTH = 40
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HASH_LENGTH = 8


@dataclass(frozen=True, eq=False)
class Variant:
    """One combination of matrix values; ``id`` is a slug unique within its spec."""

    id: str
    values: Mapping[str, Scalar]

    @property
    def experimental(self) -> bool:
        """Whether this variant may fail without failing the run (``experimental: true``)."""
        return self.values.get("experimental") is True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Variant):
            return NotImplemented
        return self.id == other.id and dict(self.values) == dict(other.values)

    def __hash__(self) -> int:
        return hash(self.id)


def expand(spec: Spec) -> list[Variant]:
    """The variants of ``spec`` in GitHub's order: the product of the axes minus excludes,
    extended by includes, then the combinations that includes add."""
    combinations = combine(spec.axes, spec.exclude, spec.include)
    ids = variant_ids(combinations, tuple(spec.axes))
    return [
        Variant(id=ident, values=MappingProxyType(values))
        for ident, values in zip(ids, combinations, strict=True)
    ]


def combine(
    axes: Mapping[str, Sequence[Scalar]],
    exclude: Iterable[Mapping[str, Scalar]] = (),
    include: Iterable[Mapping[str, Scalar]] = (),
) -> list[dict[str, Scalar]]:
    """The matrix combinations as plain dicts, following GitHub's documented rules."""
    keys = list(axes)
    position = {key: index for index, key in enumerate(keys)}
    # An exclude entry naming a key that is not an axis matches nothing.
    excluded = [_matcher(entry, position) for entry in exclude if all(k in position for k in entry)]
    pairs = [[(value, value_key(value)) for value in axes[key]] for key in keys]
    originals: list[dict[str, Scalar]] = []
    original_keys: list[tuple[tuple[str, Scalar], ...]] = []
    for product in itertools.product(*pairs) if keys else ():
        keyed = tuple(compared for _, compared in product)
        if any(pick(keyed) == wanted for pick, wanted in excluded):
            continue
        originals.append(dict(zip(keys, [value for value, _ in product], strict=True)))
        original_keys.append(keyed)
    added: list[dict[str, Scalar]] = []
    for entry in include:
        pick, wanted = _matcher(entry, position)
        extra = {key: value for key, value in entry.items() if key not in position}
        fitted = False
        for combo, keyed in zip(originals, original_keys, strict=True):
            # An include fits where it overwrites no original value (added ones may change).
            if pick(keyed) == wanted:
                combo.update(extra)
                fitted = True
        if not fitted:
            added.append(dict(entry))
    return originals + added


_Keyed = tuple[tuple[str, Scalar], ...]


def _matcher(
    entry: Mapping[str, Scalar], position: Mapping[str, int]
) -> tuple[Callable[[_Keyed], _Keyed], _Keyed]:
    """A function picking an entry's axes out of a keyed combination, and the wanted values."""
    constraints = [
        (position[key], value_key(value)) for key, value in entry.items() if key in position
    ]
    indexes = [index for index, _ in constraints]
    wanted = tuple(value for _, value in constraints)
    if not indexes:
        return (lambda _keyed: ()), ()
    getter = operator.itemgetter(*indexes)
    if len(indexes) == 1:
        return (lambda keyed: (getter(keyed),)), wanted
    return getter, wanted


def slug(text: str) -> str:
    """Lowercase ASCII letters and digits joined by ``-``; empty if nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _digest(values: Mapping[str, Scalar]) -> str:
    # type names keep 1, 1.0, true and "1" apart; repr() of these types is stable across runs.
    canonical = "\x1f".join(f"{k}\x1e{type(v).__name__}\x1e{v!r}" for k, v in values.items())
    return hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_LENGTH]


@functools.lru_cache(maxsize=8192)
def _pair(key: str, text: str) -> str:
    return f"{_part(key)}-{_part(text)}"


def _part(text: str) -> str:
    return slug(text) or "x" + hashlib.sha256(text.encode()).hexdigest()[:6]


def natural_id(values: Mapping[str, Scalar], axes: Sequence[str]) -> str:
    """The readable slug of a combination: its axis values, or every key of an added one."""
    keys = axes if axes and all(key in values for key in axes) else list(values)
    parts = [_pair(key, scalar_text(values[key])) for key in keys if key != "experimental"]
    return "_".join(parts) or ("experimental" if values.get("experimental") is True else "default")


def _shorten(base: str, suffix: str) -> str:
    head = base[: MAX_ID_LENGTH - len(suffix) - 1].rstrip("-_")
    return f"{head}-{suffix}"


def variant_ids(combinations: Sequence[Mapping[str, Scalar]], axes: Sequence[str]) -> list[str]:
    """Unique ids for ``combinations``, stable for the same spec.

    A slug longer than MAX_ID_LENGTH, or shared by several combinations, gets a short hash of
    the values; exact duplicates (two identical include entries) are numbered.
    """
    natural = [natural_id(values, axes) for values in combinations]
    counts = Counter(natural)
    ids: list[str] = []
    used: set[str] = set()
    for base, values in zip(natural, combinations, strict=True):
        ident = base
        if counts[base] > 1 or len(base) > MAX_ID_LENGTH:
            ident = _shorten(base, _digest(values))
        number = 1
        candidate = ident
        while candidate in used:
            number += 1
            candidate = _shorten(base, f"{_digest(values)}-{number}")
        used.add(candidate)
        ids.append(candidate)
    return ids
