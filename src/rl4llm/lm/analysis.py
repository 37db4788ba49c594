"""The numbers behind the GPT-2 substrate's figures (book section 1.4): the shipped checkpoint's training log,
the gold reward of grammar samples, and how the sampling temperature trades gold reward against grammaticality.

Each function computes (sampling where it must); :mod:`rl4llm.lm.plots` draws what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rl4llm.lm.language import gold_rewards, parse_rate, sample_texts
from rl4llm.utils import check_positive_int, check_range

__all__ = ["training_log", "gold_distribution", "temperature_sweep"]


def training_log(folder: str | Path | None = None) -> dict:
    """The ``training_log.json`` of a checkpoint folder (default: the shipped tiny GPT-2)."""
    from rl4llm.lm.model import CHECKPOINT_DIR

    return json.loads((Path(folder or CHECKPOINT_DIR) / "training_log.json").read_text())


def gold_distribution(
    positivities: Sequence[float] = (0.1, 0.5, 0.9), n: int = 2000, seed: int = 0
) -> dict[float, np.ndarray]:
    """The gold reward of ``n`` grammar samples for each ``positivity`` (sample ``i`` of the setting at index
    ``k`` drawn from ``np.random.default_rng([seed, k])``): ``{positivity: [n]}``."""
    check_positive_int("n", n)
    samples = {}
    for i, p in enumerate(positivities):
        check_range("positivity", p, 0.0, 1.0)
        samples[p] = gold_rewards(sample_texts(n, np.random.default_rng([seed, i]), positivity=p))
    return samples


def temperature_sweep(
    model, tokenizer, temperatures: Sequence[float], n: int = 300, seed: int = 0
) -> list[dict[str, float]]:
    """For each sampling temperature, the mean gold reward, parse rate and length of ``n`` samples."""
    from rl4llm.lm.generation import generate_texts

    rows = []
    for tau in temperatures:
        check_range("temperature", tau, 0.0, None, low_inclusive=False)
        texts = generate_texts(model, tokenizer, n, temperature=float(tau), seed=seed)
        rows.append(
            {
                "temperature": float(tau),
                "gold": float(gold_rewards(texts).mean()),
                "parse_rate": parse_rate(texts),
                "length": float(np.mean([len(t.split()) for t in texts])),
            }
        )
    return rows
