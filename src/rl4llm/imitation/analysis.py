"""The numbers behind chapter 3's tightrope figures: exact cost curves, per-step costs of learned walkers, and
measured costs at one horizon.

Each function computes (training walkers where it must); :mod:`rl4llm.imitation.plots` draws what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl4llm.imitation.tightrope import (
    bc_cost_exact,
    dagger_cost_exact,
    simulate_tightrope,
    tightrope_costs,
    train_tightrope_learner,
    walker_table,
)
from rl4llm.utils import check_positive_int, check_range

__all__ = ["exact_cost_curves", "per_step_costs", "costs_at_horizon", "eps_sweep_curves"]


def exact_cost_curves(eps: float, t_max: int, n_points: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizons ``T`` (log-spaced integers from 1 to ``t_max``) and the exact BC and DAgger costs at each."""
    check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
    t_max = check_positive_int("t_max", t_max)
    horizons = np.unique(np.round(np.logspace(0, np.log10(t_max), n_points)).astype(int))
    bc = np.array([bc_cost_exact(int(t), eps) for t in horizons])
    dagger = np.array([dagger_cost_exact(int(t), eps) for t in horizons])
    return horizons, bc, dagger


def per_step_costs(horizon: int = 60, eps: float = 0.05, n_rollouts: int = 20000, seed: int = 0) -> dict:
    """Mean 0-1 cost at each step :math:`t` of an episode for a BC and a DAgger walker (both learned at this
    horizon and :math:`\\epsilon`), with the exact :math:`1-(1-\\epsilon)^t` (BC) and :math:`\\epsilon p_t`
    (DAgger, :math:`p_{t+1} = 1 - \\epsilon p_t`).

    Returns ``{"t", "eps", "n_rollouts", "measured": {"BC": [T], "DAgger": [T]}, "exact": {...}}``.
    """
    horizon = check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    t = np.arange(1, horizon + 1)
    p, dagger_exact = 1.0, []
    for _ in t:
        dagger_exact.append(eps * p)
        p = 1 - eps * p
    measured, exact = {}, {}
    for method, exact_cost, name in [("bc", 1 - (1 - eps) ** t, "BC"), ("dagger", np.array(dagger_exact), "DAgger")]:
        table = walker_table(train_tightrope_learner(horizon, eps, method, seed))
        costs = simulate_tightrope(table, horizon, eps, n_rollouts, np.random.default_rng([seed, 2]), per_step=True)
        measured[name] = costs.mean(0)
        exact[name] = exact_cost
    return {"t": t, "eps": eps, "n_rollouts": n_rollouts, "measured": measured, "exact": exact}


def costs_at_horizon(horizon: int, eps: float, n_rollouts: int = 2000, seed: int = 0) -> dict:
    """The widget's numbers: exact BC and DAgger cost curves for ``eps`` up to a few times ``horizon``, and the
    measured mean costs of a BC and a DAgger walker trained and run at ``horizon``.

    Returns ``{"horizon", "eps", "t_max", "t", "bc", "dagger", "bc_measured", "dagger_measured"}``.
    """
    horizon = check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    t_max = max(4 * horizon, int(4 / eps), 10)
    t, bc, dg = exact_cost_curves(eps, t_max)
    bc_m = tightrope_costs(horizon, eps, "bc", n_rollouts=n_rollouts, seed=seed)
    dg_m = tightrope_costs(horizon, eps, "dagger", n_rollouts=n_rollouts, seed=seed)
    return {
        "horizon": horizon,
        "eps": eps,
        "t_max": t_max,
        "t": t,
        "bc": bc,
        "dagger": dg,
        "bc_measured": bc_m,
        "dagger_measured": dg_m,
    }


def eps_sweep_curves(eps_values: Sequence[float] = (0.005, 0.02, 0.08), t_max: int = 1000) -> list[dict]:
    """For each :math:`\\epsilon`: the exact cost curves (:func:`exact_cost_curves`) and the BC cost per step at
    the horizon :math:`T = \\text{round}(1/\\epsilon)`, where :math:`\\epsilon T = 1`.

    Returns one dict per value: ``{"eps", "t", "bc", "dagger", "knee_t", "knee_bc_per_step"}``.
    """
    out = []
    for eps in eps_values:
        t, bc, dg = exact_cost_curves(eps, t_max)
        knee = round(1 / eps)
        out.append(
            {
                "eps": eps,
                "t": t,
                "bc": bc,
                "dagger": dg,
                "knee_t": 1 / eps,
                "knee_bc_per_step": bc_cost_exact(int(knee), eps) / knee,
            }
        )
    return out
