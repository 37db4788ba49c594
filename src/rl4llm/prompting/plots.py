"""Figures of chapter 6 (all in the book's style, from :mod:`rl4llm.plotting`).

Every function only draws: the numbers come from :mod:`rl4llm.prompting.evaluation` or the logs themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.lines import Line2D

from rl4llm.plotting import COLORS, PALETTE, label, new_figure

if TYPE_CHECKING:
    from rl4llm.prompting.logs import PromptLogs

__all__ = [
    "plot_accuracy_table",
    "plot_methods",
    "plot_k_sweep",
    "plot_choices",
    "plot_log_size_sweep",
    "plot_prompt_evaluation",
    "plot_call_budget",
    "plot_prompt_features",
    "PROMPT_METHOD_LABELS",
]

PROMPT_METHOD_LABELS = {
    "random_accuracy": "random prompt",
    "best_single_prompt_accuracy": "best single prompt",
    "prompt_only_accuracy": "RM, prompt features only",
    "oirl_accuracy": "Prompt-OIRL (RM per query)",
    "confidence_accuracy": "LM confidence (K calls)",
    "oracle_accuracy": "oracle (K calls + answer key)",
}
METHOD_COLORS = {
    "random_accuracy": PALETTE["grey"],
    "best_single_prompt_accuracy": PALETTE["orange"],
    "prompt_only_accuracy": PALETTE["sky"],
    "oirl_accuracy": PALETTE["blue"],
    "confidence_accuracy": PALETTE["purple"],
    "oracle_accuracy": PALETTE["black"],
}
METHOD_STYLES = {"oracle_accuracy": ":", "confidence_accuracy": "--"}


def _axes(ax, width: float, height: float):
    if ax is None:
        return new_figure(width=width, height=height)
    return ax.figure, ax


def plot_accuracy_table(logs: PromptLogs, table: tuple[list[str], np.ndarray], ax=None):
    """Heat map: accuracy of every prompt (columns) on every query type (rows); held-out prompts marked *.
    ``table`` is :func:`rl4llm.prompting.evaluation.type_prompt_accuracy`'s ``(types, accuracy)``."""
    types, acc = table
    fig, ax = _axes(ax, 8.5, 3.4)
    im = ax.imshow(acc, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(
                j,
                i,
                f"{acc[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="black" if acc[i, j] > 0.6 else "white",
            )
    names = [str(n) + (" *" if h else "") for n, h in zip(logs.prompt_name, logs.prompt_heldout)]
    ax.set_xticks(range(len(names)), names, fontsize=8, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(types)), [t or "all" for t in types])
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="accuracy", fraction=0.03)
    label(
        ax,
        "prompt (* = held out of the reward model's logs)",
        "query type",
        "Accuracy of the LM per query type x prompt",
    )
    return fig


def plot_methods(metrics: dict[str, Any], ax=None, title: str = "Choosing a prompt per query"):
    """Bars: accuracy on held-out queries of each way of choosing a prompt."""
    fig, ax = _axes(ax, 6.0, 3.2)
    keys = [k for k in PROMPT_METHOD_LABELS if k in metrics and np.isfinite(metrics[k])]
    vals = [metrics[k] for k in keys]
    ax.barh(range(len(keys)), vals, color=[METHOD_COLORS[k] for k in keys])
    for i, v in enumerate(vals):
        ax.text(v + 0.01, i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(keys)), [PROMPT_METHOD_LABELS[k] for k in keys])
    ax.set_xlim(0, 1.1)
    label(ax, "accuracy on held-out queries", "", title)
    return fig


def _lines(ax, xs: list[float], rows: list[dict[str, float]], keys: tuple[str, ...], loc: str = "best") -> None:
    for key in keys:
        ax.plot(
            xs,
            [r[key] for r in rows],
            marker="o",
            ms=3,
            color=METHOD_COLORS[key],
            ls=METHOD_STYLES.get(key, "-"),
            label=PROMPT_METHOD_LABELS[key],
        )
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc=loc)


def plot_k_sweep(rows: list[dict[str, float]], ax=None):
    """Lines: accuracy against the number K of candidate prompts in the logs."""
    fig, ax = _axes(ax, 5.0, 3.4)
    _lines(
        ax,
        [r["k"] for r in rows],
        rows,
        ("oracle_accuracy", "confidence_accuracy", "oirl_accuracy", "best_single_prompt_accuracy", "random_accuracy"),
        loc="center right",
    )
    label(
        ax,
        "K, number of candidate prompts in the logs",
        "accuracy on held-out queries",
        "Accuracy vs number of candidate prompts",
    )
    return fig


def plot_log_size_sweep(rows: list[dict[str, float]], ax=None):
    """Lines: accuracy against the number of training queries in the offline logs (log scale)."""
    fig, ax = _axes(ax, 5.0, 3.4)
    sizes = [r["n_train_queries"] for r in rows]
    _lines(ax, sizes, rows, ("oracle_accuracy", "oirl_accuracy", "best_single_prompt_accuracy"))
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    label(
        ax,
        "training queries in the offline logs (each with every candidate)",
        "accuracy on held-out queries",
        "A bigger log, a better reward model",
    )
    return fig


