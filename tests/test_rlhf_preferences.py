"""Chapter 5 synthetic labeller, best-of-n estimators and Gao et al.'s over-optimisation forms."""

import itertools
import math

import numpy as np
import pytest

from rl4llm.rlhf.best_of_n import best_of_n_curve, best_of_n_expectation, best_of_n_select, best_of_n_weights, bon_kl
from rl4llm.rlhf.overoptimization import fit_gao, gao_form
from rl4llm.rlhf.preferences import label_preferences, preference_probability


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_preference_probability_hand_computed():
    p = preference_probability(
        np.array([0.5, 0.0, -1.0]), np.array([0.25, 0.0, 0.5]), temperature=0.1, label_noise=0.05
    )
    expected = [0.05 + 0.9 * _sig(2.5), 0.5, 0.05 + 0.9 * _sig(-15.0)]
    assert p == pytest.approx(expected, rel=1e-9)
    # no noise, infinite gap: certain
    assert preference_probability(np.array([100.0]), np.array([0.0]), 0.1)[0] == pytest.approx(1.0)


def test_labels_follow_the_bradley_terry_probabilities():
    rng = np.random.default_rng(0)
    gold_a = np.repeat([0.75, 0.25, 0.0, -0.5], 20_000)
    gold_b = np.repeat([0.5, 0.5, 0.0, 0.5], 20_000)
    labels = label_preferences(gold_a, gold_b, rng, temperature=0.2, label_noise=0.1)
    assert labels.dtype == bool
    for k, (a, b) in enumerate([(0.75, 0.5), (0.25, 0.5), (0.0, 0.0), (-0.5, 0.5)]):
        p = 0.1 + 0.8 * _sig((a - b) / 0.2)
        freq = labels[k * 20_000 : (k + 1) * 20_000].mean()
        assert freq == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 20_000))


def test_preference_validation():
    with pytest.raises(ValueError, match="temperature"):
        preference_probability(np.zeros(2), np.zeros(2), temperature=0.0)
    with pytest.raises(ValueError, match="label_noise"):
        preference_probability(np.zeros(2), np.zeros(2), temperature=1.0, label_noise=0.6)
    with pytest.raises(ValueError, match="same shape"):
        preference_probability(np.zeros(2), np.zeros(3), temperature=1.0)
    with pytest.raises(TypeError, match="rng"):
        label_preferences(np.zeros(2), np.zeros(2), rng=0)


def test_bon_kl_hand_computed():
    assert bon_kl(1) == 0.0
    assert bon_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert bon_kl(64) == pytest.approx(math.log(64) - 63 / 64)
    with pytest.raises(ValueError, match="n"):
        bon_kl(0)


def test_best_of_n_estimator_equals_brute_force_over_all_subsets():
    rng = np.random.default_rng(1)
    proxy = rng.normal(size=7)
    gold = rng.normal(size=7)
    for n in (1, 2, 3, 7):
        subsets = list(itertools.combinations(range(7), n))
        brute = np.mean([gold[max(s, key=lambda i: proxy[i])] for s in subsets])
        assert best_of_n_expectation(proxy, gold, n) == pytest.approx(brute, rel=1e-9)
        w = best_of_n_weights(7, n)
        assert w.sum() == pytest.approx(1.0) and (w[: n - 1] == 0).all()
    rows = best_of_n_curve(proxy, gold, [1, 3])
    assert rows[0]["proxy"] == pytest.approx(proxy.mean()) and rows[0]["gold"] == pytest.approx(gold.mean())
    assert rows[1]["kl"] == pytest.approx(bon_kl(3))
    with pytest.raises(ValueError, match="pool_size"):
        best_of_n_weights(3, 4)


def test_best_of_n_select_picks_each_groups_argmax():
    proxy = np.array([0.1, 0.9, 0.3, 2.0, -1.0, 0.0, 5.0])
    assert best_of_n_select(proxy, 3).tolist() == [1, 3]  # the last, incomplete group is dropped


def test_gao_forms_hand_computed_and_fit_recovers_parameters():
    assert gao_form(2.0, alpha=1.0, beta=0.25, form="bon")[0] == pytest.approx(2.0 * (1.0 - 0.5))
    assert gao_form(math.e, alpha=1.0, beta=0.5, form="rl")[0] == pytest.approx(math.e * 0.5)
    assert gao_form(0.0, alpha=1.0, beta=0.5, form="rl")[0] == 0.0  # d log d -> 0
    d = np.linspace(0.0, 4.0, 30)
    for form, (a, b) in (("bon", (0.9, 0.2)), ("rl", (0.6, 0.3))):
        gold = gao_form(d, a, b, form)
        assert fit_gao(d, gold, form) == pytest.approx((a, b), abs=1e-9)
    with pytest.raises(ValueError, match="form"):
        fit_gao(d, d, "ppo")
    with pytest.raises(ValueError, match="two points"):
        fit_gao(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "rl")
