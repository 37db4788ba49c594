"""Chapter 2's figures: grids of values and data coverage, predicted versus true values, return comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from rl4llm.plotting import PALETTE, band, label, new_figure

if TYPE_CHECKING:
    from rl4llm.offline.tabular import TabularMDP

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "plot_grid",
    "plot_value_grids",
    "plot_coverage",
    "plot_value_curves",
    "plot_training_values",
    "plot_returns",
    "plot_q_errors",
    "plot_offline_comparison",
    "plot_offline_sweep",
    "plot_fresh_data",
]

METHOD_COLORS: dict[str, str] = {
    "behaviour": PALETTE["grey"],
    "bc": PALETTE["purple"],
    "fqi": PALETTE["red"],
    "cql": PALETTE["blue"],
    "optimal": PALETTE["black"],
    "online": PALETTE["green"],
}
METHOD_LABELS: dict[str, str] = {
    "behaviour": "behaviour",
    "bc": "BC",
    "fqi": "FQI",
    "cql": "CQL",
    "optimal": "optimal",
    "online": "FQI + fresh data",
}
_ARROW = {0: (0.0, -0.32), 1: (0.32, 0.0), 2: (0.0, 0.32), 3: (-0.32, 0.0)}  # up, right, down, left (y down)


def _grid_frame(ax, mdp: TabularMDP) -> tuple[int, int]:
    if mdp.shape is None:
        raise ValueError("the MDP has no grid shape (build it with cliff_walk)")
    height, width = mdp.shape
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_xticks(range(width))
    ax.set_yticks(range(height))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.grid(False)
    ax.set_aspect("equal")
    for s in np.flatnonzero(mdp.terminal):
        r, c = divmod(int(s), width)
        goal = s == mdp.info.get("goal")
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), 1, 1, color=PALETTE["green"] if goal else "#444444", alpha=0.85, zorder=2)
        )
        ax.text(c, r, "goal" if goal else "cliff", ha="center", va="center", color="white", fontsize=7, zorder=3)
    start = mdp.info.get("start")
    if start is not None:
        r, c = divmod(int(start), width)
        ax.text(c - 0.42, r - 0.3, "start", ha="left", va="center", fontsize=7, zorder=3)
    return height, width


def plot_grid(
    mdp: TabularMDP,
    values: np.ndarray | None = None,
    policy: np.ndarray | None = None,
    *,
    title: str | None = None,
    ax=None,
    vmin: float | None = None,
    vmax: float | None = None,
    cbar_label: str = "value",
    annotate: bool = True,
):
    """A grid MDP with per-cell ``values`` (``[S]``, heatmap) and a deterministic ``policy`` (``[S, A]``, arrows)."""
    fig, ax = new_figure(width=5.0, height=3.2) if ax is None else (ax.figure, ax)
    height, width = _grid_frame(ax, mdp)
    light = np.zeros(mdp.n_states, dtype=bool)  # cells drawn in a light colour get dark text and arrows
    if values is not None:
        grid = np.asarray(values, dtype=float).reshape(height, width).copy()
        grid[mdp.terminal.reshape(height, width)] = np.nan
        im = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, zorder=1)
        ax.figure.colorbar(im, ax=ax, label=cbar_label, shrink=0.8)
        lo, hi = im.get_clim()
        light = (np.nan_to_num(grid.ravel(), nan=lo) - lo) / max(hi - lo, 1e-12) > 0.6
        if annotate:
            for s in np.flatnonzero(~mdp.terminal):
                r, c = divmod(int(s), width)
                ax.text(
                    c,
                    r + 0.3,
                    f"{grid[r, c]:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if light[s] else "white",
                    zorder=3,
                )
    if policy is not None:
        actions = np.asarray(policy).argmax(1)
        for s in np.flatnonzero(~mdp.terminal):
            r, c = divmod(int(s), width)
            dx, dy = _ARROW[int(actions[s])]
            color = "black" if (values is None or light[s]) else "white"
            ax.annotate(
                "",
                xy=(c + dx, r + dy),
                xytext=(c, r),
                zorder=4,
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5},
            )
    if title:
        ax.set_title(title)
    return fig


def plot_value_grids(
    mdp: TabularMDP,
    panels: Sequence[Mapping[str, Any]],
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    cbar_label: str = "value",
    width: float = 4.8,
):
    """Several :func:`plot_grid` panels side by side; each panel is a dict with ``values``, ``policy``, ``title``."""
    if not panels:
        raise ValueError("panels must hold at least one panel")
    fig, axes = new_figure(len(panels), width=width, height=3.0)
    axes = [axes] if len(panels) == 1 else list(axes[0])
    for ax, panel in zip(axes, panels):
        plot_grid(
            mdp,
            panel.get("values"),
            panel.get("policy"),
            title=panel.get("title"),
            ax=ax,
            vmin=vmin,
            vmax=vmax,
            cbar_label=cbar_label,
        )
    return fig


def plot_coverage(mdp: TabularMDP, counts: np.ndarray, *, title: str | None = None, ax=None):
    """Which actions the dataset took where: one arrow per (state, action) pair, width growing with its count.

    Cells are shaded by how often the data visits them; dotted red stubs mark actions it never took at a visited
    state (the pairs whose values a Q-learner must guess).
    """
    counts = np.asarray(counts)
    if counts.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"counts must be [S, A] = {(mdp.n_states, mdp.n_actions)}, got {counts.shape}")
    fig, ax = new_figure(width=6.4, height=3.9) if ax is None else (ax.figure, ax)
    height, width = _grid_frame(ax, mdp)
    visits = counts.sum(1).astype(float)
    grid = np.log10(1 + visits).reshape(height, width)
    grid[mdp.terminal.reshape(height, width)] = np.nan
    light = LinearSegmentedColormap.from_list("visits", ["#ffffff", "#a0a0a0"])
    im = ax.imshow(grid, cmap=light, vmin=0, vmax=max(1.0, float(np.nanmax(grid))), zorder=1)
    cb = ax.figure.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label("visits (log$_{10}$(1 + n))")
    top = max(1.0, np.log1p(counts.max()))
    for s in np.flatnonzero(~mdp.terminal):
        if visits[s] == 0:
            continue
        r, c = divmod(int(s), width)
        for a in range(mdp.n_actions):
            dx, dy = _ARROW[a]
            if counts[s, a] > 0:
                lw = 0.6 + 2.4 * np.log1p(counts[s, a]) / top
                ax.annotate(
                    "",
                    xy=(c + dx, r + dy),
                    xytext=(c, r),
                    zorder=4,
                    arrowprops={"arrowstyle": "->", "color": PALETTE["blue"], "lw": lw},
                )
            else:
                ax.plot([c, c + 0.8 * dx], [r, r + 0.8 * dy], ls=":", color=PALETTE["red"], lw=1.6, zorder=4)
    ax.plot([], [], color=PALETTE["blue"], lw=2, label="action in the data")
    ax.plot([], [], color=PALETTE["red"], ls=":", lw=1.6, label="never taken")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    if title:
        ax.set_title(title)
    return fig


def plot_value_curves(
    ax, curves_per_seed: Sequence[Sequence[Mapping[str, float]]], method: str, *, x: str = "iteration"
) -> None:
    """Predicted (solid) and true (dashed) value of ``method``'s greedy policy against ``x``, mean +/- sd over seeds."""
    xs = np.array([row[x] for row in curves_per_seed[0]], dtype=float)
    color = METHOD_COLORS.get(method)
    name = METHOD_LABELS.get(method, method)
    pred = np.array([[row["predicted"] for row in c] for c in curves_per_seed])
    true = np.array([[row["true"] for row in c] for c in curves_per_seed])
    band(ax, xs, pred, label=f"{name}: predicted $\\max_a \\hat Q(s_0, a)$", color=color)
    mean = true.mean(0)
    ax.plot(xs, mean, ls="--", color=color, label=f"{name}: true value of its policy")
    ax.fill_between(xs, mean - true.std(0), mean + true.std(0), color=color, alpha=0.1, linewidth=0)