def plot_choices(logs: PromptLogs, study: dict[str, Any], ax=None):
    """Stacked bars: for each query type, which prompt (grouped by answer format when the prompt names say
    ``"<format> '<text>'"``, as the book's do) the reward model picks on held-out queries."""
    fig, ax = _axes(ax, 5.5, 3.4)
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
        ax.bar(
            range(len(types)),
            frac,
            bottom=bottom,
            color=COLORS[g_i % len(COLORS)],
            label=(f"{g} format" if by_format else g),
        )
        bottom += frac
    ax.set_xticks(range(len(types)), [(t or "all").replace("-", "\n", 1) for t in types])
    ax.set_ylim(0, 1.0)
    label(ax, "query type (held-out queries)", "fraction of queries", "Which prompt the reward model picks")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_prompt_evaluation(logs: PromptLogs, study: dict[str, Any], predicted: np.ndarray, ax=None):
    """Scatter: for every (query type, prompt) cell of the held-out queries, the reward model's predicted success
    rate (``predicted``, from :func:`rl4llm.prompting.evaluation.predicted_success`) against the LM's measured
    one; colour: logged or held-out prompt, marker: query type."""
    fig, ax = _axes(ax, 4.6, 4.2)
    test_q = study["test_q"]
    prompts = np.arange(logs.n_prompts)
    actual = logs.matrix()[test_q]
    qtypes = logs.query_type[test_q]
    types = sorted(set(qtypes.tolist()))
    markers = "osD^v<>p"
    ax.plot([0, 1], [0, 1], color=PALETTE["grey"], ls=":", lw=1)
    for i, t in enumerate(types):
        rows = qtypes == t
        for held, color in ((False, PALETTE["blue"]), (True, PALETTE["red"])):
            cols = prompts[logs.prompt_heldout == held]
            if cols.size:
                ax.scatter(
                    np.nanmean(actual[np.ix_(rows, cols)], axis=0),
                    predicted[np.ix_(rows, cols)].mean(axis=0),
                    marker=markers[i % len(markers)],
                    s=28,
                    color=color,
                    edgecolors="white",
                    linewidths=0.5,
                    alpha=0.9,
                )
    handles = [
        Line2D([], [], ls="", marker="o", color=PALETTE["blue"], label="logged prompt"),
        Line2D([], [], ls="", marker="o", color=PALETTE["red"], label="held-out prompt"),
    ]
    handles += [
        Line2D([], [], ls="", marker=markers[i % len(markers)], color=PALETTE["grey"], label=t or "all")
        for i, t in enumerate(types)
    ]
    handles.append(Line2D([], [], ls=":", color=PALETTE["grey"], label="perfect evaluation"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_aspect("equal")
    label(
        ax, "measured accuracy (LM + checker)", "predicted success (reward model)", "Evaluating prompts without the LM"
    )
    return fig


def plot_call_budget(rows: list[dict[str, float]], metrics: dict[str, Any], ax=None):
    """Lines: accuracy against LM calls per query (:func:`~rl4llm.prompting.evaluation.call_budget_curve`),
    with the best single prompt and the oracle for reference."""
    fig, ax = _axes(ax, 5.0, 3.4)
    calls = [r["calls"] for r in rows]
    ax.plot(
        calls,
        [r["oracle_top_m"] for r in rows],
        color=PALETTE["black"],
        ls=":",
        marker="o",
        ms=3,
        label="oracle over the RM's top m",
    )
    ax.plot(
        calls,
        [r["oirl_top_m"] for r in rows],
        color=PALETTE["blue"],
        marker="o",
        ms=3,
        label="RM's top m, most confident answer",
    )
    ax.plot(
        calls,
        [r["random_m"] for r in rows],
        color=PALETTE["purple"],
        ls="--",
        marker="o",
        ms=3,
        label="m random prompts, most confident answer",
    )
    ax.scatter(
        [1],
        [metrics["best_single_prompt_accuracy"]],
        color=PALETTE["orange"],
        zorder=3,
        s=30,
        label="best single prompt",
    )
    ax.set_xticks(calls)
    ax.set_ylim(0, 1.02)
    label(ax, "LM calls per query at answer time (m)", "accuracy on held-out queries", "What each LM call buys")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_prompt_features(logs: PromptLogs, ax=None):
    """Scatter: every prompt at its first two features (for the book's logs, the top principal components of the
    LM's hidden state of the instruction); colour = answer format, open marker = held out of the logs."""
    fig, ax = _axes(ax, 5.6, 3.8)
    if logs.prompt_feats.shape[1] < 2:
        raise ValueError(f"logs need at least 2 prompt features to draw, got {logs.prompt_feats.shape[1]}")
    names = [str(n) for n in logs.prompt_name]
    by_format = all(" '" in n for n in names)
    groups = list(dict.fromkeys(n.split(" '")[0] if by_format else n for n in names))
    feats = logs.prompt_feats[:, :2]
    span = np.ptp(feats, axis=0) + 1e-12
    for j, name in enumerate(names):
        close = np.abs(feats[:j] - feats[j]) < 0.12 * span  # earlier labels nearby: stack this one below them
        stack = int(close.all(axis=1).sum())
        g = groups.index(name.split(" '")[0] if by_format else name)
        color = COLORS[g % len(COLORS)]
        x, y = logs.prompt_feats[j, :2]
        held = bool(logs.prompt_heldout[j])
        ax.scatter(
            [x], [y], s=60, marker="o", color="white" if held else color, edgecolors=color, linewidths=2, zorder=3
        )
        ax.annotate(
            name.split(" '", 1)[1][:-1] if by_format else name,
            (x, y),
            textcoords="offset points",
            xytext=(6, 4 - 11 * stack),
            fontsize=8,
            color=color,
        )
    handles = [
        Line2D([], [], ls="", marker="o", color=COLORS[g % len(COLORS)], label=f"{name} format" if by_format else name)
        for g, name in enumerate(groups)
    ]
    handles.append(
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            color="white",
            markeredgecolor=PALETTE["grey"],
            markeredgewidth=2,
            label="held out of the logs",
        )
    )
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.margins(x=0.25, y=0.15)
    label(ax, "prompt feature 1", "prompt feature 2", "The prompts as the reward model sees them")
    return fig
