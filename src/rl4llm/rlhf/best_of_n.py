"""Best-of-n sampling: RL-free optimisation of a reward model at inference time (chapter 5, section 4).

Draw :math:`n` responses from the SFT policy and return the one the reward model likes best. Its KL from the SFT
policy has a closed form (Stiennon et al. 2020, appendix; Gao et al. 2023):

.. math:: \\mathrm{KL}_{bon}(n) = \\log n - \\frac{n-1}{n}.

Expected rewards of best-of-n are estimated from one pool of :math:`M` samples without resampling: sort the pool by
proxy score; when :math:`n` samples are drawn without replacement from the pool, the one of proxy rank :math:`i`
(1 = lowest) is the best with probability :math:`\\binom{i-1}{n-1} / \\binom{M}{n}`, so

.. math:: \\hat{\\mathbb E}[g(y_{bon})] = \\sum_{i=n}^{M} \\frac{\\binom{i-1}{n-1}}{\\binom{M}{n}}\\, g(y_{(i)}),

an unbiased estimate that uses every sample of the pool for every :math:`n \\le M`.
"""

from __future__ import annotations

import math

import numpy as np

from rl4llm.utils import check_positive_int

__all__ = ["bon_kl", "best_of_n_weights", "best_of_n_expectation", "best_of_n_select", "best_of_n_curve"]


def bon_kl(n: int) -> float:
    """KL(best-of-n ‖ base) in nats: :math:`\\log n - (n-1)/n`.

    Exact when no response has positive probability (continuous outputs); for text, where the same response
    can be drawn twice, it is an upper bound on the true KL.
    """
    n = check_positive_int("n", n)
    return math.log(n) - (n - 1) / n


def best_of_n_weights(pool_size: int, n: int) -> np.ndarray:
    """Probability that the sample of proxy rank ``i`` (ascending, 0-based) is the best of ``n`` drawn from the pool.

    :math:`w_i = \\binom{i}{n-1} / \\binom{M}{n}` for 0-based rank :math:`i` (zero for :math:`i < n-1`); sums to 1.
    """
    pool_size = check_positive_int("pool_size", pool_size)
    n = check_positive_int("n", n)
    if n > pool_size:
        raise ValueError(f"n must be <= pool_size ({pool_size}), got {n}")
    i = np.arange(pool_size)
    log_w = np.full(pool_size, -np.inf)
    ok = i >= n - 1
    # log C(i, n-1) - log C(M, n) with lgamma, stable for large pools
    lg = np.vectorize(math.lgamma)
    log_w[ok] = (lg(i[ok] + 1) - lg(n) - lg(i[ok] - n + 2)) - (
        math.lgamma(pool_size + 1) - math.lgamma(n + 1) - math.lgamma(pool_size - n + 1)
    )
    w = np.exp(log_w)
    return w / w.sum()


def best_of_n_expectation(proxy: np.ndarray, values: np.ndarray, n: int) -> float:
    """Expected ``values`` of the best-of-``n`` response (best by ``proxy``), estimated from one pool.

    The average of ``values`` at the proxy-argmax over all :math:`\\binom{M}{n}` subsets of the pool, computed
    in closed form with :func:`best_of_n_weights` (unbiased for :math:`n` independent samples).
    """
    proxy, values = np.asarray(proxy, dtype=float), np.asarray(values, dtype=float)
    if proxy.shape != values.shape or proxy.ndim != 1:
        raise ValueError("proxy and values must be 1-D arrays of the same length")
    if not (np.all(np.isfinite(proxy)) and np.all(np.isfinite(values))):
        raise ValueError("proxy and values must be finite")
    order = np.argsort(proxy, kind="stable")
    return float(best_of_n_weights(proxy.size, n) @ values[order])


def best_of_n_select(proxy: np.ndarray, n: int) -> np.ndarray:
    """Indices of the best of each consecutive group of ``n`` (the literal algorithm, for demonstrations)."""
    proxy = np.asarray(proxy, dtype=float)
    n = check_positive_int("n", n)
    groups = proxy.size // n
    if groups == 0:
        raise ValueError(f"need at least n={n} samples, got {proxy.size}")
    p = proxy[: groups * n].reshape(groups, n)
    return np.argmax(p, axis=1) + np.arange(groups) * n


def best_of_n_curve(proxy: np.ndarray, gold: np.ndarray, ns: list[int] | tuple[int, ...]) -> list[dict[str, float]]:
    """For each ``n``: the analytic KL, and the expected proxy and gold reward of best-of-``n`` from one pool.

    ``proxy`` and ``gold`` score the same pool of samples of the base policy; rows hold ``n``, ``kl``, ``proxy``,
    ``gold``.
    """
    if len(ns) == 0:
        raise ValueError("ns must not be empty")
    rows = []
    for n in ns:
        rows.append(
            {
                "n": int(n),
                "kl": bon_kl(n),
                "proxy": best_of_n_expectation(proxy, proxy, n),
                "gold": best_of_n_expectation(proxy, gold, n),
            }
        )
    return rows
