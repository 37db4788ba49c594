"""Figures of the GPT-2 substrate (book section 1.4, "The language model as an agent").

* :func:`plot_pretraining`: the shipped checkpoint's training run, from its ``training_log.json``;
* :func:`plot_gold_distribution`: the gold reward of grammar samples at several ``positivity`` settings;
* :func:`temperature_sweep` / :func:`plot_temperature_sweep`: how the sampling temperature trades the gold reward
  and the parse rate of the tiny GPT-2's samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rl4llm.lm.language import gold_rewards, parse_rate, sample_texts
from rl4llm.plotting import COLORS, PALETTE, label, new_figure
from rl4llm.utils import check_positive_int, check_range

__all__ = ["training_log", "plot_pretraining", "plot_gold_distribution", "temperature_sweep",
           "plot_temperature_sweep"]


def training_log(folder: str | Path | None = None) -> dict:
    """The ``training_log.json`` of a checkpoint folder (default: the shipped tiny GPT-2)."""
    from rl4llm.lm.model import CHECKPOINT_DIR

    return json.loads((Path(folder or CHECKPOINT_DIR) / "training_log.json").read_text())


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


def plot_gold_distribution(positivities: Sequence[float] = (0.1, 0.5, 0.9), n: int = 2000, seed: int = 0):
    """Grouped bars: the distribution of the gold reward of ``n`` grammar samples for each ``positivity``.

    The reward of a grammatical text takes few values (multiples of 0.25), so each value gets a group of bars.
    """
    check_positive_int("n", n)
    samples = []
    for i, p in enumerate(positivities):
        check_range("positivity", p, 0.0, 1.0)
        samples.append(gold_rewards(sample_texts(n, np.random.default_rng([seed, i]), positivity=p)))
    values = np.unique(np.round(np.concatenate(samples), 3))
    fig, ax = new_figure(width=6.4, height=3.3)
    width = 0.8 / len(positivities)
    for i, (p, g) in enumerate(zip(positivities, samples)):
        frac = np.array([np.mean(np.isclose(g, v, atol=1e-3)) for v in values]) * 100
        ax.bar(np.arange(len(values)) + (i - (len(positivities) - 1) / 2) * width, frac, width,
               color=COLORS[i % len(COLORS)], label=f"positivity {p:g} (mean {g.mean():+.2f})")
    ax.set_xticks(np.arange(len(values)), [f"{v:+.2f}" for v in values], rotation=45)
    label(ax, "gold reward R(x)", "% of texts", f"Gold reward of {n} grammar samples per setting")
    ax.legend(loc="upper left")
    return fig


def temperature_sweep(model, tokenizer, temperatures: Sequence[float], n: int = 300, seed: int = 0
                      ) -> list[dict[str, float]]:
    """For each sampling temperature, the mean gold reward, parse rate and length of ``n`` samples."""
    from rl4llm.lm.generation import generate_texts

    rows = []
    for tau in temperatures:
        check_range("temperature", tau, 0.0, None, low_inclusive=False)
        texts = generate_texts(model, tokenizer, n, temperature=float(tau), seed=seed)
        rows.append({"temperature": float(tau), "gold": float(gold_rewards(texts).mean()),
                     "parse_rate": parse_rate(texts), "length": float(np.mean([len(t.split()) for t in texts]))})
    return rows


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
