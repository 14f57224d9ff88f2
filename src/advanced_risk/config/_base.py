"""Shared machinery of the configuration objects: error collection, ``from_dict`` / ``to_dict``.

A config reports *all* its bad fields at once in one :class:`~advanced_risk.errors.ConfigError`
(a subclass of ``InvalidInputError``), and ``from_dict`` rejects unknown keys, so a typo in a TOML
file is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Self

from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.measures.validation import check_range

__all__ = ["_ConfigMixin", "_as_enum", "_collect", "_in_range", "_one_of", "_require"]


def _collect(checks: list[Callable[[], object]], owner: str) -> None:
    """Run every check, gather the messages of those that fail, raise them together."""
    problems: list[str] = []
    for check in checks:
        try:
            check()
        except InvalidInputError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"{owner}: " + "; ".join(problems))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInputError(message)


class _ConfigMixin:
    """``from_dict`` / ``to_dict`` shared by every config."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from a mapping (e.g. a TOML table); unknown keys raise ``ConfigError``."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view (enums as their string values), suitable for JSON or TOML."""
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: (v.value if hasattr(v, "value") else v) for k, v in out.items()}


def _in_range(
    value: object, name: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> None:
    """``check_range`` for configs: a finite real in the interval, else ``InvalidInputError`` naming it."""
    check_range(value, name, lo, hi, lo_open=lo_open, hi_open=hi_open)


def _as_enum(config: object, name: str, enum: type[StrEnum]) -> None:
    """In ``__post_init__``: a plain string such as ``"historical"`` becomes the enum member."""
    value = getattr(config, name)
    if value in tuple(enum):
        object.__setattr__(config, name, enum(value))


def _one_of(value: object, name: str, enum: type[StrEnum]) -> None:
    """``InvalidInputError`` naming the field unless ``value`` is a member of ``enum``."""
    _require(value in tuple(enum), f"{name} must be one of {[m.value for m in enum]}, got {value!r}")
