"""``length-bias``: GRPO's per-sequence 1/|o| normalisation against Dr. GRPO's constant (Liu et al. 2025).

GRPO averages each completion's token losses over its own length, so a wrong (negative-advantage) completion's
per-token penalty shrinks as it grows, and a correct one's reward is concentrated on short completions; Dr. GRPO
divides every sum by the same constant. Both arms train from the SFT start with the same seeds (the ``rlvr``
experiment's runs, same cache); the figure follows the mean length of wrong and of correct completions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rl4llm.config import param, validate
from rl4llm.distributed import DEVICE_HELP, DEVICES, PRECISION_HELP, PRECISIONS, check_device_field
from rl4llm.experiments import Result
from rl4llm.lm.policies import REASONING_MODEL_HELP, check_model_name
from rl4llm.rlvr.analysis import train_method, where_of
from rl4llm.rlvr.plots import plot_length_bias
from rl4llm.utils import set_torch_threads

NAME = "length-bias"
SUMMARY = "GRPO's 1/|o| loss normalisation vs Dr. GRPO's constant: length of wrong and correct answers"


@dataclass
class Config:
    """Defaults are what the book runs (the ``rlvr`` experiment's GRPO and Dr. GRPO runs)."""

    n_seeds: int = param(3, low=1, help="seeds per arm")
    iterations: int = param(40, low=1, help="iterations per run")
    group_size: int = param(8, low=2, help="completions per prompt (G)")
    prompts_per_iter: int = param(8, low=1, help="prompts per iteration")
    lr: float = param(3e-4, low=0.0, low_inclusive=False, help="Adam learning rate")
    seed: int = param(0, low=0, help="first seed")
    # where and at what scale (appendix "Scaling up"); the defaults are the book's path
    model: str = param("reasoning", help=REASONING_MODEL_HELP)
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        check_model_name(self.model)


METHODS = ("grpo", "dr-grpo")


def run(config: Config) -> Result:
    set_torch_threads(1)
    t0 = time.perf_counter()
    curves, metrics = [], {}
    for m in METHODS:
        first, last = [], []
        for i in range(config.n_seeds):
            out = train_method(
                m,
                config.seed + i,
                iterations=config.iterations,
                group_size=config.group_size,
                prompts_per_iter=config.prompts_per_iter,
                lr=config.lr,
                **where_of(config),
            )
            rows = out["rows"]
            curves += [{"method": m, "seed": config.seed + i, **r} for r in rows]
            first.append(np.nanmean([r["length_wrong"] for r in rows[:3]]))
            last.append(np.nanmean([r["length_wrong"] for r in rows[-3:]]))
        key = m.replace("-", "_")
        for i, (a, b) in enumerate(zip(first, last)):
            metrics[f"length_wrong_change_{key}_seed{config.seed + i}"] = float(b - a)
        metrics[f"length_wrong_start_{key}"] = float(np.mean(first))
        metrics[f"length_wrong_final_{key}"] = float(np.mean(last))
        metrics[f"length_wrong_change_{key}"] = float(np.mean(np.array(last) - np.array(first)))
    metrics["wall_s"] = round(time.perf_counter() - t0, 2)
    result = Result(metrics=metrics, curves=curves)
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):  # noqa: ARG001 - the experiment contract
    """Mean length of wrong and of correct completions against the iteration, per arm."""
    return plot_length_bias(result.curves, METHODS)
