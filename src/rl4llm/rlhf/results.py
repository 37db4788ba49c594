"""Run a chapter-5 experiment once per configuration: results cached on disk for the chapter's other pages.

The chapter's pages run in separate kernels, and several of them look at the same runs (the default ``rlhf`` run
is the main result of one section, a point of the KL sweep in the next and the reference for DPO). A run is
deterministic for its configuration, so :func:`run_cached` stores what it produced (``metrics``, ``curves`` and
the trained policy's weights) under ``$RL4LLM_CACHE_DIR/rlhf/`` and later pages load it instead of training
again. The key hashes the experiment's name, its full configuration and the source code that the run executes
(the ``rlhf`` modules but its figures and analyses, the experiment's module, the substrate's generation and
language, PPO's losses and GAE), so a change of that code or of any parameter runs it afresh.

An experiment module works with this cache when its ``Config`` has ``stages_config()`` and the module has
``draw(result, config)`` (the figure from metrics and curves) and puts the trained policy, if any, in
``artifacts["policy"]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from rl4llm.rlhf.pipeline import _load, _save, cache_dir, prepare_stages

__all__ = ["run_cached", "result_key"]

_PACKAGE = Path(__file__).resolve().parents[1]


def result_key(name: str, config: Any) -> str:
    """Hash of the experiment's name, configuration and code (the ``rlhf`` package, its module, the substrate)."""
    from rl4llm.experiments import get_experiment

    exp = get_experiment(name)
    h = hashlib.sha1(name.encode())
    h.update(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str).encode())
    h.update(torch.__version__.encode())
    # every module a run executes (figures are redrawn on loading, so plots.py and analysis.py are left out)
    files = sorted(f for f in (_PACKAGE / "rlhf").glob("*.py") if f.name not in ("plots.py", "analysis.py"))
    files += [Path(exp.module.__file__)] + [
        _PACKAGE / "lm" / "generation.py", _PACKAGE / "lm" / "language.py",
        _PACKAGE / "lm" / "checkpoints" / "tiny-gpt2" / "SHA256SUMS.txt", _PACKAGE / "rl" / "returns.py",
        _PACKAGE / "rl" / "losses.py"]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes() if f.is_file() else b"missing")
    return h.hexdigest()[:16]


def run_cached(name: str, **overrides: Any):
    """``run_experiment(name, **overrides)``, or its stored result when this configuration already ran.

    A result loaded from the cache has the same ``metrics`` and ``curves`` (``wall_s`` / ``cpu_s`` are those of
    the original run), its figure redrawn, and ``artifacts`` ``{"stages", "policy", "from_cache": True}``: the
    shared stages and the trained policy rebuilt from its saved weights.
    """
    from rl4llm.experiments import Result, config_from_overrides, get_experiment, run_experiment

    exp = get_experiment(name)
    config = config_from_overrides(name, **overrides)
    if not hasattr(config, "stages_config") or not hasattr(exp.module, "draw"):
        raise ValueError(f"experiment {name!r} does not support run_cached (needs Config.stages_config and draw)")
    path = cache_dir() / f"result-{name}-{result_key(name, config)}.pt"
    state = _load(path)
    if state is not None:
        stages = prepare_stages(config.stages_config())
        artifacts: dict[str, Any] = {"stages": stages, "from_cache": True}
        if state.get("policy") is not None:
            policy = stages.new_policy()
            policy.load_state_dict(state["policy"])
            policy.eval()
            artifacts["policy"] = policy
        result = Result(metrics=json.loads(state["metrics"]), curves=json.loads(state["curves"]),
                        artifacts=artifacts)
        result.figure = exp.module.draw(result, config)
        return result
    result = run_experiment(name, **overrides)
    policy = result.artifacts.get("policy")
    _save(path, {"metrics": json.dumps(result.metrics), "curves": json.dumps(result.curves),
                 "policy": None if policy is None else policy.state_dict()})
    result.artifacts["from_cache"] = False
    return result
