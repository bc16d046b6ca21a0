"""Dataclass configs that describe and check themselves, so that everything else derives from them.

A config is a frozen dataclass whose every field has a default and a docstring (the string literal
under it), and optionally bounds or choices (`bounded`). `field_specs` reads all of that once;
`check_fields` (called from the config's `__post_init__`) turns enum values given as strings into
members and refuses a value out of bounds, naming the field. A command's options (`cli/options.py`)
and an API's request schema (`api/schemas.py`) are built from `field_specs`, so that a default, a
bound or a help text lives in one place: the dataclass.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import numbers
import textwrap
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any, TypeVar

Config = TypeVar("Config")

__all__ = ["FieldSpec", "bounded", "check_fields", "config_from_mapping", "field_docs", "field_specs"]


@dataclass(frozen=True)
class FieldSpec:
    """One field of a config: what a command option or a schema field needs to know."""

    name: str
    type: Any
    """The resolved annotation (int, float, str, a StrEnum, or tuple[StrEnum, ...])."""
    default: Any
    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    """The allowed values of a `str` field."""

    @property
    def enum(self) -> type[Enum] | None:
        """The enum of an enum field, or of the items of a tuple-of-enum field."""
        for candidate in (self.type, *typing.get_args(self.type)):
            if isinstance(candidate, type) and issubclass(candidate, Enum):
                return candidate
        return None

    @property
    def is_sequence(self) -> bool:
        return typing.get_origin(self.type) is tuple


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field with `default`, refused by `check_fields` outside [ge, le], at or below gt, or outside choices."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le, "choices": choices})


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it in the class body (its first paragraph, on one line)."""
    return _field_docs(cls)


def field_specs(cls: type) -> tuple[FieldSpec, ...]:
    """Every field of the dataclass `cls`, in order, with its resolved type, default, docstring and bounds."""
    return _field_specs(cls)


@cache
def _field_docs(cls: Any) -> dict[str, str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef)).body
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(inspect.cleandoc(following.value.value).split("\n\n")[0].split())
    return docs


@cache
def _field_specs(cls: Any) -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has no default")
        meta = f.metadata
        specs.append(
            FieldSpec(
                f.name,
                hints[f.name],
                f.default,
                docs.get(f.name, ""),
                meta.get("ge"),
                meta.get("gt"),
                meta.get("le"),
                meta.get("choices"),
            )
        )
    return tuple(specs)


def check_fields(config: Any) -> None:
    """Coerce enum fields given as strings (in place: call from `__post_init__`) and check every bound.

    Raises ValueError naming the first field that is refused.
    """
    for spec in field_specs(type(config)):
        value = getattr(config, spec.name)
        enum = spec.enum
        if enum is not None:
            value = _as_enum(spec, enum, value)
            object.__setattr__(config, spec.name, value)
        elif spec.type is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{spec.name} must be an integer, got {value!r}")
        elif spec.type is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{spec.name} must be a number, got {value!r}")
        elif spec.type is str and not isinstance(value, str):
            raise ValueError(f"{spec.name} must be a string, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise ValueError(f"{spec.name} must be one of {spec.choices}, got {value!r}")
        _check_bounds(spec, value)


def _as_enum(spec: FieldSpec, enum: type[Enum], value: Any) -> Any:
    names = tuple(member.value for member in enum)
    if spec.is_sequence:
        if isinstance(value, str) or not isinstance(value, tuple | list) or not value:
            raise ValueError(f"{spec.name} must be a non-empty sequence taken from {names}, got {value!r}")
        try:
            return tuple(enum(item) for item in value)
        except ValueError:
            raise ValueError(f"{spec.name} must be taken from {names}, got {tuple(value)}") from None
    try:
        return enum(value)
    except ValueError:
        raise ValueError(f"{spec.name} must be one of {names}, got {value!r}") from None


def _check_bounds(spec: FieldSpec, value: Any) -> None:
    name, ge, gt, le = spec.name, spec.ge, spec.gt, spec.le
    if ge is not None and le is not None and not ge <= value <= le:
        raise ValueError(f"{name} must lie in [{ge}, {le}], got {value}")
    if ge is not None and value < ge:
        raise ValueError(f"{name} must not be negative, got {value}" if ge == 0 else f"{name} must be at least {ge}, got {value}")
    if le is not None and value > le:
        raise ValueError(f"{name} must be at most {le}, got {value}")
    if gt is not None and not value > gt:
        raise ValueError(f"{name} must be positive, got {value}" if gt == 0 else f"{name} must exceed {gt}, got {value}")


def config_from_mapping(cls: type[Config], values: Mapping[str, Any]) -> Config:
    """A config of type `cls` from a mapping (a TOML table, a JSON object): unknown keys are refused, lists
    become tuples, every other field keeps its default."""
    names = {spec.name for spec in field_specs(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(known: {', '.join(spec.name for spec in field_specs(cls))})"
        )
    return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})