def plot_training_values(
    curves: Mapping[str, Sequence[Sequence[Mapping[str, float]]]],
    *,
    references: Mapping[str, float] | None = None,
    x: str = "iteration",
    xlabel: str = "fitted Q-iteration",
    ylabel: str = "expected discounted return",
    title: str | None = "What the Q-function predicts vs the truth",
    ax=None,
):
    """:func:`plot_value_curves` for several methods (``{method: [curves of each seed]}``) on one axis.

    ``references`` draws labelled horizontal lines, e.g. ``{"optimal policy": 6.98, "behaviour": 4.84}``.
    """
    fig, ax = new_figure(width=6.0, height=3.8) if ax is None else (ax.figure, ax)
    for method, runs in curves.items():
        plot_value_curves(ax, runs, method, x=x)
    styles = [(":", "black"), ("--", PALETTE["grey"]), ("-.", PALETTE["purple"])]
    for (name, value), (ls, color) in zip((references or {}).items(), styles):
        ax.axhline(value, ls=ls, color=color, label=name)
    label(ax, xlabel, ylabel, title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return fig


def plot_returns(
    ax,
    returns: Mapping[str, Sequence[float]],
    *,
    predicted: Mapping[str, Sequence[float]] | None = None,
    optimal: float | None = None,
    ylabel: str = "expected discounted return",
) -> None:
    """Bars of mean true returns per method (dots: individual seeds); optional predicted values as crosses."""
    names = list(returns)
    for i, name in enumerate(names):
        vals = np.asarray(returns[name], dtype=float)
        color = METHOD_COLORS.get(name, PALETTE["grey"])
        ax.bar(i, vals.mean(), color=color, alpha=0.75, width=0.65)
        ax.scatter(np.full(vals.size, i) + np.linspace(-0.12, 0.12, vals.size), vals, color="black", s=10, zorder=3)
        if predicted is not None and name in predicted:
            p = np.asarray(predicted[name], dtype=float)
            ax.scatter([i], [p.mean()], marker="x", s=70, color=color, zorder=4, linewidths=2.5)
    if predicted:
        ax.scatter([], [], marker="x", color="black", label="predicted by the Q-function")
    if optimal is not None:
        ax.axhline(optimal, ls=":", color="black", label="optimal policy")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([METHOD_LABELS.get(n, n) for n in names])
    ax.set_ylabel(ylabel)
    if predicted or optimal is not None:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)


