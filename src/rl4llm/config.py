"""Declarative configs: every knob is one dataclass field that declares its range and a one-line help.

A config class lists its fields with :func:`param` and validates them all with one call::

    @dataclass(frozen=True)
    class PPOConfig:
        clip_eps: float = param(0.2, low=0.0, allow_inf=True,
                                help="PPO clip range ε of the ratio; inf switches clipping off")
        n_epochs: int = param(4, low=1, help="passes over each batch of rollouts")

        def __post_init__(self) -> None:
            validate(self)          # then any rule that ties two fields together

:func:`validate` reads each field's declaration and raises :class:`ConfigError` (a ``ValueError``) naming the field
and its valid range; ``err.field`` holds the field's name, so the command line maps the error to its flag without
reading the message. :func:`describe` lists default, range and help of every field (``rl4llm show NAME``).

Infinity is handled one way everywhere: a field declared with ``allow_inf=True`` accepts ``math.inf`` (on the
command line ``inf``), and the code that uses it treats ``inf`` as "no limit" (see :func:`is_unbounded`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ConfigError", "param", "validate", "describe", "field_spec", "is_unbounded", "ParamSpec"]

_KEY = "rl4llm"


class ConfigError(ValueError):
    """A config field has a bad value. ``field`` names it; the message says the valid range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """What :func:`param` declares about one field (read by :func:`validate` and :func:`describe`)."""

    help: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple[Any, ...] | None = None
    allow_inf: bool = False
    allow_none: bool = False
    kind: str = "auto"  # "auto" (from the default's type), "int", "float", "bool", "str", "seq"

    def range_text(self) -> str:
        """The valid values in words, e.g. ``(0, inf]``, ``one of 'mean', 'loo'``, ``true/false``."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "bool":
            text = "true/false"
        elif self.low is None and self.high is None:
            text = "any" if not self.allow_inf else "any, inf allowed"
        else:
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            lo_b = "[" if (self.low is not None and self.low_inclusive) else "("
            hi_b = (
                "]"
                if (self.high is None and self.allow_inf) or (self.high is not None and self.high_inclusive)
                else ")"
            )
            text = f"{lo_b}{lo}, {hi}{hi_b}"
            if self.kind == "int":
                text = "int in " + text
        if self.allow_none:
            text += " or None"
        return text


def param(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    choices: Sequence[Any] | None = None,
    allow_inf: bool = False,
    allow_none: bool = False,
    kind: str = "auto",
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its valid range and one line of help.

    Args:
        default: the default value (what the book runs).
        help: one line for ``rl4llm show`` and the docs.
        low, high: bounds of a number (``None``: unbounded on that side); ``low_inclusive`` / ``high_inclusive``.
        choices: instead of a range, the allowed values.
        allow_inf: accept ``math.inf`` (meaning "no limit"; for ``high=None`` the interval reads ``[low, inf]``).
        allow_none: accept ``None`` (its meaning goes in ``help``).
        kind: ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"seq"``; default: taken from the default's type.
        default_factory: for mutable defaults (lists), as in :func:`dataclasses.field`.
    """
    if not help or not isinstance(help, str):
        raise ValueError("help must be a non-empty string")
    if kind not in ("auto", "int", "float", "bool", "str", "seq"):
        raise ValueError(f"kind must be one of 'auto', 'int', 'float', 'bool', 'str', 'seq'; got {kind!r}")
    if kind == "auto":
        probe = (
            default
            if default is not dataclasses.MISSING
            else (default_factory() if default_factory is not dataclasses.MISSING else None)
        )
        if isinstance(probe, bool):
            kind = "bool"
        elif isinstance(probe, (int, np.integer)) and choices is None:
            kind = "int"
        elif isinstance(probe, (float, np.floating)):
            kind = "float"
        elif isinstance(probe, str):
            kind = "str"
        elif isinstance(probe, (list, tuple)):
            kind = "seq"
    spec = ParamSpec(
        help=help,
        low=low,
        high=high,
        low_inclusive=low_inclusive,
        high_inclusive=high_inclusive,
        choices=None if choices is None else tuple(choices),
        allow_inf=allow_inf,
        allow_none=allow_none,
        kind=kind,
    )
    kwargs: dict[str, Any] = {"metadata": {_KEY: spec}}
    if default_factory is not dataclasses.MISSING:
        kwargs["default_factory"] = default_factory
    else:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


def field_spec(field: dataclasses.Field) -> ParamSpec | None:
    """The :class:`ParamSpec` of a dataclass field, or None for a field not declared with :func:`param`."""
    return field.metadata.get(_KEY)


def is_unbounded(value: Any) -> bool:
    """True for ``math.inf``: the value of an ``allow_inf`` field that means "no limit" (e.g. no clipping)."""
    return (
        isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isinf(value) and value > 0
    )


def _check_number(name: str, value: Any, spec: ParamSpec) -> None:
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(
                name, f"{name} must be an int in {spec.range_text().removeprefix('int in ')}, got {value!r}"
            )
    elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(name, f"{name} must be a number in {spec.range_text()}, got {value!r}")
    v = float(value)
    if math.isnan(v):
        raise ConfigError(name, f"{name} must be a number in {spec.range_text()}, got nan")
    if math.isinf(v):
        if spec.allow_inf and v > 0 and spec.high is None:
            return
        raise ConfigError(name, f"{name} must be in {spec.range_text()}, got {value}")
    ok = True
    if spec.low is not None:
        ok &= v >= spec.low if spec.low_inclusive else v > spec.low
    if spec.high is not None:
        ok &= v <= spec.high if spec.high_inclusive else v < spec.high
    if not ok:
        where = spec.range_text()
        where = "an " + where if where.startswith("int in ") else "in " + where
        raise ConfigError(name, f"{name} must be {where}, got {value}")


def validate(config: Any) -> None:
    """Check every :func:`param` field of a dataclass instance; raise :class:`ConfigError` on the first bad one."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    for f in dataclasses.fields(config):
        spec = field_spec(f)
        if spec is None:
            continue
        value = getattr(config, f.name)
        if value is None:
            if spec.allow_none:
                continue
            raise ConfigError(f.name, f"{f.name} must be {spec.range_text()}, got None")
        if spec.choices is not None:
            if value not in spec.choices:
                raise ConfigError(f.name, f"{f.name} must be {spec.range_text()}; got {value!r}")
        elif spec.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f.name, f"{f.name} must be true/false, got {value!r}")
        elif spec.kind == "str":
            if not isinstance(value, str):
                raise ConfigError(f.name, f"{f.name} must be a string, got {value!r}")
        elif spec.kind == "seq":
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f.name, f"{f.name} must be a list, got {value!r}")
            if spec.low is not None or spec.high is not None:
                for item in value:
                    _check_number(f.name, item, dataclasses.replace(spec, kind="float"))
        else:
            _check_number(f.name, value, spec)


def describe(config_cls: type) -> list[dict[str, Any]]:
    """One row per field of a config class: ``name``, ``default``, ``range`` and ``help`` (for ``rl4llm show``)."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls must be a dataclass, got {config_cls!r}")
    rows = []
    for f in dataclasses.fields(config_cls):
        spec = field_spec(f)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        rows.append(
            {
                "name": f.name,
                "default": default,
                "range": spec.range_text() if spec else "",
                "help": spec.help if spec else "",
            }
        )
    return rows
