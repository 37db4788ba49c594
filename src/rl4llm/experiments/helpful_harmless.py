"""``helpful-harmless``: two objectives in one reward, and the frontier their weight traces (section 5.6).

Askell et al. (2021) ask an assistant to be helpful, honest and harmless; Bai et al. (2022) train one preference
model per objective and find that the two pull apart. Here the two objectives are the two halves of the book's
gold reward (:func:`rl4llm.lm.language.gold_breakdown`), which add up to it exactly:

* **helpful** :math:`S(y)`: the sentiment term, what the reader asked for (an enthusiastic review);
* **harm** :math:`P(y) = S(y) - R(y) = U + 0.5E + 0.25D + 0.05\\max(0, n - 24)`: the gold reward's penalties,
  text that fails the reader (ungrammatical, unfinished, repetitive or over-long).

PPO (chapter 5's, :func:`rl4llm.rlhf.ppo_run.run_ppo`, from chapter 5's cached SFT policy and critic) maximises

.. math::  r_\\lambda(y) = \\frac{S(y) - \\lambda P(y)}{\\sigma_{SFT}} - \\beta\\,\\mathrm{KL}(\\pi\\|\\pi_{SFT}),

one run per harm weight :math:`\\lambda` in ``harm_weights`` and per seed in ``seeds`` (:math:`\\lambda = 1` is
the gold reward itself, :math:`\\lambda = 0` helpfulness alone; :math:`\\sigma_{SFT}` is the SFT policy's gold
standard deviation, so the scale matches chapter 5's rewards). The rewards are exact (no reward model): the
frontier is the objectives' own, not a proxy's. Each final policy is measured on ``n_eval`` fresh samples: mean
helpfulness, mean harm and the KL to the SFT policy. The stages always use ``stage_seed`` (chapter 5's cached
SFT policy); ``seeds`` vary PPO only.

``metrics`` holds every run's numbers flat (``helpful_lam0.25_seed1``, ``harm_...``, ``kl_...``, ``gold_...``),
plus the SFT policy's (``sft_helpful``, ``sft_harm``), so that :func:`draw` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.distributed import (
    DEVICE_HELP,
    DEVICES,
    PRECISION_HELP,
    PRECISIONS,
    check_device_field,
    main_process_first,
    make_runtime,
)
from rl4llm.experiments import Result
from rl4llm.lm.language import gold_breakdown
from rl4llm.plotting import COLORS, PALETTE, label, new_figure
from rl4llm.rlhf.stages import stage_field, stages_config_from
from rl4llm.utils import check_range, set_seed, set_torch_threads

if TYPE_CHECKING:
    from rl4llm.rlhf.stages import Stages

NAME = "helpful-harmless"
SUMMARY = "two objectives (helpful sentiment, harmful penalties) in one PPO reward: the frontier the weight traces"


@dataclass
class Config:
    """Defaults are what section 5.6 records. The stage fields are :class:`~rl4llm.rlhf.stages.StagesConfig`'s."""

    harm_weights: tuple[float, ...] = param(
        (0.0, 0.25, 1.0, 4.0), low=0.0, help="harm weights lambda, one PPO run each per seed (1: the gold reward)"
    )
    seeds: tuple[int, ...] = param((0, 1, 2), low=0, help="PPO seeds, one run per harm weight each")
    iterations: int = param(30, low=1, help="PPO iterations of each run")
    kl_coef: float = param(0.05, low=0.0, help="KL coefficient beta of every run")
    lr: float = param(5e-4, low=0.0, low_inclusive=False, help="PPO policy learning rate")
    n_eval: int = param(256, low=2, help="fresh samples that measure each final policy")
    stage_seed: int = param(0, low=0, help="seed of chapter 5's shared stages (the SFT policy and the critic)")
    seed: int = param(0, low=0, help="seed of the evaluation samples (the PPO runs use `seeds`)")
    rm_train_pairs: int | None = stage_field("rm_train_pairs")
    # where and at what scale (appendix "Scaling up"); the defaults are the book's path
    model: str = stage_field("model")
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        stages_config_from(self)
        if len(self.harm_weights) == 0:
            raise ConfigError("harm_weights", "harm_weights must name at least one weight")
        if len(self.seeds) == 0:
            raise ConfigError("seeds", "seeds must name at least one seed")
        if len(set(self.harm_weights)) != len(self.harm_weights) or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("harm_weights", "harm_weights and seeds must not repeat a value")


