"""Reward-model over-optimisation: the functional forms of Gao, Schulman & Hilton (2023) (chapter 5, section 4).

Optimising a learned proxy reward moves the policy away from the initial one; measure the distance as
:math:`d = \\sqrt{\\mathrm{KL}(\\pi \\| \\pi_{init})}`. Gao et al. found that the *gold* reward (relative to the
initial policy) follows

.. math::
    R_{bon}(d) = d\\,(\\alpha_{bon} - \\beta_{bon}\\, d) \\qquad\\text{(best-of-}n\\text{ sampling)},

    R_{RL}(d) = d\\,(\\alpha_{RL} - \\beta_{RL} \\log d) \\qquad\\text{(RL)},

both zero at :math:`d = 0`, rising at first and then falling once the optimiser exploits the proxy's errors; a
larger reward model shrinks :math:`\\beta`. Both forms are linear in :math:`(\\alpha, \\beta)`, so a least-squares fit
is a 2-by-2 linear solve.
"""

from __future__ import annotations

import numpy as np

from rl4llm.utils import check_choice

__all__ = ["gao_form", "fit_gao"]

_FORMS = ("bon", "rl")


def _features(d: np.ndarray, form: str) -> np.ndarray:
    """Columns multiplying (alpha, beta): ``[d, -d^2]`` for best-of-n, ``[d, -d log d]`` for RL."""
    if form == "bon":
        return np.stack([d, -d * d], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dlogd = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)  # d log d -> 0 as d -> 0
    return np.stack([d, -dlogd], axis=1)


def gao_form(d: np.ndarray | float, alpha: float, beta: float, form: str) -> np.ndarray:
    """:math:`d(\\alpha - \\beta d)` (``form="bon"``) or :math:`d(\\alpha - \\beta\\log d)` (``form="rl"``)."""
    check_choice("form", form, _FORMS)
    d = np.atleast_1d(np.asarray(d, dtype=float))
    if np.any(d < 0):
        raise ValueError("d must be >= 0 (it is a square root of a KL divergence)")
    return _features(d, form) @ np.array([alpha, beta], dtype=float)


def fit_gao(d: np.ndarray, gold: np.ndarray, form: str) -> tuple[float, float]:
    """Least-squares :math:`(\\alpha, \\beta)` of Gao et al.'s form ``form`` ("bon" or "rl") through the points.

    Minimises :math:`\\sum_i (R(d_i) - \\text{gold}_i)^2` over :math:`(\\alpha, \\beta)`; the form passes through the
    origin, so ``gold`` must be measured relative to the initial policy (the chapter's SFT-at-0 units are).
    """
    check_choice("form", form, _FORMS)
    d, gold = np.asarray(d, dtype=float).ravel(), np.asarray(gold, dtype=float).ravel()
    if d.shape != gold.shape:
        raise ValueError(f"d and gold must have the same length, got {d.size} and {gold.size}")
    if np.any(d < 0) or not np.all(np.isfinite(d)) or not np.all(np.isfinite(gold)):
        raise ValueError("d must be finite and >= 0 and gold finite")
    x = _features(d, form)
    keep = d > 0
    if np.count_nonzero(keep) < 2:
        raise ValueError("need at least two points with d > 0 to fit two parameters")
    coef, *_ = np.linalg.lstsq(x[keep], gold[keep], rcond=None)
    return float(coef[0]), float(coef[1])
