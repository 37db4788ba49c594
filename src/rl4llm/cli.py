"""The ``rl4llm`` command.

``rl4llm list``                                   names every experiment with a one-line summary
``rl4llm run NAME --out DIR [--seed N] [--flags]``  runs one and writes metrics.json, curves.csv, figure.png
``rl4llm show NAME``                              prints an experiment's parameters and defaults

Flags are the experiment's config fields in kebab-case (``--kl-coef 0.05``). Bad names and bad values print
one line naming the valid choices and exit with code 2 (no traceback). Other subcommands (``pretrain``,
``make-assignments``, ...) are added by the modules that own them through :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import typing
from collections.abc import Sequence
from typing import Any

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
    parser = argparse.ArgumentParser(prog="rl4llm", description="Experiments of 'Reinforcement Learning in the Era of LLMs'.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    show = sub.add_parser("show", help="show an experiment's parameters and their defaults")
    show.add_argument("name")
    runp = sub.add_parser("run", help="run an experiment", description="Run an experiment; extra --flags set its config fields.")
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
            for f in dataclasses.fields(exp.config_cls):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                print(f"--{f.name.replace('_', '-')} {default!r}")
            return 0
        if args.command == "run":
            exp = _get(args.name)
            overrides = _parse_overrides(exp.config_cls, extra)
            try:
                result = experiments.run_experiment(args.name, out=args.out, **overrides)
            except (ValueError, TypeError) as e:  # config validation: names the parameter and its range
                msg = str(e)
                first = msg.split(" ", 1)[0]
                if first in overrides or any(f.name == first for f in dataclasses.fields(exp.config_cls)):
                    msg = "--" + first.replace("_", "-") + msg[len(first):]
                raise UsageError(msg) from None
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


def _get(name: str):
    from rl4llm import experiments

    try:
        return experiments.get_experiment(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
