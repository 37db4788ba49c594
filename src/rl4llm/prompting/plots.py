"""Figures of chapter 6 (all in the book's style, from :mod:`rl4llm.plotting`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rl4llm.plotting import COLORS, PALETTE, label, new_figure
from rl4llm.prompting.logs import PromptLogs

__all__ = ["plot_accuracy_table", "plot_methods", "plot_k_sweep", "plot_choices", "plot_log_size_sweep",
           "type_prompt_accuracy"]

METHOD_LABELS = {
    "random_accuracy": "random prompt",
    "best_single_prompt_accuracy": "best single prompt",
    "prompt_only_accuracy": "RM, prompt features only",
    "oirl_accuracy": "Prompt-OIRL (RM per query)",
    "confidence_accuracy": "LM confidence (K calls)",
    "oracle_accuracy": "oracle (K calls + answer key)",
}


def type_prompt_accuracy(logs: PromptLogs) -> tuple[list[str], np.ndarray]:
    """Query types and the ``[n_types, n_prompts]`` accuracy table over all logged queries."""
    types = [t for t in dict.fromkeys(logs.query_type.tolist())] or [""]
    order = sorted(types)
    table = logs.matrix()
    acc = np.array([np.nanmean(table[logs.query_type == t], axis=0) for t in order])
    return order, acc


def plot_accuracy_table(logs: PromptLogs, ax=None):
    """Heat map: accuracy of every prompt (columns) on every query type (rows); held-out prompts marked *."""
    types, acc = type_prompt_accuracy(logs)
    if ax is None:
        fig, ax = new_figure(width=9.0, height=3.2)
    else:
        fig = ax.figure
    im = ax.imshow(acc, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if acc[i, j] > 0.6 else "white")
    names = [n + (" *" if h else "") for n, h in zip(logs.prompt_name, logs.prompt_heldout)]
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(types)), [t or "all" for t in types])
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="accuracy", fraction=0.03)
    label(ax, "prompt (* = held out of the reward model's logs)", "query type",
          "Accuracy of the LM per query type x prompt")
    return fig


def plot_methods(metrics: dict[str, Any], ax=None):
    """Bars: accuracy on held-out queries of each way of choosing a prompt."""
    if ax is None:
        fig, ax = new_figure(width=6.0, height=3.2)
    else:
        fig = ax.figure
    keys = [k for k in METHOD_LABELS if k in metrics and np.isfinite(metrics[k])]
    vals = [metrics[k] for k in keys]
    colors = [PALETTE["grey"], PALETTE["orange"], PALETTE["sky"], PALETTE["blue"], PALETTE["purple"],
              PALETTE["black"]]
    ax.barh(range(len(keys)), vals, color=[colors[list(METHOD_LABELS).index(k)] for k in keys])
    for i, v in enumerate(vals):
        ax.text(v + 0.01, i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(keys)), [METHOD_LABELS[k] for k in keys])
    ax.set_xlim(0, 1.1)
    label(ax, "accuracy on held-out queries", "", "Choosing a prompt per query")
    return fig


def plot_k_sweep(rows: list[dict[str, float]], ax=None):
    """Lines: accuracy against the number K of candidate prompts in the logs."""
    if ax is None:
        fig, ax = new_figure(width=5.0, height=3.4)
    else:
        fig = ax.figure
    k = [r["k"] for r in rows]
    styles = [("oracle_accuracy", PALETTE["black"], ":"), ("confidence_accuracy", PALETTE["purple"], "--"),
              ("oirl_accuracy", PALETTE["blue"], "-"), ("best_single_prompt_accuracy", PALETTE["orange"], "-"),
              ("random_accuracy", PALETTE["grey"], "-")]
    for key, color, ls in styles:
        ax.plot(k, [r[key] for r in rows], marker="o", ms=3, color=color, ls=ls, label=METHOD_LABELS[key])
    ax.set_ylim(0, 1.02)
    label(ax, "K, number of candidate prompts in the logs", "accuracy on held-out queries",
          "Accuracy vs number of candidate prompts")
    ax.legend(fontsize=7)
    return fig


def plot_choices(logs: PromptLogs, study: dict[str, Any], ax=None):
    """Stacked bars: for each query type, which prompt (grouped by answer format when the prompt names say
    ``"<format> '<text>'"``, as the book's do) the reward model picks on held-out queries."""
    if ax is None:
        fig, ax = new_figure(width=5.5, height=3.4)
    else:
        fig = ax.figure
    test_q, choice = study["test_q"], study["choice"]
    types = sorted(set(logs.query_type[test_q].tolist()))
    cands = list(study["candidates"])
    names = [str(n) for n in logs.prompt_name]
    by_format = all(" '" in names[p] for p in cands)
    group = {p: (names[p].split(" '")[0] if by_format else names[p]) for p in cands}
    groups = list(dict.fromkeys(group[p] for p in cands))
    chosen_group = np.array([group[int(c)] for c in choice])
    qtypes = logs.query_type[test_q]
    bottom = np.zeros(len(types))
    for g_i, g in enumerate(groups):
        frac = np.array([np.mean(chosen_group[qtypes == t] == g) for t in types])
        ax.bar(range(len(types)), frac, bottom=bottom, color=COLORS[g_i % len(COLORS)],
               label=(f"{g} format" if by_format else g))
        bottom += frac
    ax.set_xticks(range(len(types)), [(t or "all").replace("-", "\n", 1) for t in types])
    ax.set_ylim(0, 1.0)
    label(ax, "query type (held-out queries)", "fraction of queries", "Which prompt the reward model picks")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_log_size_sweep(rows: list[dict[str, float]], ax=None):
    """Lines: accuracy against the number of training queries in the offline logs."""
    if ax is None:
        fig, ax = new_figure(width=5.0, height=3.4)
    else:
        fig = ax.figure
    n = [r["n_train_queries"] for r in rows]
    for key, color, ls in (("oracle_accuracy", PALETTE["black"], ":"), ("oirl_accuracy", PALETTE["blue"], "-"),
                           ("best_single_prompt_accuracy", PALETTE["orange"], "-")):
        ax.plot(n, [r[key] for r in rows], marker="o", ms=3, color=color, ls=ls, label=METHOD_LABELS[key])
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    label(ax, "training queries in the offline logs (each with every logged prompt)",
          "accuracy on held-out queries", "A bigger log, a better reward model")
    ax.legend(fontsize=7)
    return fig
