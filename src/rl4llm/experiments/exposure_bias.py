"""``exposure-bias``: SFT is behaviour cloning on tokens; DAgger on tokens asks the expert about its own prefixes.

Three tiny GPT-2s (:mod:`rl4llm.imitation.token_dagger`) learn to write *streams* of reviews (``length`` words of
reviews one after another) from the same label budget, ``n_labelled`` texts of ``length`` labelled prefixes each,
and the same number of gradient steps:

* **SFT**: ``n_labelled`` expert demonstrations, each prefix labelled with the word the demonstration has next;
* **SFT, expert labels**: the same demonstrations, each prefix labelled with the expert's whole next-word
  distribution (the grammar's), so that it gets exactly the kind of label DAgger gets;
* **DAgger**: ``demo_fraction`` of the budget as demonstrations (expert labels), the rest spent over
  ``dagger_iterations`` rounds of rollouts of the mixture :math:`\\beta_i \\pi^* + (1-\\beta_i)\\hat\\pi_i`,
  :math:`\\beta_i` = ``beta_decay``:math:`^{i-1}`, every visited prefix labelled by the expert.

Every learner writes with the same trembling hand: each word it writes is, with probability ``slip``
(:math:`\\epsilon`), replaced by a random word (the learners' shared, irreducible error rate of Theorems 1.1/1.4).
The experts' demonstrations never slip, so neither SFT learner has ever seen a broken review; DAgger's rollouts
slip too, and the expert tells it to end a broken review (``<eos>``) and start afresh.

Measured on ``n_eval`` generated streams per learner (:func:`rl4llm.imitation.validity_by_position`): the intact
rate (the current review still inside the language) and the whole-text inside rate at each position, and the
cumulative number of off-language words (the 0-1 cost against the expert). With ``compare_no_slip`` the three
learners are also measured without slips (DAgger then retrained with slip-free rollouts), to show what the network's
own mistakes alone do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result, from_state, to_state
from rl4llm.imitation.exposure import ValidityCurves, validity_by_position
from rl4llm.imitation.plots import plot_validity_curves
from rl4llm.imitation.token_dagger import generate_streams, sample_streams, token_dagger, token_sft
from rl4llm.plotting import COLORS, PALETTE, label, new_figure
from rl4llm.utils import set_seed, set_torch_threads

NAME = "exposure-bias"
SUMMARY = "SFT (behaviour cloning on tokens) vs DAgger on tokens: staying inside the language over long generations"

LEARNERS = {"sft": "SFT", "sft_expert": "SFT, expert labels", "dagger": "DAgger"}


@dataclass
class Config:
    """Defaults are what the book runs (about 50 s of one CPU core)."""

    n_labelled: int = param(256, low=4, help="texts labelled in all, for every learner (the label budget)")
    length: int = param(40, low=2, high=63, help="words per text (at most 63, the tiny GPT-2's context)")
    demo_fraction: float = param(
        0.75,
        low=0.0,
        high=1.0,
        low_inclusive=False,
        high_inclusive=False,
        help="DAgger: share of the budget spent on demonstrations",
    )
    dagger_iterations: int = param(2, low=1, help="DAgger rounds of rollouts after the fit on the demonstrations")
    beta_decay: float = param(0.5, low=0.0, high=1.0, help="beta_i = beta_decay ** (i - 1): 0.5, then 0.25")
    slip: float = param(
        0.05,
        low=0.0,
        high=1.0,
        high_inclusive=False,
        help="probability that a learner's word is replaced by a random word",
    )
    steps: int = param(900, low=1, help="gradient steps of every learner (> dagger_iterations)")
    batch_size: int = param(16, low=1, help="texts per gradient step")
    lr: float = param(3e-3, low=0.0, high=1.0, low_inclusive=False, help="learning rate")
    n_eval: int = param(400, low=1, help="streams generated per learner for the measurements")
    compare_no_slip: bool = param(True, help="also measure every learner without slips (one more DAgger run)")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)
        if self.steps < self.dagger_iterations + 1:
            raise ConfigError(
                "steps",
                f"steps must be an int in [dagger_iterations + 1 = "
                f"{self.dagger_iterations + 1}, inf), got {self.steps}",
            )
        n_demo = int(round(self.demo_fraction * self.n_labelled))
        if n_demo < 1 or self.n_labelled - n_demo < self.dagger_iterations:
            raise ConfigError(
                "demo_fraction",
                f"demo_fraction={self.demo_fraction} leaves DAgger {n_demo} "
                f"demonstrations and {self.n_labelled - n_demo} rollouts for "
                f"{self.dagger_iterations} iterations; it needs at least one "
                "demonstration and one rollout per iteration",
            )


def dagger_budget(config: Config) -> tuple[int, int]:
    """``(demonstrations, rollouts per iteration)`` for DAgger; the total never exceeds ``n_labelled``."""
    n_demo = int(round(config.demo_fraction * config.n_labelled))
    return n_demo, (config.n_labelled - n_demo) // config.dagger_iterations


def _measure(model, tokenizer, config: Config, slip: float) -> ValidityCurves:
    texts = generate_streams(model, tokenizer, config.n_eval, config.length, slip=slip, seed=config.seed + 777)
    return validity_by_position(texts, config.length)


def run(config: Config) -> Result:
    from rl4llm.lm.tokenizer import build_tokenizer

    set_torch_threads(1)
    rng = set_seed(config.seed)
    tokenizer = build_tokenizer()
    demos = sample_streams(config.n_labelled, config.length, rng)
    n_demo, per_iteration = dagger_budget(config)
    common = dict(steps=config.steps, batch_size=config.batch_size, lr=config.lr, seed=config.seed)
    models = {
        "sft": token_sft(demos, tokenizer, labels="demonstrated", **common),
        "sft_expert": token_sft(demos, tokenizer, labels="expert", **common),
    }
    dagger_kwargs = dict(
        n_iterations=config.dagger_iterations,
        rollouts_per_iteration=per_iteration,
        beta_decay=config.beta_decay,
        **common,
    )
    models["dagger"], dlog = token_dagger(demos[:n_demo], tokenizer, slip=config.slip, **dagger_kwargs)
    curves = {k: _measure(m, tokenizer, config, config.slip) for k, m in models.items()}
    no_slip: dict[str, ValidityCurves] = {}
    if config.compare_no_slip:
        dagger0, _ = token_dagger(demos[:n_demo], tokenizer, slip=0.0, **dagger_kwargs)
        no_slip = {k: _measure(dagger0 if k == "dagger" else m, tokenizer, config, 0.0) for k, m in models.items()}

    metrics: dict[str, float | int] = {
        "slip": config.slip,
        "length": config.length,
        "labels_per_learner": config.n_labelled * config.length,
        "dagger_labels": int(dlog.n_labels[-1]),
    }
    for key, c in curves.items():
        for name, value in c.summary().items():
            metrics[f"{key}_{name}"] = round(value, 5)
    for key, c in no_slip.items():
        for name, value in c.summary().items():
            metrics[f"{key}_{name}_no_slip"] = round(value, 5)
    rows = []
    for t in range(config.length):
        row: dict[str, float | int] = {"t": t + 1}
        for key, c in curves.items():
            row[f"{key}_intact"] = round(float(c.intact[t]), 5)
            row[f"{key}_inside"] = round(float(c.inside[t]), 5)
            row[f"{key}_cost"] = round(float(c.cumulative_cost[t]), 5)
        for key, c in no_slip.items():
            row[f"{key}_intact_no_slip"] = round(float(c.intact[t]), 5)
            row[f"{key}_cost_no_slip"] = round(float(c.cumulative_cost[t]), 5)
        rows.append(row)
    result = Result(
        metrics=metrics,
        curves=rows,
        artifacts={
            "curves": curves,
            "curves_no_slip": no_slip,
            "models": models,
            "tokenizer": tokenizer,
            "dagger_log": dlog,
            "demos": demos,
        },
    )
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Validity by position for every learner, with slips and without."""
    return plot_exposure_bias(
        result.artifacts["curves"], result.artifacts["curves_no_slip"], config.slip, config.length
    )