def plot_q_errors(errors: Mapping[str, Mapping[str, np.ndarray]], *, ax=None, reference: str = "Q^*"):
    """Strip plot of :math:`\\hat Q(s, a) - Q(s, a)` for pairs the data took and pairs it never took, per method."""
    fig, ax = new_figure(width=5.5, height=3.4) if ax is None else (ax.figure, ax)
    rng = np.random.default_rng(0)
    ticks, labels = [], []
    pos = 0
    for method, err in errors.items():
        color = METHOD_COLORS.get(method)
        for kind in ("seen", "unseen"):
            vals = np.asarray(err[kind], dtype=float)
            ax.scatter(
                pos + rng.uniform(-0.18, 0.18, vals.size),
                vals,
                s=10,
                alpha=0.55,
                color=color,
                marker="o" if kind == "seen" else "^",
            )
            if vals.size:
                ax.plot([pos - 0.28, pos + 0.28], [vals.mean()] * 2, color="black", lw=2)
            ticks.append(pos)
            labels.append(f"{METHOD_LABELS.get(method, method)}\n{'taken' if kind == 'seen' else 'never taken'}")
            pos += 1
        pos += 0.5
    ax.axhline(0, color="black", lw=0.8, ls=":")
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels)
    ax.set_ylabel(f"$\\hat Q(s, a) - {reference}(s, a)$")
    ax.plot([], [], color="black", lw=2, label="mean")
    ax.legend(loc="upper left")
    return fig


def plot_offline_comparison(
    runs: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, float],
    *,
    x: str = "iteration",
    xlabel: str = "fitted Q-iteration",
    ylabel: str = "expected discounted return",
    returns_ylabel: str | None = None,
    show_predicted: bool = True,
    title: str | None = None,
):
    """The comparison figure of ``offline-rl`` and ``offline-cartpole``.

    Left: predicted and true value of the FQI and CQL greedy policies during training (mean +/- sd over the
    ``runs``). Right: the true return of every method, with the Q-learners' predictions as crosses when
    ``show_predicted`` (same units). ``metrics`` may give ``optimal_return`` (a dotted line on both panels),
    ``behaviour_return`` (used when the runs do not carry their own) and ``max_value`` (a dotted ceiling on the
    left: the largest value any policy can have).
    """
    fig, axes = new_figure(2, width=5.2, height=3.8)
    references = {}
    if "optimal_return" in metrics:
        references["optimal policy"] = metrics["optimal_return"]
    if "max_value" in metrics:
        references["largest possible value"] = metrics["max_value"]
    plot_training_values(
        {m: [r[m]["curves"] for r in runs] for m in ("fqi", "cql") if m in runs[0]},
        references=references,
        x=x,
        xlabel=xlabel,
        ylabel=ylabel,
        ax=axes[0, 0],
    )
    if "behaviour" in runs[0]:
        returns = {"behaviour": [r["behaviour"]["return"] for r in runs]}
    else:
        returns = {"behaviour": [metrics["behaviour_return"]]}
    for method in (m for m in ("bc", "fqi", "cql") if m in runs[0]):
        returns[method] = [r[method]["return"] for r in runs]
    predicted = (
        {m: [r[m]["predicted"] for r in runs] for m in ("fqi", "cql") if m in runs[0]} if show_predicted else None
    )
    plot_returns(
        axes[0, 1], returns, predicted=predicted, optimal=metrics.get("optimal_return"), ylabel=returns_ylabel or ylabel
    )
    axes[0, 1].set_title(title or f"Policies learned offline ({len(runs)} datasets)")
    return fig


