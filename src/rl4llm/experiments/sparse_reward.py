"""``sparse-reward``: what a terminal-only reward costs PPO on the token MDP, and how the cost grows with the horizon.

The survey's takeaway 4 (Sun 2023) names two difficulties of policy learning for language models: a huge action
space and sparse feedback. Section 1.6's ``action-space`` experiment sweeps the first; this one sweeps the second
(book section 1.6). The vocabulary is fixed (``vocab_size`` tokens) and the horizon :math:`T` (the length of the
target sequence, hence of every episode) varies. The reward is either

* ``"dense"``: :math:`r_t = F(y_{\\le t}) - F(y_{<t})`, a point per correct token as soon as it is written, or
* ``"terminal"``: :math:`r_t = 0` for :math:`t < T` and :math:`r_T = F(y)`, one score for the finished sequence,

with the same return :math:`F(y)` (the fraction of positions matching the target) for every episode. For each
horizon, mode and seed, PPO (the chapter's token-MDP settings, constant learning rate; the same target for both
modes at a seed) trains until its greedy policy reaches ``target_return``
(:func:`rl4llm.experiments.action_space.steps_to_target`). The experiment reports the steps each run needed,
the cost of sparsity per seed (terminal steps / dense steps, paired by seed) and, per mode, the slope :math:`b` of
a least-squares fit :math:`\\log_{10} \\text{steps} = a + b \\log_{10} T`, fitted per seed (mean ± sd over seeds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result
from rl4llm.utils import progress, set_torch_threads

NAME = "sparse-reward"
SUMMARY = "takeaway 4: PPO's steps to solve the token MDP against the horizon, dense vs terminal-only reward"

MODES = ("dense", "terminal")


@dataclass(frozen=True)
class Config:
    """Defaults are what ``rl4llm run sparse-reward`` runs and what section 1.6 quotes."""

    horizons: str = param("4,8,16,32", help="comma-separated horizons T (tokens per episode), distinct ints >= 2")
    vocab_size: int = param(8, low=2, help="tokens of the action space")
    target_return: float = param(
        0.75, low=0.0, high=1.0, low_inclusive=False, help="greedy return at which a run counts as solved"
    )
    max_steps: int = param(100_000, low=512, help="environment steps before a run gives up")
    seeds: int = param(5, low=2, help="seeds per horizon and mode (>= 2 for a spread)")
    eval_every: int = param(512, low=1, help="environment steps between greedy evaluations")
    seed: int = param(0, low=0, help="random seed of the first run")

    def __post_init__(self) -> None:
        validate(self)
        self.horizon_list()

    def horizon_list(self) -> list[int]:
        try:
            values = [int(v) for v in str(self.horizons).split(",") if v.strip()]
        except ValueError:
            values = []
        if len(values) < 2 or min(values) < 2 or len(set(values)) != len(values):
            raise ConfigError(
                "horizons", f"horizons must be two or more distinct ints >= 2, comma-separated, got {self.horizons!r}"
            )
        return sorted(values)

    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]


def steps_table(metrics: dict[str, Any], config: Config) -> dict[str, np.ndarray]:
    """Per mode, the steps to the target ``[len(horizons), seeds]`` read back from the flat metrics
    (``steps_{mode}_T{T}_seed{s}``; ``nan`` for a run that did not get there), so a figure needs only the metrics."""
    return {
        mode: np.array(
            [
                [
                    np.nan if metrics[f"steps_{mode}_T{t}_seed{s}"] is None else metrics[f"steps_{mode}_T{t}_seed{s}"]
                    for s in config.seed_list()
                ]
                for t in config.horizon_list()
            ],
            dtype=float,
        )
        for mode in MODES
    }


def loglog_slopes(horizons: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Slope :math:`b` of :math:`\\log_{10}\\text{steps} = a + b\\log_{10}T` fitted to each column (seed) of
    ``steps`` ``[len(horizons), seeds]``; ``nan`` for a seed with a missing point."""
    horizons = np.asarray(horizons, dtype=float)
    steps = np.asarray(steps, dtype=float)
    if horizons.ndim != 1 or steps.ndim != 2 or steps.shape[0] != horizons.size or horizons.size < 2:
        raise ValueError(
            f"steps must be [len(horizons) >= 2, seeds], got horizons {horizons.shape} and steps {steps.shape}"
        )
    out = np.full(steps.shape[1], np.nan)
    for j in range(steps.shape[1]):
        if np.all(np.isfinite(steps[:, j])) and np.all(steps[:, j] > 0):
            out[j] = np.polyfit(np.log10(horizons), np.log10(steps[:, j]), 1)[0]
    return out


def run(config: Config) -> Result:
    from rl4llm.experiments.action_space import steps_to_target

    set_torch_threads(1)
    t0 = time.perf_counter()
    horizons = config.horizon_list()
    metrics: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    jobs = [(m, t, s) for m in MODES for t in horizons for s in config.seed_list()]
    for mode, t, s in progress(jobs, desc="sparse-reward"):
        steps, evals = steps_to_target(
            config.vocab_size, mode, t, config.target_return, config.max_steps, s, config.eval_every
        )
        metrics[f"steps_{mode}_T{t}_seed{s}"] = None if steps is None else float(steps)
        rows.append({"mode": mode, "horizon": t, "seed": s, "steps_to_target": steps, "final_greedy": evals[-1][1]})
    table = steps_table(metrics, config)
    ratio = table["terminal"] / table["dense"]
    for i, t in enumerate(horizons):
        for mode in MODES:
            metrics[f"{mode}_T{t}_steps_mean"] = float(np.nanmean(table[mode][i]))
            metrics[f"{mode}_T{t}_steps_std"] = float(np.nanstd(table[mode][i]))
            metrics[f"{mode}_T{t}_solved_frac"] = float(np.mean(np.isfinite(table[mode][i])))
        metrics[f"ratio_T{t}_mean"] = float(np.nanmean(ratio[i]))
        metrics[f"ratio_T{t}_std"] = float(np.nanstd(ratio[i]))
        metrics[f"ratio_T{t}_above1_frac"] = float(np.mean(ratio[i] > 1.0))
    slopes = {mode: loglog_slopes(np.array(horizons), table[mode]) for mode in MODES}
    for mode in MODES:
        metrics[f"{mode}_slope_mean"] = float(np.nanmean(slopes[mode]))
        metrics[f"{mode}_slope_std"] = float(np.nanstd(slopes[mode]))
    gap = slopes["terminal"] - slopes["dense"]  # the log-log slope of the ratio, per seed
    metrics["slope_gap_mean"] = float(np.nanmean(gap))
    metrics["slope_gap_std"] = float(np.nanstd(gap))
    metrics["slope_gap_positive_frac"] = float(np.mean(gap > 0))
    metrics.update(
        {
            "seeds": config.seeds,
            "vocab_size": config.vocab_size,
            "env_steps": int(sum(r["steps_to_target"] or config.max_steps for r in rows)),
            "wall_s": round(time.perf_counter() - t0, 3),
        }
    )
    result = Result(metrics=metrics, curves=rows)
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Steps to the target against the horizon per reward mode (log-log), and the terminal/dense ratio."""
    from rl4llm.rl.plots import plot_sparse_reward

    m = result.metrics
    return plot_sparse_reward(
        config.horizon_list(),
        steps_table(m, config),
        slopes={mode: (m[f"{mode}_slope_mean"], m[f"{mode}_slope_std"]) for mode in MODES},
        vocab_size=config.vocab_size,
        target_return=config.target_return,
    )
