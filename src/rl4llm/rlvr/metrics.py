"""pass@k: the chance that at least one of k samples is correct, estimated without bias (chapter 7, section 4).

Chen et al. (2021) draw :math:`n \\ge k` samples per problem, count the :math:`c` correct ones, and estimate

.. math:: \\text{pass@}k = 1 - \\frac{\\binom{n-c}{k}}{\\binom{n}{k}},

the probability that a random subset of :math:`k` of the :math:`n` samples holds at least one correct sample. The
ratio of binomials is computed as the product :math:`\\prod_{i=n-c+1}^{n} (1 - k/i)`, which never forms the huge
binomial coefficients.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pass_at_k"]


def _int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for ``n`` samples of which ``c`` are correct: :math:`1 - \\binom{n-c}{k} / \\binom{n}{k}`.

    Raises ``ValueError`` unless ``n >= 1``, ``0 <= c <= n`` and ``1 <= k <= n``.
    """
    n, c, k = _int("n", n), _int("c", c), _int("k", k)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n={n}], got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    # BEGIN SOLUTION
    if n - c < k:  # every subset of k samples holds a correct one
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(1.0 - np.prod(1.0 - k / i))
    # END SOLUTION