def plot_offline_sweep(
    sweep: Sequence[tuple[float, Any]],
    *,
    xlabel: str,
    symlog: bool = False,
    references: Mapping[str, float] | None = None,
):
    """True returns (left) and over-estimation (right) of each learner against a swept ``offline-rl`` knob.

    ``sweep`` is :func:`rl4llm.widgets.run_sweep`'s output; the learners drawn are those whose metrics the results
    hold. ``references`` adds horizontal lines (e.g. ``{"bc": 5.7}``) for learners that did not run in the sweep.
    ``symlog`` puts the knob on a symmetric-log axis (for CQL's alpha, where 0 is plain FQI).
    """
    if not sweep:
        raise ValueError("sweep must hold at least one (value, result) pair")
    xs = np.array([v for v, _ in sweep], dtype=float)
    metrics = [res.metrics for _, res in sweep]
    fig, axes = new_figure(2, width=5.0, height=3.6)
    ax = axes[0, 0]
    # CQL first and thick, BC on top of it dashed with small markers: the two often coincide
    styles = {
        "behaviour": {"ls": "--", "marker": "o", "lw": 1.2, "ms": 5, "zorder": 2},
        "cql": {"ls": "-", "marker": "o", "lw": 4.0, "ms": 9, "zorder": 3, "alpha": 0.55},
        "fqi": {"ls": "-", "marker": "o", "lw": 1.8, "ms": 6, "zorder": 4},
        "bc": {"ls": "--", "marker": "s", "lw": 1.5, "ms": 4, "zorder": 5},
    }
    for method in ("behaviour", "cql", "fqi", "bc"):
        key = f"{method}_return"
        if key in metrics[0]:
            ax.plot(
                xs,
                [m[key] for m in metrics],
                color=METHOD_COLORS[method],
                label=METHOD_LABELS[method],
                **styles[method],
            )
    for method, value in (references or {}).items():
        ax.axhline(
            value,
            color=METHOD_COLORS.get(method, PALETTE["grey"]),
            ls="--",
            lw=1.2,
            label=f"{METHOD_LABELS.get(method, method)} (not swept)",
        )
    ax.axhline(metrics[0]["optimal_return"], ls=":", color="black", label="optimal")
    label(ax, xlabel, "expected discounted return", "True return of each policy")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for method in ("fqi", "cql"):
        key = f"{method}_overestimation"
        if key in metrics[0]:
            ax.plot(xs, [m[key] for m in metrics], marker="o", color=METHOD_COLORS[method], label=METHOD_LABELS[method])
    ax.axhline(0, color="black", lw=0.8, ls=":")
    label(ax, xlabel, "predicted − true value", "Over-estimation at the start cell")
    ax.legend(fontsize=8)
    if symlog:
        linthresh = float(np.min(xs[xs > 0])) if (xs > 0).any() else 1.0
        for a in axes[0]:
            a.set_xscale("symlog", linthresh=linthresh)
            a.set_xlim(min(0.0, float(xs.min())) - 0.3 * linthresh, float(xs.max()) * 2.0)
    return fig


def plot_fresh_data(
    histories: Mapping[str, Sequence[Sequence[Mapping[str, float]]]],
    *,
    optimal: float | None = None,
    behaviour: float | None = None,
    xlabel: str = "round of new data",
):
    """Over-estimation (left) and true return (right) of fitted Q-iteration per round of new data, per source.

    ``histories`` maps a source (``"own"``, ``"behaviour"``) to one history per seed from
    :func:`rl4llm.offline.fresh_data.fqi_with_more_data`.
    """
    names = {"own": "new episodes from its own greedy policy", "behaviour": "new episodes from the behaviour"}
    colors = {"own": METHOD_COLORS["online"], "behaviour": METHOD_COLORS["fqi"]}
    fig, axes = new_figure(2, width=5.0, height=3.6)
    for source, runs in histories.items():
        rounds = np.array([row["round"] for row in runs[0]], dtype=float)
        for ax, key in zip(axes[0], ("overestimation", "true")):
            band(
                ax,
                rounds,
                np.array([[row[key] for row in h] for h in runs]),
                label=names.get(source, source),
                color=colors.get(source),
            )
    axes[0, 0].axhline(0, color="black", lw=0.8, ls=":")
    label(axes[0, 0], xlabel, "predicted − true value", "Over-estimation")
    if optimal is not None:
        axes[0, 1].axhline(optimal, ls=":", color="black", label="optimal")
    if behaviour is not None:
        axes[0, 1].axhline(behaviour, ls="--", color=METHOD_COLORS["behaviour"], label="behaviour policy")
    label(axes[0, 1], xlabel, "expected discounted return", "True return of the greedy policy")
    for ax in axes[0]:
        ax.set_xticks(rounds)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    return fig
