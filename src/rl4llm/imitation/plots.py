"""Figures of chapter 3 (imitation learning): compounding error on the tightrope.

* :func:`plot_per_step_cost`: the probability of paying at step :math:`t` within one episode, for a learned BC
  walker and a learned DAgger walker, beside the exact :math:`1-(1-\\epsilon)^t` and :math:`\\epsilon p_t`;
* :func:`plot_compounding_error`: measured total costs of BC and DAgger against the horizon, beside the exact
  expectations and the bounds :math:`T^2\\epsilon` (Theorem 1.1) and :math:`T\\epsilon` (Theorem 1.4);
* :func:`plot_cost_at` (the widget's drawing): the exact cost curves for one :math:`\\epsilon` with the measured
  costs of learned walkers at one horizon;
* :func:`plot_eps_sweep` (the static figure beside the widget): the exact cost curves for several :math:`\\epsilon`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl4llm.imitation.tightrope import (
    bc_cost_exact,
    dagger_cost_exact,
    policy_table,
    simulate_tightrope,
    tightrope_costs,
    train_tightrope_learner,
)
from rl4llm.plotting import COLORS, PALETTE, label, new_figure
from rl4llm.utils import check_positive_int, check_range

__all__ = ["exact_cost_curves", "plot_per_step_cost", "plot_compounding_error", "plot_cost_at", "plot_eps_sweep"]


def exact_cost_curves(eps: float, t_max: int, n_points: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizons ``T`` (log-spaced integers from 1 to ``t_max``) and the exact BC and DAgger costs at each."""
    check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
    t_max = check_positive_int("t_max", t_max)
    horizons = np.unique(np.round(np.logspace(0, np.log10(t_max), n_points)).astype(int))
    bc = np.array([bc_cost_exact(int(t), eps) for t in horizons])
    dagger = np.array([dagger_cost_exact(int(t), eps) for t in horizons])
    return horizons, bc, dagger


def plot_per_step_cost(horizon: int = 60, eps: float = 0.05, n_rollouts: int = 20000, seed: int = 0):
    """Mean 0-1 cost at each step :math:`t` of an episode for a BC and a DAgger walker (both learned at this
    horizon and :math:`\\epsilon`), with the exact :math:`1-(1-\\epsilon)^t` (BC) and :math:`\\epsilon p_t`
    (DAgger, :math:`p_{t+1} = 1 - \\epsilon p_t`)."""
    horizon = check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    t = np.arange(1, horizon + 1)
    fig, ax = new_figure(width=6.4, height=3.8)
    p, dagger_exact = 1.0, []
    for _ in t:
        dagger_exact.append(eps * p)
        p = 1 - eps * p
    for i, (method, exact, name) in enumerate([("bc", 1 - (1 - eps) ** t, "BC"),
                                               ("dagger", np.array(dagger_exact), "DAgger")]):
        table = policy_table(train_tightrope_learner(horizon, eps, method, seed))
        costs = simulate_tightrope(table, horizon, eps, n_rollouts, np.random.default_rng([seed, 2]), per_step=True)
        ax.plot(t, costs.mean(0), "o", ms=3, color=COLORS[i], label=f"{name} walker, measured")
        ax.plot(t, exact, color=COLORS[i], lw=1.2, label=f"{name}, exact")
    ax.axhline(eps, color=PALETTE["grey"], ls="--", lw=1, label=r"$\epsilon$: the learner's error on the rope")
    ax.set_ylim(0, 1.02)
    label(ax, "step t of the episode", "P(the walker pays at step t)",
          rf"Cost per step, $\epsilon$ = {eps:g} ({n_rollouts:,} episodes)")
    ax.legend(fontsize=8, loc="center right")
    return fig


