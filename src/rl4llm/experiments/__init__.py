"""The experiment registry: one contract for the book, the CLI and outside checks.

Every experiment is a module in this package that defines

* ``NAME``: the public name, kebab-case (``"ppo-cartpole"``);
* ``SUMMARY``: one line for ``rl4llm list``;
* ``Config``: a dataclass whose defaults are what the book runs; it must have a ``seed: int`` field and validate
  its fields in ``__post_init__`` (``ValueError`` naming the field and its valid range);
* ``run(config: Config) -> Result``.

Modules are discovered automatically, so adding an experiment is adding a file. The book calls
``run_experiment("name", seed=0, horizon=40)``, the CLI calls the same function, and both get a :class:`Result`
whose ``metrics`` go to ``metrics.json``, ``curves`` to ``curves.csv`` and ``figure`` to ``figure.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import math
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from rl4llm.distributed import is_main_process

__all__ = [
    "Result",
    "Experiment",
    "list_experiments",
    "get_experiment",
    "run_experiment",
    "save_result",
    "config_from_overrides",
]


@dataclass
class Result:
    """What an experiment returns.

    Attributes:
        metrics: flat mapping of final figures (numbers, strings, bools), written to ``metrics.json``.
        curves: one dict per logged step, written to ``curves.csv`` (columns = union of keys, in first-seen order).
        figure: the experiment's matplotlib figure, written to ``figure.png``.
        artifacts: anything else the book wants to show (arrays, models, tables); not written to disk.
    """

    metrics: dict[str, Any]
    curves: list[dict[str, Any]] = field(default_factory=list)
    figure: Any = None
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A registered experiment (see the module docstring for the contract)."""

    name: str
    summary: str
    config_cls: type
    run: Callable[[Any], Result]
    module: ModuleType


def _discover() -> dict[str, Experiment]:
    found: dict[str, Experiment] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(mod, "NAME", None)
        if name is None:
            continue
        if name in found:
            raise RuntimeError(f"two experiment modules claim the name {name!r}")
        found[name] = Experiment(name=name, summary=mod.SUMMARY, config_cls=mod.Config, run=mod.run, module=mod)
    return found


_REGISTRY: dict[str, Experiment] | None = None


def _registry() -> dict[str, Experiment]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _discover()
    return _REGISTRY


def list_experiments() -> list[str]:
    """Names of all registered experiments, sorted."""
    return sorted(_registry())


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` listing the valid names otherwise."""
    reg = _registry()
    if name not in reg:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(sorted(reg))}")
    return reg[name]


def config_from_overrides(name: str, **overrides: Any):
    """Build ``name``'s Config from its defaults and keyword overrides (snake_case field names)."""
    exp = get_experiment(name)
    fields = {f.name for f in dataclasses.fields(exp.config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{name} has no parameter {', '.join(unknown)}; valid parameters: {', '.join(sorted(fields))}"
        )
    return exp.config_cls(**overrides)


def run_experiment(name: str, out: str | Path | None = None, **overrides: Any) -> Result:
    """Run experiment ``name`` with config overrides; optionally write its three files to ``out``.

    ``wall_s`` (seconds) is added to the metrics when the experiment does not report it itself.
    """
    exp = get_experiment(name)
    config = config_from_overrides(name, **overrides)
    t0 = time.perf_counter()
    result = exp.run(config)
    result.metrics.setdefault("wall_s", round(time.perf_counter() - t0, 3))
    if out is not None and is_main_process():  # under a multi-process launcher, rank 0 writes
        save_result(result, out, config=config)
    return result


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def save_result(result: Result, out: str | Path, config: Any = None) -> Path:
    """Write ``metrics.json``, ``curves.csv`` and ``figure.png`` (and ``config.json``) under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(_jsonable(result.metrics), indent=2, sort_keys=True) + "\n")
    columns: list[str] = []
    for row in result.curves:
        for k in row:
            if k not in columns:
                columns.append(k)
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns or ["step"])
        writer.writeheader()
        for row in result.curves:
            writer.writerow({k: _jsonable(v) for k, v in row.items()})
    if result.figure is not None:
        result.figure.savefig(out / "figure.png")
    if config is not None:
        (out / "config.json").write_text(json.dumps(_jsonable(dataclasses.asdict(config)), indent=2) + "\n")
    return out
