"""``token-horizon``: the cost of imitation against the generation length on tokens, without slips (takeaway 2).

Section 3.3's ``exposure-bias`` shows compounding with a trembling hand (injected slips). Here nothing is injected:
the learners err only through their own sampling, and they are trained with the labels that make them err, one
word per prefix (the kind of label a demonstrator gives):

* **SFT** (behaviour cloning on tokens): ``n_labelled`` expert demonstrations of ``length`` words, each prefix
  labelled with the word the demonstration has next (:func:`~rl4llm.imitation.token_dagger.token_sft`);
* **DAgger** on tokens with the expert (the grammar) as the labeller: ``demo_fraction`` of the same label budget
  as demonstrations, the rest over ``dagger_iterations`` rounds of rollouts of
  :math:`\\beta_i\\pi^* + (1-\\beta_i)\\hat\\pi_i` in which every visited prefix is labelled by *one word drawn
  from the expert* (``labels="sampled"`` of :func:`~rl4llm.imitation.token_dagger.token_dagger`): the same
  kind of label as SFT's, so the two differ only in *where* the labels were collected.

Both write ``n_eval`` streams of ``length`` words (no slips); the cost of horizon :math:`T` is the mean number of
off-language words among the first :math:`T` (:func:`rl4llm.imitation.validity_by_position`'s cumulative cost, the
0-1 cost against the expert of Theorems 1.1/1.4). Theory bounds the excess cost of behaviour cloning by
:math:`T^2\\epsilon` and DAgger's by :math:`T\\epsilon`: the log-log slope of cost against :math:`T`
(:func:`~rl4llm.experiments.compounding_error.loglog_slope`, over ``horizons``) is the measured exponent.

One run trains both learners on ``n_seeds`` seeds ``seed, seed + 1, ...`` (data, initialisation, rollouts and
evaluation). ``metrics`` holds every number flat, ``{learner}_cost_T{T}_seed{s}``, ``{learner}_falls_T{T}_seed{s}``
and ``{learner}_slope_seed{s}``, so the figure can be drawn from recorded metrics alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result
from rl4llm.experiments.compounding_error import loglog_slope
from rl4llm.imitation.exposure import validity_by_position
from rl4llm.imitation.token_dagger import generate_streams, sample_streams, token_dagger, token_sft
from rl4llm.plotting import COLORS, label, new_figure
from rl4llm.utils import set_seed, set_torch_threads

NAME = "token-horizon"
SUMMARY = "cost of imitation against generation length on tokens: SFT vs DAgger (one-word labels, no slips)"

METHODS = {"sft": "SFT (behaviour cloning)", "dagger": "DAgger (one-word expert labels)"}


@dataclass
class Config:
    """Defaults are what section 3.3 records (about 60 s of one CPU core per seed)."""

    length: int = param(63, low=2, high=63, help="words per stream (at most 63, the tiny GPT-2's context)")
    horizons: tuple[int, ...] = param((8, 16, 32, 63), low=1, high=63, help="horizons T at which the cost is read")
    n_labelled: int = param(256, low=4, help="texts labelled in all, for each learner (the label budget)")
    demo_fraction: float = param(
        0.75, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False, help="DAgger: share spent on demonstrations"
    )
    dagger_iterations: int = param(2, low=1, help="DAgger rounds of rollouts after the fit on the demonstrations")
    beta_decay: float = param(0.5, low=0.0, high=1.0, help="beta_i = beta_decay ** (i - 1)")
    steps: int = param(900, low=2, help="gradient steps of each learner")
    batch_size: int = param(16, low=1, help="texts per gradient step")
    lr: float = param(3e-3, low=0.0, high=1.0, low_inclusive=False, help="learning rate")
    n_eval: int = param(400, low=1, help="streams generated per learner and seed for the measurements")
    n_seeds: int = param(3, low=1, help="seeds seed, seed + 1, ...; both learners trained on each")
    seed: int = param(0, low=0, help="first random seed")

    def __post_init__(self) -> None:
        validate(self)
        if max(self.horizons) > self.length or len(set(self.horizons)) < 2:
            raise ConfigError("horizons", f"horizons must hold >= 2 distinct values <= length={self.length}")
        n_demo = int(round(self.demo_fraction * self.n_labelled))
        if n_demo < 1 or self.n_labelled - n_demo < self.dagger_iterations:
            raise ConfigError("demo_fraction", "demo_fraction leaves DAgger no demonstration or too few rollouts")
        if self.steps < self.dagger_iterations + 1:
            raise ConfigError("steps", f"steps must be >= dagger_iterations + 1 = {self.dagger_iterations + 1}")


def seeds_of(config: Config) -> list[int]:
    return [config.seed + i for i in range(config.n_seeds)]


def run(config: Config) -> Result:
    from rl4llm.lm.tokenizer import build_tokenizer

    set_torch_threads(1)
    tokenizer = build_tokenizer()
    n_demo = int(round(config.demo_fraction * config.n_labelled))
    per_iteration = (config.n_labelled - n_demo) // config.dagger_iterations
    horizons = sorted(config.horizons)
    metrics: dict[str, float | int] = {"length": config.length}
    curves = []
    for seed in seeds_of(config):
        rng = set_seed(seed)
        demos = sample_streams(config.n_labelled, config.length, rng)
        common = dict(steps=config.steps, batch_size=config.batch_size, lr=config.lr, seed=seed)
        models = {"sft": token_sft(demos, tokenizer, labels="demonstrated", **common)}
        models["dagger"], _ = token_dagger(
            demos[:n_demo],
            tokenizer,
            n_iterations=config.dagger_iterations,
            rollouts_per_iteration=per_iteration,
            beta_decay=config.beta_decay,
            labels="sampled",
            **common,
        )
        for key, model in models.items():
            texts = generate_streams(model, tokenizer, config.n_eval, config.length, seed=seed + 777)
            c = validity_by_position(texts, config.length)
            cost, falls = c.cumulative_cost, np.cumsum(c.falls)
            for t in horizons:
                metrics[f"{key}_cost_T{t}_seed{seed}"] = round(float(cost[t - 1]), 5)
                metrics[f"{key}_falls_T{t}_seed{seed}"] = round(float(falls[t - 1]), 5)
            metrics[f"{key}_slope_seed{seed}"] = round(slope_of(horizons, [cost[t - 1] for t in horizons]), 4)
            metrics[f"{key}_cost_per_fall_seed{seed}"] = round(c.cost_per_fall(), 4)
            for t in range(1, config.length + 1):
                curves.append({"seed": seed, "learner": key, "t": t, "cost": round(float(cost[t - 1]), 5)})
    result = Result(metrics=metrics, curves=curves)
    result.figure = draw(result, config)
    return result


def slope_of(horizons, costs) -> float:
    """Log-log slope of cost against horizon over the points with a positive cost (NaN with fewer than two)."""
    pts = [(t, c) for t, c in zip(horizons, costs, strict=True) if c > 0]
    return loglog_slope(*zip(*pts)) if len(pts) >= 2 else float("nan")


def costs_by_horizon(metrics: dict, horizons, seeds) -> dict[str, np.ndarray]:
    """Per learner, the ``[len(seeds), len(horizons)]`` array of costs read from ``metrics``."""
    return {
        key: np.array([[float(metrics[f"{key}_cost_T{t}_seed{s}"]) for t in horizons] for s in seeds])
        for key in METHODS
    }


def draw(result: Result, config: Config):
    return plot_cost_vs_horizon(result.metrics, sorted(config.horizons), seeds_of(config))


def plot_cost_vs_horizon(metrics: dict, horizons, seeds):
    """Cost against horizon on log-log axes: every seed a thin line, the seeds' mean thick, with the slope of
    the mean (and the seeds' range) in the legend; dashed guides of slope 1 and 2."""
    costs = costs_by_horizon(metrics, horizons, seeds)
    fig, ax = new_figure(width=5.6, height=4.0)
    t = np.asarray(horizons, dtype=float)
    for i, (key, name) in enumerate(METHODS.items()):
        c = COLORS[i]
        for row in costs[key]:
            ax.plot(t, np.where(row > 0, row, np.nan), color=c, lw=0.8, alpha=0.45)
        mean = costs[key].mean(0)
        slopes = [metrics[f"{key}_slope_seed{s}"] for s in seeds]
        ax.plot(
            t,
            mean,
            "o-",
            color=c,
            lw=2,
            label=f"{name}: slope {slope_of(horizons, mean):.2f} (seeds {min(slopes):.2f} to {max(slopes):.2f})",
        )
    anchor = costs["sft"].mean(0)[0]
    for power, style in ((1, ":"), (2, "--")):
        ax.plot(t, anchor * (t / t[0]) ** power, style, color="grey", lw=1, label=f"slope {power}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(t, [f"{int(x)}" for x in t])
    ax.minorticks_off()
    ax.legend(fontsize=7.5, loc="upper left")
    label(
        ax,
        "horizon T (words generated)",
        "off-language words among the first T",
        f"Cost of imitation vs horizon ({len(seeds)} seeds)",
    )
    return fig
