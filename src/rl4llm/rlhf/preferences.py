"""Synthetic preference labelling: a noisy Bradley-Terry "human" over the gold reward (chapter 5, section 1).

For a pair of responses :math:`(y_1, y_2)` sampled from the SFT policy, the simulated labeller prefers
:math:`y_1` with probability

.. math:: P(y_1 \\succ y_2) = \\varepsilon + (1 - 2\\varepsilon)\\,\\sigma\\Big(\\frac{g(y_1) - g(y_2)}{\\tau}\\Big),

where :math:`g` is the language's exact gold reward, :math:`\\tau` the labeller's temperature (``tau -> 0`` is a
perfect judge, large ``tau`` a coin flip) and :math:`\\varepsilon` a label-noise rate (the probability of a
careless flip). This is the generative model that the Bradley-Terry reward model assumes
{Bradley & Terry 1952; Christiano et al. 2017}, plus noise it does not.
"""

from __future__ import annotations

import numpy as np

from rl4llm.utils import check_range

__all__ = ["preference_probability", "label_preferences"]


def preference_probability(
    gold_a: np.ndarray, gold_b: np.ndarray, temperature: float, label_noise: float = 0.0
) -> np.ndarray:
    """:math:`P(a \\succ b)` under the noisy Bradley-Terry labeller (formula in the module docstring)."""
    temperature = check_range("temperature", temperature, 0.0, None, low_inclusive=False)
    label_noise = check_range("label_noise", label_noise, 0.0, 0.5)
    gold_a, gold_b = np.asarray(gold_a, dtype=float), np.asarray(gold_b, dtype=float)
    if gold_a.shape != gold_b.shape:
        raise ValueError(f"gold_a and gold_b must have the same shape, got {gold_a.shape} and {gold_b.shape}")
    z = np.clip((gold_a - gold_b) / temperature, -50.0, 50.0)
    return label_noise + (1.0 - 2.0 * label_noise) / (1.0 + np.exp(-z))


def label_preferences(
    gold_a: np.ndarray, gold_b: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, label_noise: float = 0.0
) -> np.ndarray:
    """Sample labels: a boolean array, True where the labeller prefers ``a`` to ``b``.

    Label ``i`` is True with probability :func:`preference_probability` ``(gold_a[i], gold_b[i])``, independently.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    p = preference_probability(gold_a, gold_b, temperature, label_noise)
    return rng.random(p.shape) < p
