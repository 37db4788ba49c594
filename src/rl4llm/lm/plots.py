"""Figures of the GPT-2 substrate (book section 1.4, "The language model as an agent").

* :func:`plot_pretraining`: the shipped checkpoint's training run, from its ``training_log.json``;
* :func:`plot_gold_distribution`: the gold reward of grammar samples at several ``positivity`` settings;
* :func:`plot_temperature_sweep`: how the sampling temperature trades the gold reward and the parse rate of the
  tiny GPT-2's samples.

Every function only draws; the numbers come from :mod:`rl4llm.lm.analysis`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rl4llm.plotting import COLORS, PALETTE, label, new_figure

__all__ = ["plot_pretraining", "plot_gold_distribution", "plot_temperature_sweep"]


def plot_pretraining(log: dict):
    """Two panels: next-token loss (train and held-out, with the grammar's own entropy as the floor) and the
    fraction of samples that parse, against the training step."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    floor = float(np.log(log["final"]["grammar_perplexity"]))
    ax1.plot(log["step"], log["train_loss"], label="train (running mean)", color=COLORS[0])
    ax1.plot(log["eval_step"], log["heldout_loss"], "o-", ms=3, label="held-out", color=COLORS[1])
    ax1.axhline(floor, ls="--", color=PALETTE["grey"], label=f"grammar's entropy ({floor:.3f} nats)")
    ax1.set_ylim(floor - 0.2, floor + 1.5)
    label(ax1, "training step", "next-token loss (nats)", "Pretraining loss")
    ax1.legend()
    ax2.plot(log["eval_step"], np.asarray(log["parse_rate"]) * 100, "o-", ms=3, color=COLORS[2])
    ax2.set_ylim(0, 101)
    label(ax2, "training step", "samples in the language (%)", "Grammaticality of samples")
    return fig


def plot_gold_distribution(samples: Mapping[float, np.ndarray]):
    """Grouped bars: the distribution of the gold reward of grammar samples for each ``positivity`` (``samples``
    from :func:`rl4llm.lm.analysis.gold_distribution`).

    The reward of a grammatical text takes few values (multiples of 0.25), so each value gets a group of bars.
    """
    positivities = list(samples)
    n = len(next(iter(samples.values())))
    values = np.unique(np.round(np.concatenate(list(samples.values())), 3))
    fig, ax = new_figure(width=6.4, height=3.3)
    width = 0.8 / len(positivities)
    for i, (p, g) in enumerate(samples.items()):
        frac = np.array([np.mean(np.isclose(g, v, atol=1e-3)) for v in values]) * 100
        ax.bar(
            np.arange(len(values)) + (i - (len(positivities) - 1) / 2) * width,
            frac,
            width,
            color=COLORS[i % len(COLORS)],
            label=f"positivity {p:g} (mean {g.mean():+.2f})",
        )
    ax.set_xticks(np.arange(len(values)), [f"{v:+.2f}" for v in values], rotation=45)
    label(ax, "gold reward R(x)", "% of texts", f"Gold reward of {n} grammar samples per setting")
    ax.legend(loc="upper left")
    return fig


def plot_temperature_sweep(rows: list[dict[str, float]], highlight: float | None = None):
    """Gold reward and parse rate against the sampling temperature (``highlight`` marks one temperature)."""
    fig, ax = new_figure(width=5.6, height=3.4)
    t = [r["temperature"] for r in rows]
    ax.plot(t, [r["parse_rate"] for r in rows], "o-", ms=4, color=COLORS[0], label="parse rate")
    ax.plot(t, [r["gold"] for r in rows], "s-", ms=4, color=COLORS[1], label="mean gold reward")
    ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    if highlight is not None:
        ax.axvline(highlight, ls=":", color=PALETTE["black"], label=f"τ = {highlight:g}")
    ax.set_xscale("log")
    ax.set_xticks(t, [f"{x:g}" for x in t])
    ax.minorticks_off()
    label(ax, "sampling temperature τ (log scale)", "parse rate / gold reward", "Sampling temperature")
    ax.legend()
    return fig
