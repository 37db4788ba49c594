"""The experiment registry: one contract for the book, the CLI and outside checks.

Every experiment is a module in this package that defines

* ``NAME``: the public name, kebab-case (``"ppo-cartpole"``);
* ``SUMMARY``: one line for ``rl4llm list``;
* ``Config``: a declarative dataclass whose defaults are what the book runs: every field is a
  :func:`rl4llm.config.param` (default, range, one line of help), ``__post_init__`` calls
  :func:`rl4llm.config.validate` (then checks any rule that ties fields together, raising
  :class:`~rl4llm.config.ConfigError` with the field), and it has a ``seed`` field;
* ``run(config: Config) -> Result``;
* ``draw(result: Result, config: Config) -> figure``: the figure from the result's metrics, curves and artifacts
  (``run`` uses it to make ``Result.figure``);
* optionally, for artifacts worth caching, ``cache_state(result) -> dict`` (tensors and JSON-able values only,
  e.g. a policy's ``state_dict``; :func:`to_state` converts numpy containers) and
  ``restore_artifacts(state, config) -> dict`` (the artifacts rebuilt from it, e.g. the arrays ``draw`` needs);
  a module whose figure needs artifacts that cannot be stored sets ``CACHEABLE = False``.

Modules are discovered automatically, so adding an experiment is adding a file. The book calls
``run_experiment("name", seed=0, horizon=40)``, the CLI calls the same function, and both get a :class:`Result`
whose ``metrics`` go to ``metrics.json``, ``curves`` to ``curves.csv`` and ``figure`` to ``figure.png``.

``run_experiment(name, cache=True, ...)`` stores a run's metrics, curves and ``cache_state`` under
``rl4llm.cache.cache_dir("results")``, keyed by the name, the full config and the source of the experiment's
module and of everything it imports (figures excluded: they are redrawn), so pages that show the same run (in
separate kernels) train it once.
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
    "result_key",
    "to_state",
    "from_state",
    "recorded_result",
    "recorded_sweep",
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
    draw: Callable[[Result, Any], Any]
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
        found[name] = Experiment(
            name=name, summary=mod.SUMMARY, config_cls=mod.Config, run=mod.run, draw=mod.draw, module=mod
        )
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
        raise ValueError(f"{name} has no parameter {', '.join(unknown)}; valid parameters: {', '.join(sorted(fields))}")
    return exp.config_cls(**overrides)


def run_experiment(name: str, out: str | Path | None = None, *, cache: bool = False, **overrides: Any) -> Result:
    """Run experiment ``name`` with config overrides; optionally write its three files to ``out``.

    ``wall_s`` (seconds) is added to the metrics when the experiment does not report it itself. With ``cache``,
    a configuration that already ran (same name, config and code) is loaded from the disk cache instead:
    the same ``metrics`` (timings those of the original run) and ``curves``, the figure redrawn by ``draw``, and
    the artifacts that the module's ``restore_artifacts`` rebuilds; ``artifacts["from_cache"]`` says which.
    """
    exp = get_experiment(name)
    config = config_from_overrides(name, **overrides)
    path = _result_path(exp, config) if cache else None
    if path is not None:
        result = _load_result(exp, config, path)
        if result is not None:
            if out is not None and is_main_process():
                save_result(result, out, config=config)
            return result
    t0 = time.perf_counter()
    result = exp.run(config)
    result.metrics.setdefault("wall_s", round(time.perf_counter() - t0, 3))
    if path is not None:
        if is_main_process():  # under a multi-process launcher, rank 0 writes
            _store_result(exp, result, path)
        result.artifacts["from_cache"] = False
    if out is not None and is_main_process():
        save_result(result, out, config=config)
    return result


def result_key(name: str, config: Any) -> str:
    """Cache key of a run: the experiment's name, its full config and its module's code (figures excluded)."""
    exp = get_experiment(name)
    from rl4llm import cache

    return cache.cache_key(
        {"name": name, "config": dataclasses.asdict(config)}, [exp.module.__name__], exclude=("plots",)
    )


def _result_path(exp: Experiment, config: Any) -> Path:
    from rl4llm import cache

    if not getattr(exp.module, "CACHEABLE", True):
        raise ValueError(
            f"experiment {exp.name!r} cannot be cached (its figure needs artifacts that cannot be "
            "stored); run it with cache=False"
        )
    return cache.cache_dir("results") / f"{exp.name}-{result_key(exp.name, config)}.pt"


def to_state(obj: Any) -> Any:
    """Nested dicts, lists and tuples of numpy arrays and scalars as a state :func:`rl4llm.cache.save` can write
    (arrays as tensors, numpy scalars as Python numbers); :func:`from_state` reverses it. For ``cache_state``."""
    import numpy as np
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj)) if obj.dtype.kind in "biuf" else obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_state(v) for v in obj)
    return obj


def from_state(obj: Any) -> Any:
    """The inverse of :func:`to_state`: tensors back to numpy arrays, containers kept."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: from_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_state(v) for v in obj)
    return obj


