"""The ``rl4llm`` command.

``rl4llm list``                                   names every experiment with a one-line summary
``rl4llm run NAME --out DIR [--seed N] [--flags]``  runs one and writes metrics.json, curves.csv, figure.png
``rl4llm show NAME``                              prints an experiment's parameters: default, range, help

Flags are the experiment's config fields in kebab-case (``--kl-coef 0.05``; ``inf`` for "no limit" where the
range allows it; ``none`` where it allows None; sequences comma-separated). Bad names and bad values print one
line naming the flag and its valid values and exit with code 2 (no traceback): the config reports the failing
field in :class:`~rl4llm.config.ConfigError`, so no message text is parsed. Other subcommands (``pretrain``,
``make-assignments``, ...) are added by the modules that own them through :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
import typing
from collections.abc import Sequence
from typing import Any

from rl4llm.config import ConfigError, describe

#: Extra subcommands: name -> (module path, help). The module defines ``add_arguments(parser)`` and ``main(args)``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": ("rl4llm.lm.pretrain", "train the shipped tiny GPT-2 checkpoint(s) from scratch"),
    "pretrain-arithmetic": ("rl4llm.prompting.pretrain", "train the shipped arithmetic tiny GPT-2 (Prompt-OIRL)"),
    "pretrain-reasoning": ("rl4llm.rlvr.pretrain", "train the shipped reasoning tiny GPT-2 (RLVR, chapter 7)"),
    "make-assignments": ("rl4llm.assignments.generate", "generate the student copies of the assignments"),
}


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def parse_value(field_name: str, annotation: Any, text: str) -> Any:
    """Convert a flag's text to the config field's type (int, float, bool, str, Literal, tuples/lists of these)."""
    if isinstance(annotation, str):  # postponed annotations: resolved by _field_types
        raise TypeError(f"unresolved annotation for {field_name}: {annotation}")
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    flag = "--" + field_name.replace("_", "-")
    try:
        if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
            non_none = [a for a in args if a is not type(None)]
            if text.lower() == "none" and len(non_none) < len(args):
                return None
            return parse_value(field_name, non_none[0], text)
        if origin is typing.Literal:
            for choice in args:
                if str(choice) == text:
                    return choice
            raise UsageError(f"{flag} must be one of {', '.join(map(str, args))}; got {text!r}")
        if origin in (tuple, list):
            inner = args[0] if args else str
            items = [parse_value(field_name, inner, t) for t in text.split(",") if t.strip()]
            return tuple(items) if origin is tuple else items
        if annotation is bool:
            return _bool(text)
        if annotation is int:
            return int(text)
        if annotation is float:
            return float(text)
        return annotation(text) if callable(annotation) else text
    except UsageError:
        raise
    except (ValueError, TypeError):
        tname = getattr(annotation, "__name__", str(annotation))
        raise UsageError(f"{flag} expects {tname}; got {text!r}") from None


def _field_types(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints.get(f.name, str) for f in dataclasses.fields(config_cls)}


def _parse_overrides(config_cls: type, extra: Sequence[str]) -> dict[str, Any]:
    types = _field_types(config_cls)
    valid = ", ".join("--" + n.replace("_", "-") for n in types)
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--"):
            raise UsageError(f"unexpected argument {tok!r}; flags are: {valid}")
        key, eq, val = tok[2:].partition("=")
        name = key.replace("-", "_")
        if name not in types:
            raise UsageError(f"unknown flag --{key}; valid flags: {valid}")
        if not eq:
            if i + 1 >= len(extra):
                raise UsageError(f"--{key} needs a value")
            i += 1
            val = extra[i]
        overrides[name] = parse_value(name, types[name], val)
        i += 1
    return overrides


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl4llm", description="Experiments of 'Reinforcement Learning in the Era of LLMs'."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    show = sub.add_parser("show", help="show an experiment's parameters: default, valid range and help")
    show.add_argument("name")
    runp = sub.add_parser(
        "run", help="run an experiment", description="Run an experiment; extra --flags set its config fields."
    )
    runp.add_argument("name")
    runp.add_argument("--out", required=True, help="output folder for metrics.json, curves.csv, figure.png")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 usage error)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    from rl4llm import experiments

    try:
        if args.command == "list":
            if extra:
                raise UsageError(f"unexpected arguments: {' '.join(extra)}")
            names = experiments.list_experiments()
            width = max(map(len, names), default=0)
            for n in names:
                print(f"{n:<{width}}  {experiments.get_experiment(n).summary}")
            return 0
        if args.command == "show":
            exp = _get(args.name)
            print(format_parameters(exp.config_cls))
            return 0
        if args.command == "run":
            exp = _get(args.name)
            overrides = _parse_overrides(exp.config_cls, extra)
            try:
                experiments.config_from_overrides(args.name, **overrides)  # validate before running
            except ConfigError as e:  # the field is known: name its flag
                msg = str(e)
                msg = (
                    _flag(e.field) + msg[len(e.field) :]
                    if msg.startswith(e.field + " ")
                    else f"{_flag(e.field)}: {msg}"
                )
                raise UsageError(msg) from None
            except (ValueError, TypeError) as e:
                raise UsageError(str(e)) from None
            result = experiments.run_experiment(args.name, out=args.out, **overrides)
            from rl4llm.distributed import is_main_process

            if is_main_process():  # under accelerate launch, rank 0 wrote the files and reports them
                print(json.dumps(experiments._jsonable(result.metrics), sort_keys=True))
                print(f"wrote {args.out}/metrics.json, curves.csv, figure.png")
            return 0
        if args.command in SUBCOMMANDS:
            if extra:
                raise UsageError(f"unexpected arguments: {' '.join(extra)}")
            module = importlib.import_module(SUBCOMMANDS[args.command][0])
            return int(module.main(args) or 0)
    except UsageError as e:
        print(f"rl4llm: error: {e}", file=sys.stderr)
        return 2
    return 2


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def format_parameters(config_cls: type) -> str:
    """``rl4llm show``'s table: one row per config field with its flag, default, valid range and help."""
    rows = [(_flag(r["name"]), _text(r["default"]), r["range"], r["help"]) for r in describe(config_cls)]
    header = ("flag", "default", "range", "help")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    return "\n".join(line.rstrip() for line in lines)


def _text(value: Any) -> str:
    """A default as it is typed on the command line (``inf``, ``none``, comma-separated sequences)."""
    if isinstance(value, (tuple, list)):
        return ",".join(_text(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, str):
        return repr(value) if value == "" else value
    return str(value).lower() if isinstance(value, bool) else str(value)


def _get(name: str):
    from rl4llm import experiments

    try:
        return experiments.get_experiment(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