def helpful_and_harm(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per text, the helpful part :math:`S` and the harm :math:`P = S - R` of the gold reward :math:`R`.

    .. math::  R(y) = S(y) - P(y), \\qquad P = U + 0.5E + 0.25D + 0.05\\max(0, n - 24) \\ge 0

    (:func:`~rl4llm.lm.language.gold_breakdown`), so :math:`S - \\lambda P` at :math:`\\lambda = 1` is the gold reward.
    """
    parts = gold_breakdown(list(texts))
    return parts["sentiment"], parts["sentiment"] - parts["gold"]


def two_objective_reward(stages: Stages, harm_weight: float):
    """The PPO reward ``batch -> [B]``: :math:`(S - \\lambda P) / \\sigma_{SFT}` of each decoded response."""
    import torch

    from rl4llm.rlhf.rollout import decode_texts

    harm_weight = check_range("harm_weight", harm_weight, 0.0, float("inf"))

    def reward(batch) -> torch.Tensor:
        helpful, harm = helpful_and_harm(decode_texts(stages.tokenizer, batch))
        score = (helpful - harm_weight * harm) / stages.gold_std
        return torch.as_tensor(score, dtype=torch.float32, device=batch.input_ids.device)

    return reward


def _key(stat: str, lam: float, seed: int) -> str:
    return f"{stat}_lam{lam:g}_seed{seed}"


def _measure(policy, stages: Stages, config: Config) -> dict[str, float]:
    from rl4llm.rlhf.evaluation import evaluate_against_gold

    e = evaluate_against_gold(policy, stages, n=config.n_eval, seed=config.seed + 1234, return_texts=True)
    helpful, harm = helpful_and_harm(e["texts"])
    return {
        "helpful": float(helpful.mean()),
        "harm": float(harm.mean()),
        "kl": float(e["kl"]),
        "gold": float(e["gold_raw"]),
        "parse_rate": float(e["parse_rate"]),
    }


def run(config: Config) -> Result:
    from rl4llm.rlhf.evaluation import evaluate_against_gold
    from rl4llm.rlhf.ppo import PPORLHFConfig
    from rl4llm.rlhf.ppo_run import run_ppo
    from rl4llm.rlhf.stages import prepare_stages

    set_torch_threads(1)
    set_seed(config.seed)
    t0 = time.perf_counter()
    runtime = make_runtime(config.device, config.mixed_precision)  # None: one CPU process, as the book runs
    with main_process_first(runtime):  # rank 0 fills the stage cache, the others read it
        stages = prepare_stages(dataclasses.replace(stages_config_from(config), seed=config.stage_seed))
    metrics: dict[str, float | int] = {}
    for stat, value in _measure(stages.sft_model, stages, config).items():
        metrics[f"sft_{stat}"] = value
    curves = []
    samples = {}
    for lam in config.harm_weights:
        for seed in config.seeds:
            ppo_cfg = PPORLHFConfig(iterations=config.iterations, lr=config.lr, kl_coef=config.kl_coef, seed=int(seed))
            out = run_ppo(
                stages,
                ppo_cfg,
                eval_every=config.iterations,
                eval_n=2,
                reward_fn=two_objective_reward(stages, lam),
                runtime=runtime,
            )
            policy = out.policy.cpu()  # measured on the CPU, beside the stages' SFT policy
            m = _measure(policy, stages, config)
            for stat, value in m.items():
                metrics[_key(stat, lam, seed)] = value
            curves.append({"harm_weight": lam, "seed": seed, **m})
            if seed == config.seeds[0]:
                samples[lam] = evaluate_against_gold(policy, stages, n=4, seed=config.seed + 99, return_texts=True)[
                    "texts"
                ]
    metrics["wall_s"] = round(time.perf_counter() - t0, 2)
    result = Result(metrics=metrics, curves=curves, artifacts={"samples": samples})
    result.figure = draw(result, config)
    return result


def frontier_points(metrics: dict, harm_weights, seeds) -> dict[str, np.ndarray]:
    """``helpful``, ``harm``, ``kl`` arrays of shape ``[len(harm_weights), len(seeds)]`` read from ``metrics``."""
    return {
        stat: np.array([[float(metrics[_key(stat, lam, s)]) for s in seeds] for lam in harm_weights])
        for stat in ("helpful", "harm", "kl", "gold")
    }


def draw(result: Result, config: Config):
    """The frontier: mean helpfulness against mean harm, every seed a dot, the seeds' mean joined across weights;
    and the KL each weight spent."""
    return plot_helpful_harmless(result.metrics, config.harm_weights, config.seeds)


def plot_helpful_harmless(metrics: dict, harm_weights, seeds):
    """Left: helpful :math:`S` against harm :math:`P` (one dot per run, a cross per weight's mean; the SFT policy's
    harm as a dashed line, its helpfulness, far below, as text).
    Right: the KL to the SFT policy per weight (mean ± sd over seeds)."""
    pts = frontier_points(metrics, harm_weights, seeds)
    fig, axes = new_figure(ncols=2, width=4.4, height=3.6)
    ax = axes[0, 0]
    for i, lam in enumerate(harm_weights):
        c = COLORS[i % len(COLORS)]
        ax.scatter(pts["harm"][i], pts["helpful"][i], color=c, s=18, alpha=0.6)
        ax.scatter(
            pts["harm"][i].mean(),
            pts["helpful"][i].mean(),
            color=c,
            marker="X",
            s=80,
            edgecolor="black",
            linewidth=0.6,
            label=f"λ = {lam:g}",
        )
    ax.plot(pts["harm"].mean(1), pts["helpful"].mean(1), color=PALETTE["grey"], lw=1, zorder=0)
    ax.axvline(metrics["sft_harm"], color=PALETTE["black"], ls="--", lw=1, label="SFT's harm")
    ax.text(
        0.98,
        0.04,
        f"SFT: S = {metrics['sft_helpful']:.2f}, P = {metrics['sft_harm']:.3f}",
        transform=ax.transAxes,
        ha="right",
        fontsize=8,
    )
    ax.legend(fontsize=8, title="harm weight", title_fontsize=8, loc="center right")
    label(ax, "harm P (mean penalty per review)", "helpfulness S (mean sentiment)", "The frontier the weight traces")
    ax = axes[0, 1]
    x = np.arange(len(harm_weights))
    ax.bar(
        x,
        pts["kl"].mean(1),
        yerr=pts["kl"].std(1),
        color=[COLORS[i % len(COLORS)] for i in x],
        edgecolor="black",
        linewidth=0.6,
        capsize=3,
    )
    ax.set_xticks(x, [f"{lam:g}" for lam in harm_weights])
    label(ax, "harm weight λ", "KL(π ‖ π_SFT), nats per review", f"KL spent (mean ± sd, {len(seeds)} seeds)")
    return fig