def _plain(v: Any) -> Any:
    """Numpy scalars and arrays as Python values (floats keep inf and nan), for JSON."""
    if hasattr(v, "tolist") and callable(v.tolist):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _store_result(exp: Experiment, result: Result, path: Path) -> None:
    from rl4llm import cache

    hook = getattr(exp.module, "cache_state", None)
    cache.save(
        path,
        {
            "metrics": json.dumps(_plain(result.metrics)),
            "curves": json.dumps(_plain(result.curves)),
            "state": hook(result) if hook is not None else {},
        },
    )


def _load_result(exp: Experiment, config: Any, path: Path) -> Result | None:
    from rl4llm import cache

    state = cache.load(path)
    if state is None:
        return None
    restore = getattr(exp.module, "restore_artifacts", None)
    artifacts = dict(restore(state["state"], config)) if restore is not None else {}
    artifacts["from_cache"] = True
    result = Result(metrics=json.loads(state["metrics"]), curves=json.loads(state["curves"]), artifacts=artifacts)
    result.figure = exp.draw(result, config)
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


def recorded_result(entry: dict[str, Any]) -> Result:
    """A run recorded whole in a page's ``<page>.runs.json`` (``tools/quoted_runs.py``), as a :class:`Result`.

    ``entry`` is one item of the file's ``"runs"``: ``experiment``, ``overrides``, ``metrics``, ``curves`` and
    optionally ``artifacts`` (the arrays the experiment's ``draw`` needs, as lists). The figure is drawn again by
    the experiment's ``draw``; ``artifacts["recorded"]`` is ``True``. A page uses it for results it shows but
    cannot afford to run within its budget (``tests/test_book_quoted_runs.py`` re-runs them and compares).
    """
    for key in ("experiment", "metrics", "curves"):
        if key not in entry:
            raise ValueError(f"entry must record {key!r} to be shown as a result; it has {', '.join(entry)}")
    exp = get_experiment(entry["experiment"])
    config = config_from_overrides(entry["experiment"], **entry.get("overrides", {}))
    artifacts = {**entry.get("artifacts", {}), "recorded": True}
    result = Result(metrics=dict(entry["metrics"]), curves=[dict(row) for row in entry["curves"]], artifacts=artifacts)
    result.figure = exp.draw(result, config)
    return result


def recorded_sweep(path: str | Path, param: str) -> list[tuple[Any, Result]]:
    """Every whole run recorded in ``path`` (a ``<page>.runs.json``) as ``[(value of param, Result)]``.

    The entries that record ``curves`` and set ``param`` in their overrides are taken, in file order. The list
    has the form :func:`rl4llm.widgets.run_sweep` returns, so a panel can show recorded runs beside the ones its
    page executes.
    """
    runs = json.loads(Path(path).read_text())["runs"]
    out = [
        (entry["overrides"][param], recorded_result(entry))
        for entry in runs.values()
        if "curves" in entry and param in entry.get("overrides", {})
    ]
    if not out:
        raise ValueError(f"{path} records no whole run (an entry with 'curves') that sets {param!r}")
    return out
