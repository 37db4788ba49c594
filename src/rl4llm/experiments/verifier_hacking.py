"""``verifier-hacking``: GRPO against a flawed verifier, evaluated with the exact one.

A programmatic verifier has no learned proxy to over-optimise, but a flawed one is still a proxy: trained on a
verifier that checks only the last digit of the answer (or accepts the right number anywhere in the text), the
policy raises the flawed reward while its exact pass@1 stalls or falls, the verifiable cousin of chapter 5's
reward over-optimisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rl4llm.config import param, validate
from rl4llm.distributed import DEVICE_HELP, DEVICES, PRECISION_HELP, PRECISIONS, check_device_field
from rl4llm.experiments import Result
from rl4llm.lm.policies import REASONING_MODEL_HELP, check_model_name
from rl4llm.rlvr.analysis import sft_evaluation, train_method, where_of
from rl4llm.rlvr.plots import plot_verifier_hacking
from rl4llm.utils import set_torch_threads

NAME = "verifier-hacking"
SUMMARY = "GRPO on a flawed verifier (last digit only / number anywhere): flawed reward vs exact pass@1"


@dataclass
class Config:
    """Defaults are what the book runs."""

    verifier: str = param("last-digit", choices=("last-digit", "anywhere"), help="the flawed verifier trained on")
    iterations: int = param(40, low=1, help="GRPO iterations")
    group_size: int = param(8, low=2, help="completions per prompt (G)")
    prompts_per_iter: int = param(8, low=1, help="prompts per iteration")
    lr: float = param(3e-4, low=0.0, low_inclusive=False, help="Adam learning rate")
    eval_every: int = param(3, low=1, help="iterations between held-out exact pass@1 evaluations")
    seed: int = param(0, low=0, help="seed of the run")
    # where and at what scale (appendix "Scaling up"); the defaults are the book's path
    model: str = param("reasoning", help=REASONING_MODEL_HELP)
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        check_model_name(self.model)


def run(config: Config) -> Result:
    set_torch_threads(1)
    t0 = time.perf_counter()
    sft = sft_evaluation(500, 4, **where_of(config))
    out = train_method(
        "grpo",
        config.seed,
        eval_every=config.eval_every,
        iterations=config.iterations,
        group_size=config.group_size,
        prompts_per_iter=config.prompts_per_iter,
        lr=config.lr,
        verifier=config.verifier,
        **where_of(config),
    )
    rows = out["rows"]
    exact = [r["pass_at_1"] for r in rows if "pass_at_1" in r]
    metrics = {
        "flawed_reward_start": float(np.mean([r["reward"] for r in rows[:3]])),
        "flawed_reward_final": float(np.mean([r["reward"] for r in rows[-3:]])),
        "exact_reward_final": float(np.mean([r["exact_reward"] for r in rows[-3:]])),
        "pass_at_1_exact_sft": sft["pass_at_k"][1],
        "pass_at_1_exact_peak": float(max(exact)),
        "pass_at_1_exact_final": out["pass_at_1"],
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    result = Result(
        metrics=metrics,
        curves=[{"iteration": 0, "pass_at_1": sft["pass_at_k"][1], "reward": np.nan, "exact_reward": np.nan}] + rows,
    )
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Flawed training reward and exact held-out pass@1 against the iteration."""
    return plot_verifier_hacking(result.curves, config.verifier)
