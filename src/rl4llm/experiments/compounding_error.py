"""``compounding-error``: behaviour cloning pays :math:`\\sim T^2\\epsilon`, DAgger :math:`\\sim T\\epsilon` (Ross et al. 2011).

For every horizon :math:`T`, a BC walker and a DAgger walker are *learned* on the tightrope
(:mod:`rl4llm.imitation.tightrope`: a linear softmax classifier, BC on expert demonstrations, DAgger with the expert
queried on the learner's own states) and their mean total cost is measured over ``n_rollouts`` fresh episodes.
The log-log slope of cost against horizon is fitted in two regimes:

* ``bc_slope`` / ``dagger_slope``: over the horizons with :math:`\\epsilon T \\le 1`, where BC's cost
  :math:`\\sum_t [1-(1-\\epsilon)^t] \\approx \\epsilon T^2/2` grows quadratically (slope near 2) and DAgger's
  :math:`\\approx \\epsilon T` linearly (slope 1);
* ``bc_slope_saturated`` / ``dagger_slope_saturated``: over the horizons with :math:`\\epsilon T \\ge 4`
  (reported when there are at least two), where BC has almost surely fallen and pays 1 per step, the most any
  walker can pay, so its cost is linear again (slope near 1).

Metrics also hold the measured and exact costs per horizon (``bc_cost_T16``, ``bc_exact_T16``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result
from rl4llm.imitation.analysis import exact_cost_curves
from rl4llm.imitation.plots import plot_compounding_error
from rl4llm.imitation.tightrope import bc_cost_exact, dagger_cost_exact, tightrope_costs
from rl4llm.utils import progress, set_torch_threads

NAME = "compounding-error"
SUMMARY = "tightrope: BC's cost grows like T^2 eps until eps*T ~ 1, DAgger's like T eps (Theorems 1.1 and 1.4)"

SATURATED = 4.0  # eps * T from which BC's cost is counted as saturated


@dataclass
class Config:
    """Defaults are what the book runs (a few seconds)."""

    horizons: tuple[int, ...] = param(
        (2, 4, 8, 16, 32, 64, 128, 256, 512),
        low=1,
        help="horizons T, strictly increasing, at least two with eps * T <= 1",
    )
    eps: float = param(
        0.02, low=0.0, high=0.5, low_inclusive=False, high_inclusive=False, help="the learner's per-step error rate"
    )
    n_rollouts: int = param(4000, low=1, help="rollouts per horizon and learner")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)
        if len(self.horizons) < 2:
            raise ConfigError("horizons", f"horizons must be a sequence of at least two ints, got {self.horizons!r}")
        for h in self.horizons:
            if isinstance(h, bool) or not isinstance(h, (int, np.integer)):
                raise ConfigError("horizons", f"horizons must be ints >= 1, got {self.horizons!r}")
        if list(self.horizons) != sorted(set(self.horizons)):
            raise ConfigError("horizons", f"horizons must be strictly increasing, got {self.horizons!r}")
        self.horizons = tuple(int(h) for h in self.horizons)
        quadratic = [h for h in self.horizons if self.eps * h <= 1]
        if len(quadratic) < 2:
            raise ConfigError(
                "horizons",
                f"horizons must include at least two values with eps * T <= 1 "
                f"(T <= {1 / self.eps:g}) to fit the slope of the quadratic regime; "
                f"got {self.horizons!r} with eps={self.eps:g}",
            )


def loglog_slope(x, y) -> float:
    """Least-squares slope of :math:`\\log y` against :math:`\\log x`."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("loglog_slope needs at least two points with positive x and y")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def run(config: Config) -> Result:
    set_torch_threads(1)
    rows = []
    metrics: dict[str, float] = {"eps": config.eps}
    for h in progress(config.horizons, desc="horizons"):
        bc = tightrope_costs(h, config.eps, "bc", n_rollouts=config.n_rollouts, seed=config.seed)
        dg = tightrope_costs(h, config.eps, "dagger", n_rollouts=config.n_rollouts, seed=config.seed)
        row = {
            "horizon": h,
            "eps_T": config.eps * h,
            "bc_cost": bc,
            "dagger_cost": dg,
            "bc_exact": bc_cost_exact(h, config.eps),
            "dagger_exact": dagger_cost_exact(h, config.eps),
            "bound_T2eps": config.eps * h * h,
            "bound_Teps": config.eps * h,
        }
        rows.append(row)
        for k in ("bc_cost", "dagger_cost"):
            metrics[f"{k}_T{h}"] = round(row[k], 5)
        metrics[f"bc_exact_T{h}"] = round(row["bc_exact"], 5)
        metrics[f"dagger_exact_T{h}"] = round(row["dagger_exact"], 5)

    def fit(sel, key):
        pts = [(r["horizon"], r[key]) for r in rows if sel(r["eps_T"]) and r[key] > 0]
        return loglog_slope(*zip(*pts)) if len(pts) >= 2 else None

    metrics["bc_slope"] = round(fit(lambda e: e <= 1, "bc_cost"), 4)
    metrics["dagger_slope"] = round(fit(lambda e: e <= 1, "dagger_cost"), 4)
    bc_sat, dg_sat = fit(lambda e: e >= SATURATED, "bc_cost"), fit(lambda e: e >= SATURATED, "dagger_cost")
    if bc_sat is not None:
        metrics["bc_slope_saturated"] = round(bc_sat, 4)
        metrics["dagger_slope_saturated"] = round(dg_sat, 4)
    longest = rows[-1]
    metrics["cost_ratio_longest"] = round(longest["bc_cost"] / max(longest["dagger_cost"], 1e-12), 4)
    result = Result(metrics=metrics, curves=rows)
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """BC's and DAgger's cost against the horizon (log-log), simulated and exact, with the fitted slopes."""
    exact = exact_cost_curves(config.eps, max(int(r["horizon"]) for r in result.curves))
    return plot_compounding_error(
        result.curves, config.eps, exact, result.metrics["bc_slope"], result.metrics["dagger_slope"]
    )
