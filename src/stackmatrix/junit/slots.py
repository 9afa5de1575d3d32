"""Making instances of frozen, slotted dataclasses a million times: without the generated
``__init__``, which sets each field through ``object.__setattr__``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_Slotted = TypeVar("_Slotted")


def slots_maker(cls: type[_Slotted]) -> Callable[..., _Slotted]:
    """A function making an instance of the frozen, slotted dataclass *cls* from all its
    fields in order, without its ``__init__`` (which sets each one through
    ``object.__setattr__``): for records made a million times."""
    setters = tuple(vars(cls)[name].__set__ for name in vars(cls)["__slots__"])
    new = object.__new__
    if len(setters) == 6:  # CaseRecord's: set one by one, without a loop
        s1, s2, s3, s4, s5, s6 = setters

        def make_six(*values: Any) -> _Slotted:
            instance: _Slotted = new(cls)
            v1, v2, v3, v4, v5, v6 = values
            s1(instance, v1)
            s2(instance, v2)
            s3(instance, v3)
            s4(instance, v4)
            s5(instance, v5)
            s6(instance, v6)
            return instance

        return make_six

    def make(*values: Any) -> _Slotted:
        instance: _Slotted = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(instance, value)
        return instance

    return make
