"""Figures of chapter 3 (imitation learning): compounding error on the tightrope.

* :func:`plot_per_step_cost`: the probability of paying at step :math:`t` within one episode, for a learned BC
  walker and a learned DAgger walker, beside the exact :math:`1-(1-\\epsilon)^t` and :math:`\\epsilon p_t`;
* :func:`plot_compounding_error`: measured total costs of BC and DAgger against the horizon, beside the exact
  expectations and the bounds :math:`T^2\\epsilon` (Theorem 1.1) and :math:`T\\epsilon` (Theorem 1.4);
* :func:`plot_cost_at` (the widget's drawing): the exact cost curves for one :math:`\\epsilon` with the measured
  costs of learned walkers at one horizon;
* :func:`plot_eps_sweep` (the static figure beside the widget): the exact cost curves for several :math:`\\epsilon`;
* :func:`plot_validity_curves`: how long generated texts stay inside the language (section 3.3, exposure bias).

Every function only draws; the numbers come from :mod:`rl4llm.imitation.analysis` or the ``compounding-error``
experiment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from rl4llm.plotting import COLORS, PALETTE, label, new_figure
from rl4llm.utils import check_range

if TYPE_CHECKING:
    from rl4llm.imitation.exposure import ValidityCurves

__all__ = ["plot_per_step_cost", "plot_compounding_error", "plot_cost_at", "plot_eps_sweep", "plot_validity_curves"]


def plot_per_step_cost(costs: dict):
    """Mean 0-1 cost at each step :math:`t` of an episode for a BC and a DAgger walker, with the exact curves
    (``costs`` from :func:`rl4llm.imitation.analysis.per_step_costs`)."""
    t, eps, n_rollouts = costs["t"], costs["eps"], costs["n_rollouts"]
    fig, ax = new_figure(width=6.4, height=3.8)
    for i, name in enumerate(("BC", "DAgger")):
        ax.plot(t, costs["measured"][name], "o", ms=3, color=COLORS[i], label=f"{name} walker, measured")
        ax.plot(t, costs["exact"][name], color=COLORS[i], lw=1.2, label=f"{name}, exact")
    ax.axhline(eps, color=PALETTE["grey"], ls="--", lw=1, label=r"$\epsilon$: the learner's error on the rope")
    ax.set_ylim(0, 1.02)
    label(
        ax,
        "step t of the episode",
        "P(the walker pays at step t)",
        rf"Cost per step, $\epsilon$ = {eps:g} ({n_rollouts:,} episodes)",
    )
    ax.legend(fontsize=8, loc="center right")
    return fig


def _reference_lines(ax, eps: float, t: np.ndarray) -> None:
    ax.plot(t, eps * t.astype(float) ** 2, ls="--", lw=1, color=COLORS[0], label=r"bound $T^2\epsilon$ (Thm 1.1)")
    ax.plot(t, eps * t.astype(float), ls="--", lw=1, color=COLORS[1], label=r"bound $T\epsilon$ (Thm 1.4)")
    ax.plot(t, t.astype(float), ls=":", lw=1.2, color=PALETTE["grey"], label="cost 1 per step (the most)")
    if eps > 0:
        ax.axvline(1 / eps, color=PALETTE["black"], lw=0.8, alpha=0.5)
        ax.annotate(
            r"$\epsilon T = 1$",
            (1 / eps, ax.get_ylim()[0] if ax.get_ylim()[0] > 0 else 1e-2),
            xytext=(3, 4),
            textcoords="offset points",
            fontsize=8,
        )


def plot_compounding_error(
    rows: Sequence[dict],
    eps: float,
    exact: tuple[np.ndarray, np.ndarray, np.ndarray],
    bc_slope: float | None = None,
    dagger_slope: float | None = None,
):
    """Log-log: measured mean total cost (markers) of BC and DAgger per horizon, the exact expectations (thin
    lines), the two bounds (dashed) and the most any walker can pay (dotted); ``rows`` as in the
    ``compounding-error`` experiment's curves (``horizon``, ``bc_cost``, ``dagger_cost``), ``exact`` the curves
    ``(T, bc, dagger)`` of :func:`rl4llm.imitation.analysis.exact_cost_curves` up to the longest horizon."""
    horizons = np.array([r["horizon"] for r in rows], dtype=float)
    fig, ax = new_figure(width=6.4, height=4.3)
    t, bc, dg = exact
    ax.plot(t, bc, color=COLORS[0], lw=1, alpha=0.7, label="BC, exact expectation")
    ax.plot(t, dg, color=COLORS[1], lw=1, alpha=0.7, label="DAgger, exact expectation")
    bc_name = "BC, measured" + (f" (slope {bc_slope:.2f} while εT ≤ 1)" if bc_slope is not None else "")
    dg_name = "DAgger, measured" + (f" (slope {dagger_slope:.2f})" if dagger_slope is not None else "")
    ax.plot(horizons, [r["bc_cost"] for r in rows], "o", color=COLORS[0], label=bc_name)
    ax.plot(horizons, [r["dagger_cost"] for r in rows], "s", color=COLORS[1], label=dg_name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo = min(min(r["dagger_cost"] for r in rows if r["dagger_cost"] > 0), eps) / 2
    ax.set_ylim(lo, horizons.max() ** 2 * eps * 2)
    _reference_lines(ax, eps, t)
    label(
        ax,
        "horizon T (log scale)",
        "mean total cost J (log scale)",
        rf"Compounding error on the tightrope, $\epsilon$ = {eps:g}",
    )
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_cost_at(costs: dict):
    """The widget's figure: exact BC and DAgger cost curves for one :math:`\\epsilon` up to a few times the
    horizon, with the measured costs of a BC and a DAgger walker trained and run at that horizon (markers);
    ``costs`` from :func:`rl4llm.imitation.analysis.costs_at_horizon`."""
    horizon, eps, t_max = costs["horizon"], costs["eps"], costs["t_max"]
    t, bc, dg = costs["t"], costs["bc"], costs["dagger"]
    bc_m, dg_m = costs["bc_measured"], costs["dagger_measured"]
    fig, ax = new_figure(width=7.6, height=4.1)
    ax.plot(t, bc, color=COLORS[0], label="BC, exact")
    ax.plot(t, dg, color=COLORS[1], label="DAgger, exact")
    ax.plot([horizon], [bc_m], "o", ms=8, color=COLORS[0], label=f"BC, measured at T = {horizon}: {bc_m:.2f}")
    ax.plot([horizon], [dg_m], "s", ms=8, color=COLORS[1], label=f"DAgger, measured: {dg_m:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(min(dg[0], eps) / 2, t_max * 2)
    _reference_lines(ax, eps, t)
    label(
        ax,
        "horizon T (log scale)",
        "mean total cost J (log scale)",
        rf"$\epsilon$ = {eps:g}: BC pays {bc_m / max(dg_m, 1e-12):.1f}× DAgger's cost at T = {horizon}",
    )
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def plot_eps_sweep(curves: Sequence[dict]):
    """Exact BC (solid) and DAgger (dashed) cost per step, :math:`J/T`, against the horizon for several
    :math:`\\epsilon` (``curves`` from :func:`rl4llm.imitation.analysis.eps_sweep_curves`): BC's per-step cost
    climbs towards 1 once :math:`\\epsilon T` passes 1, DAgger's stays near :math:`\\epsilon`."""
    fig, ax = new_figure(width=7.4, height=4.1)
    for i, c in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        ax.plot(c["t"], c["bc"] / c["t"], color=color, label=rf"BC, $\epsilon$ = {c['eps']:g}")
        ax.plot(c["t"], c["dagger"] / c["t"], color=color, ls="--", label=rf"DAgger, $\epsilon$ = {c['eps']:g}")
        ax.plot([c["knee_t"]], [c["knee_bc_per_step"]], "o", color=color, ms=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "horizon T (log scale)", "cost per step J / T (log scale)", r"Cost per step; dots mark $\epsilon T = 1$")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def plot_validity_curves(
    curves: Mapping[str, ValidityCurves], *, slip: float | None = None, title: str | None = None, axes=None
):
    """Two panels against the generation length: the intact rate (solid) and the inside rate (dotted), and the
    cumulative off-language cost; one colour per learner (``curves`` maps a legend label to its curves).

    ``slip`` (the learners' per-word slip probability :math:`\\epsilon`, if any) adds the reference line
    :math:`\\epsilon t` to the cost panel: the cost of a learner that slips but ends a broken review at once.
    ``axes``: two matplotlib axes to draw into (default: a new figure). Returns the figure.
    """
    from matplotlib.lines import Line2D

    if not curves:
        raise ValueError("curves must hold at least one learner")
    if axes is None:
        fig, grid = new_figure(ncols=2, width=4.8, height=3.5)
        ax1, ax2 = grid[0]
    else:
        ax1, ax2 = axes
        fig = ax1.figure
    for i, (name, c) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        t = np.arange(1, c.horizon + 1)
        ax1.plot(t, 100 * c.intact, color=color, label=name)
        ax1.plot(t, 100 * c.inside, color=color, ls=":")
        ax2.plot(t, c.cumulative_cost, color=color, label=name)
    if slip is not None:
        check_range("slip", slip, 0.0, 1.0)
        t = np.arange(1, next(iter(curves.values())).horizon + 1)
        ax2.plot(t, slip * t, color=COLORS[7], ls="--", lw=1.2, label=rf"$\epsilon t$, $\epsilon$ = {slip:g}")
    ax1.set_ylim(0, 101)
    label(ax1, "generated words t", "samples inside the language (%)", "Staying inside the language")
    label(ax2, "generated words t", "off-language words among the first t", "Cumulative cost")
    handles, names = ax1.get_legend_handles_labels()
    handles += [
        Line2D([], [], color=COLORS[7], label="solid: current review intact"),
        Line2D([], [], color=COLORS[7], ls=":", label="dotted: whole text inside"),
    ]
    ax1.legend(handles=handles, fontsize=8, loc="lower left")
    ax2.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