def plot_exposure_bias(curves: dict[str, ValidityCurves], no_slip: dict[str, ValidityCurves], slip: float, length: int):
    """Intact / inside rates and cumulative cost against the generation length (slipping learners), and the
    total cost of each learner with and without slips (bars)."""
    from matplotlib.patches import Patch

    fig, axes = new_figure(ncols=3, width=4.3, height=3.6)
    named = {LEARNERS[k]: c for k, c in curves.items()}
    plot_validity_curves(named, slip=slip, axes=(axes[0, 0], axes[0, 1]))
    axes[0, 0].set_title(rf"Inside the language ($\epsilon$ = {slip:g})")
    axes[0, 1].set_title(rf"Cumulative cost ($\epsilon$ = {slip:g})")
    ax = axes[0, 2]
    keys = list(curves)
    x = np.arange(len(keys))
    settings = (
        [(no_slip, 0.4, "ε = 0 (no slips)"), (curves, 1.0, f"ε = {slip:g}")]
        if no_slip
        else [(curves, 1.0, f"ε = {slip:g}")]
    )
    width = 0.8 / len(settings)
    for j, (cs, alpha, _) in enumerate(settings):
        totals = [float(cs[k].off_language.sum()) for k in keys]
        offset = (j - (len(settings) - 1) / 2) * width
        bars = ax.bar(
            x + offset,
            totals,
            width,
            color=[COLORS[i % len(COLORS)] for i in range(len(keys))],
            alpha=alpha,
            edgecolor="black",
            linewidth=0.6,
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7.5, padding=1)
    ax.set_xticks(x, [LEARNERS[k] for k in keys], fontsize=8.5)
    ax.margins(y=0.12)
    handles = [
        Patch(facecolor=PALETTE["grey"], alpha=alpha, edgecolor="black", label=name) for _, alpha, name in settings
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    label(ax, "learner", f"off-language words among {length}", "Total cost, with and without slips")
    return fig


def cache_state(result: Result) -> dict[str, Any]:
    """The validity curves the figure draws (the models are not kept)."""
    return {
        k: {name: to_state(dataclasses.asdict(c)) for name, c in result.artifacts[k].items()}
        for k in ("curves", "curves_no_slip")
    }


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {
        k: {name: ValidityCurves(**from_state(c)) for name, c in state[k].items()} for k in ("curves", "curves_no_slip")
    }