def _reference_lines(ax, eps: float, t: np.ndarray) -> None:
    ax.plot(t, eps * t.astype(float) ** 2, ls="--", lw=1, color=COLORS[0], label=r"bound $T^2\epsilon$ (Thm 1.1)")
    ax.plot(t, eps * t.astype(float), ls="--", lw=1, color=COLORS[1], label=r"bound $T\epsilon$ (Thm 1.4)")
    ax.plot(t, t.astype(float), ls=":", lw=1.2, color=PALETTE["grey"], label="cost 1 per step (the most)")
    if eps > 0:
        ax.axvline(1 / eps, color=PALETTE["black"], lw=0.8, alpha=0.5)
        ax.annotate(r"$\epsilon T = 1$", (1 / eps, ax.get_ylim()[0] if ax.get_ylim()[0] > 0 else 1e-2),
                    xytext=(3, 4), textcoords="offset points", fontsize=8)


def plot_compounding_error(rows: Sequence[dict], eps: float, bc_slope: float | None = None,
                           dagger_slope: float | None = None):
    """Log-log: measured mean total cost (markers) of BC and DAgger per horizon, the exact expectations (thin
    lines), the two bounds (dashed) and the most any walker can pay (dotted); ``rows`` as in the
    ``compounding-error`` experiment's curves (``horizon``, ``bc_cost``, ``dagger_cost``)."""
    horizons = np.array([r["horizon"] for r in rows], dtype=float)
    fig, ax = new_figure(width=6.4, height=4.3)
    t, bc, dg = exact_cost_curves(eps, int(horizons.max()))
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
    label(ax, "horizon T (log scale)", "mean total cost J (log scale)",
          rf"Compounding error on the tightrope, $\epsilon$ = {eps:g}")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_cost_at(horizon: int, eps: float, n_rollouts: int = 2000, seed: int = 0):
    """The widget's figure: exact BC and DAgger cost curves for ``eps`` up to a few times ``horizon``, with the
    measured costs of a BC and a DAgger walker trained and run at ``horizon`` (markers)."""
    horizon = check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    t_max = max(4 * horizon, int(4 / eps), 10)
    t, bc, dg = exact_cost_curves(eps, t_max)
    bc_m = tightrope_costs(horizon, eps, "bc", n_rollouts=n_rollouts, seed=seed)
    dg_m = tightrope_costs(horizon, eps, "dagger", n_rollouts=n_rollouts, seed=seed)
    fig, ax = new_figure(width=7.6, height=4.1)
    ax.plot(t, bc, color=COLORS[0], label="BC, exact")
    ax.plot(t, dg, color=COLORS[1], label="DAgger, exact")
    ax.plot([horizon], [bc_m], "o", ms=8, color=COLORS[0], label=f"BC, measured at T = {horizon}: {bc_m:.2f}")
    ax.plot([horizon], [dg_m], "s", ms=8, color=COLORS[1], label=f"DAgger, measured: {dg_m:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(min(dg[0], eps) / 2, t_max * 2)
    _reference_lines(ax, eps, t)
    label(ax, "horizon T (log scale)", "mean total cost J (log scale)",
          rf"$\epsilon$ = {eps:g}: BC pays {bc_m / max(dg_m, 1e-12):.1f}× DAgger's cost at T = {horizon}")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def plot_eps_sweep(eps_values: Sequence[float] = (0.005, 0.02, 0.08), t_max: int = 1000):
    """Exact BC (solid) and DAgger (dashed) cost per step, :math:`J/T`, against the horizon for several
    :math:`\\epsilon`: BC's per-step cost climbs towards 1 once :math:`\\epsilon T` passes 1, DAgger's stays
    near :math:`\\epsilon`."""
    fig, ax = new_figure(width=7.4, height=4.1)
    for i, eps in enumerate(eps_values):
        t, bc, dg = exact_cost_curves(eps, t_max)
        color = COLORS[i % len(COLORS)]
        ax.plot(t, bc / t, color=color, label=rf"BC, $\epsilon$ = {eps:g}")
        ax.plot(t, dg / t, color=color, ls="--", label=rf"DAgger, $\epsilon$ = {eps:g}")
        ax.plot([1 / eps], [bc_cost_exact(int(round(1 / eps)), eps) / round(1 / eps)], "o", color=color, ms=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "horizon T (log scale)", "cost per step J / T (log scale)",
          r"Cost per step; dots mark $\epsilon T = 1$")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig
