"""``rlvr``: GRPO, Dr. GRPO, RLOO, PPO with a critic and REINFORCE without a baseline, from one SFT start.

Every arm starts from the shipped reasoning checkpoint (:func:`rl4llm.rlvr.load_reasoning_lm`), samples the same
number of completions per iteration (``prompts_per_iter x group_size``; PPO gets as many distinct prompts) and is
rewarded by the exact verifier. Reported: held-out pass@1 (``final_problems`` problems x ``final_samples``
samples) per arm, its spread over seeds, training wall-clock, mean lengths of correct and wrong completions, the
share of groups whose rewards are all equal (zero advantage, no gradient), each seed's pass@1, the last iterations'
training reward and KL, the clip fraction, and the pass@1 curves. The knobs ``batch_size``, ``n_epochs``, ``scale``
and ``loss_agg`` serve chapter 7's panels (group size at a fixed number of completions, the update's
aggressiveness, std scaling, aggregation), which run a reduced GRPO-only version of this experiment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.distributed import DEVICE_HELP, DEVICES, PRECISION_HELP, PRECISIONS, check_device_field
from rl4llm.experiments import Result
from rl4llm.lm.policies import REASONING_MODEL_HELP, check_model_name
from rl4llm.rlvr.advantages import SCALES
from rl4llm.rlvr.analysis import ARMS, sft_evaluation, train_method, where_of
from rl4llm.rlvr.losses import LOSS_AGGREGATIONS
from rl4llm.rlvr.plots import plot_rlvr_methods
from rl4llm.utils import progress, set_torch_threads

NAME = "rlvr"
SUMMARY = "GRPO, Dr. GRPO, RLOO, PPO+critic, REINFORCE on a verifiable reasoning task: held-out pass@1, time"


@dataclass
class Config:
    """Defaults are what the book runs."""

    methods: tuple[str, ...] = param(
        ("grpo", "dr-grpo", "rloo", "ppo", "reinforce"),
        kind="seq",
        help="arms to train (grpo, dr-grpo, rloo, reinforce, ppo)",
    )
    n_seeds: int = param(3, low=1, help="seeds per arm (seed, seed + 1, ...)")
    iterations: int = param(40, low=1, help="collect / update rounds per run")
    group_size: int = param(8, low=2, help="completions per prompt (G)")
    prompts_per_iter: int = param(8, low=1, help="prompts per iteration")
    batch_size: int | None = param(
        None,
        low=2,
        allow_none=True,
        kind="int",
        help="completions per iteration; when set, prompts_per_iter = batch_size / group_size (same cost for any G)",
    )
    lr: float = param(3e-4, low=0.0, low_inclusive=False, help="Adam learning rate (PPO: policy and critic)")
    clip_eps: float = param(0.2, low=0.0, low_inclusive=False, allow_inf=True, help="PPO clip range ε")
    kl_coef: float = param(0.0, low=0.0, help="β of the KL to the SFT policy")
    n_epochs: int = param(1, low=1, help="passes over each iteration's completions")
    scale: str = param(
        "method",
        choices=("method",) + SCALES,
        help="divide the advantages by the group's / batch's std, or not (none); method: each method's own",
    )
    loss_agg: str = param(
        "method",
        choices=("method",) + LOSS_AGGREGATIONS,
        help="how the per-token losses are averaged; method: each method's own",
    )
    eval_every: int = param(10, low=1, help="iterations between held-out pass@1 evaluations")
    eval_problems: int = param(100, low=1, high=3000, help="held-out problems of each evaluation during training")
    final_problems: int = param(500, low=1, high=3000, help="held-out problems of the final evaluation")
    final_samples: int = param(4, low=1, help="samples per held-out problem in the final evaluation")
    seed: int = param(0, low=0, help="first seed")
    # where and at what scale (appendix "Scaling up"); the defaults are the book's path
    model: str = param("reasoning", help=REASONING_MODEL_HELP)
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        check_model_name(self.model)
        if not self.methods or any(m not in ARMS for m in self.methods):
            raise ConfigError("methods", f"methods must be a non-empty list of {', '.join(ARMS)}; got {self.methods!r}")
        if self.batch_size is not None and self.batch_size % self.group_size:
            raise ConfigError(
                "batch_size", f"batch_size must be a multiple of group_size = {self.group_size}, got {self.batch_size}"
            )

    def overrides(self) -> dict:
        """The :class:`GRPOConfig` fields this config sets (``scale`` and ``loss_agg`` unless ``"method"``)."""
        prompts = self.prompts_per_iter if self.batch_size is None else self.batch_size // self.group_size
        out = {
            "iterations": self.iterations,
            "group_size": self.group_size,
            "prompts_per_iter": prompts,
            "lr": self.lr,
            "clip_eps": self.clip_eps,
            "kl_coef": self.kl_coef,
            "n_epochs": self.n_epochs,
        }
        out.update({k: getattr(self, k) for k in ("scale", "loss_agg") if getattr(self, k) != "method"})
        return out


def _nanmean(values: list[float]) -> float:
    """The mean of the non-NaN values; NaN when there are none (no correct completion at all), without a warning."""
    arr = np.asarray(values, dtype=float)
    return float(arr[~np.isnan(arr)].mean()) if (~np.isnan(arr)).any() else float("nan")


def run(config: Config) -> Result:
    set_torch_threads(1)
    t0 = time.perf_counter()
    sft = sft_evaluation(config.final_problems, config.final_samples, **where_of(config))
    metrics: dict = {"pass_at_1_sft": sft["pass_at_k"][1]}
    curves: list[dict] = []
    runs = [(m, config.seed + i) for m in config.methods for i in range(config.n_seeds)]
    results: dict[str, list[dict]] = {m: [] for m in config.methods}
    for m, s in progress(runs, desc="rlvr arms"):
        out = train_method(
            m,
            s,
            eval_every=config.eval_every,
            eval_problems=config.eval_problems,
            final_problems=config.final_problems,
            final_samples=config.final_samples,
            **config.overrides(),
            **where_of(config),
        )
        results[m].append(out)
        for r in out["rows"]:
            curves.append({"method": m, "seed": s, **r})
    seeds = [config.seed + i for i in range(config.n_seeds)]
    for m, outs in results.items():
        key = m.replace("-", "_")
        p = np.array([o["pass_at_1"] for o in outs])
        metrics[f"pass_at_1_{key}"] = float(p.mean())
        metrics[f"pass_at_1_{key}_std"] = float(p.std(ddof=1)) if len(p) > 1 else 0.0
        metrics[f"pass_at_1_{key}_min"] = float(p.min())
        metrics[f"pass_at_1_{key}_max"] = float(p.max())
        for o, s in zip(outs, seeds):
            metrics[f"pass_at_1_{key}_seed{s}"] = float(o["pass_at_1"])
        metrics[f"wall_s_{key}"] = float(np.mean([o["wall_s"] for o in outs]))
        metrics[f"wall_s_per_iter_{key}"] = metrics[f"wall_s_{key}"] / config.iterations
        metrics[f"length_correct_{key}"] = _nanmean([o["length_correct"] for o in outs])
        metrics[f"length_wrong_{key}"] = _nanmean([o["length_wrong"] for o in outs])
        zero = [r["zero_adv_frac"] for o in outs for r in o["rows"] if "zero_adv_frac" in r]
        if zero:
            metrics[f"zero_adv_frac_{key}"] = float(np.mean(zero))
        # the last five iterations' training reward, the last KL from SFT, the clip fraction over all iterations
        metrics[f"reward_final_{key}"] = float(np.mean([r["reward"] for o in outs for r in o["rows"][-5:]]))
        metrics[f"kl_sft_final_{key}"] = float(np.mean([o["rows"][-1]["kl_sft"] for o in outs]))
        metrics[f"clip_frac_{key}"] = float(np.mean([r["clip_frac"] for o in outs for r in o["rows"]]))
    metrics["length_correct_sft"] = sft["length_correct"]
    metrics["length_wrong_sft"] = sft["length_wrong"]
    metrics["wall_s"] = round(time.perf_counter() - t0, 2)
    result = Result(metrics=metrics, curves=curves, artifacts={"results": results, "sft": sft})
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Held-out pass@1 of every arm against the iteration and the wall-clock."""
    return plot_rlvr_methods(result.curves, config.methods, result.metrics["pass_at_1_sft"])
