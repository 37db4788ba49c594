"""Grader of assignment 06: Prompt-OIRL's offline reward model and per-query prompt selection.

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``). Selection is checked with a hand-made reward model (a dot product
of query and prompt features) whose best prompt per query is known; the ROC AUC against a direct count over all
positive-negative pairs; the behavioural item on synthetic logs whose true success probabilities are known.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from rl4llm.assignments.checks import expect, expect_close, expect_scalar, fail, to_numpy

ASSIGNMENT = "06-prompt-oirl"


def softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_prompt_reward_loss_hand_computed(impl):
    """prompt_reward_loss: binary cross-entropy of success logits (hand-computed)"""
    logits, correct = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
    # -log sigma(0), -log(1 - sigma(2)) = softplus(2), -log sigma(-1) = softplus(1)
    expected = (math.log(2) + softplus(2.0) + softplus(1.0)) / 3
    got = expect_scalar(impl.prompt_reward_loss(logits, correct), "prompt_reward_loss(logits [3], correct [3])")
    expect_close(
        got,
        expected,
        "prompt_reward_loss",
        wrong=[
            (
                (math.log(2) + softplus(-2.0) + softplus(-1.0)) / 3,
                "swaps the labels (correct = 1 must pull the logit up)",
            ),
            (expected * 3, "sums instead of averaging"),
            (-expected, "has the wrong sign"),
        ],
    )
    as_int = expect_scalar(impl.prompt_reward_loss(logits, correct.long()), "prompt_reward_loss(..., int labels)")
    expect_close(as_int, expected, "prompt_reward_loss with integer 0/1 labels")


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_prompt_reward_loss_is_numerically_stable(impl):
    """prompt_reward_loss stays finite and right for huge logits"""
    loss = impl.prompt_reward_loss(torch.tensor([200.0, -200.0, 200.0]), torch.tensor([1.0, 0.0, 0.0]))
    value = expect_scalar(loss, "prompt_reward_loss")
    expect(
        math.isfinite(value),
        f"prompt_reward_loss([200, -200, 200], [1, 0, 0]) = {value}: log(sigmoid(x)) "
        f"underflows; use softplus or binary_cross_entropy_with_logits",
    )
    expect_close(value, 200.0 / 3, "prompt_reward_loss([200, -200, 200], [1, 0, 0])", rtol=1e-4)


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_roc_auc_hand_computed(impl):
    """roc_auc: a hand-counted case, ties count one half, nan with one class"""
    got = impl.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    # positives {0.35, 0.8} beat negatives {0.1, 0.4} in 3 of 4 pairs
    expect_close(
        got, 0.75, "roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])", wrong=[(0.25, "swaps positives and negatives")]
    )
    tied = impl.roc_auc(np.array([0.5, 0.5, 0.2, 0.9]), np.array([1, 0, 0, 1]))
    expect_close(
        tied,
        0.875,
        "roc_auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) (one tied pair)",
        wrong=[
            (0.75, "counts a tie as a loss (a tied pair counts one half)"),
            (1.0, "counts a tie as a win (a tied pair counts one half)"),
        ],
    )
    one_class = impl.roc_auc(np.array([0.3, 0.6]), np.array([1, 1]))
    expect(
        one_class is not None and math.isnan(float(one_class)),
        f"roc_auc with positives only must be nan (undefined), got {one_class}",
    )


def _pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@pytest.mark.points(1)
@pytest.mark.tier("randomised")
def test_roc_auc_matches_pair_counting(impl):
    """roc_auc equals the fraction of winning positive-negative pairs on random scores with ties"""
    rng = np.random.default_rng(0)
    for n in (7, 50, 400):
        labels = (rng.random(n) < 0.4).astype(int)
        labels[:2] = [0, 1]
        scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounding makes ties
        expect_close(
            impl.roc_auc(scores, labels),
            _pairwise_auc(scores, labels),
            f"roc_auc on {n} random scores with ties",
            atol=1e-9,
        )


class DotModel:
    """A reward model with known scores: P(correct | q, p) = sigmoid(q . p). It scores row-aligned pairs only."""

    def predict_proba(self, query_features, prompt_features):
        q, p = np.asarray(query_features, dtype=float), np.asarray(prompt_features, dtype=float)
        if q.ndim != 2 or p.ndim != 2 or q.shape[0] != p.shape[0]:
            raise ValueError(
                f"predict_proba scores row-aligned pairs: Q [m, dq] and P [m, dp] with the same m; got "
                f"{q.shape} and {p.shape}"
            )
        return 1.0 / (1.0 + np.exp(-(q * p).sum(1)))


QUERIES = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
CANDIDATES = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-1.0, -1.0], [0.0, 0.5]])


@pytest.mark.points(3)
@pytest.mark.tier("hand-computed")
def test_select_prompts_hand_computed(impl):
    """select_prompts: the best candidate per query, ties to the lowest index (known scores)"""
    got = impl.select_prompts(DotModel(), QUERIES, CANDIDATES)
    a = to_numpy(got, "select_prompts(...)")
    # scores q . c: [2, 0, 1, -1, 0], [0, 3, 1, -1, .5], [2, 3, 2, -2, .5], all 0 (a tie: lowest index)
    expected = np.array([0, 1, 1, 0])
    n, k = len(QUERIES), len(CANDIDATES)
    flat = DotModel().predict_proba(np.tile(QUERIES, (k, 1)), np.repeat(CANDIDATES, n, axis=0))
    mixed = flat.reshape(n, k).argmax(1)
    if a.shape == (k,):
        fail(
            f"select_prompts returned {k} values, one per candidate; it must return one index per query "
            f"({n}): take the argmax over the candidates (axis 1)"
        )
    expect_close(
        a,
        expected,
        "select_prompts on 4 queries and 5 candidates",
        wrong=[
            (
                mixed,
                "pairs queries and candidates in the wrong order (row i * k + j of the pairs must "
                "hold query i and candidate j)",
            ),
            (np.array([3, 3, 3, 0]), "takes the argmin instead of the argmax"),
            (np.array([0, 1, 1, 4]), "breaks ties towards the highest index"),
        ],
    )
    expect(
        np.issubdtype(np.asarray(got).dtype, np.integer),
        f"select_prompts must return integer indices, got dtype {np.asarray(got).dtype}",
    )


@pytest.mark.points(1)
@pytest.mark.tier("shapes")
def test_select_prompts_shapes(impl):
    """select_prompts returns one index in [0, n_prompts) per query"""
    rng = np.random.default_rng(1)
    for n, k in ((1, 1), (7, 3), (25, 9)):
        got = to_numpy(
            impl.select_prompts(DotModel(), rng.normal(size=(n, 4)), rng.normal(size=(k, 4))), "select_prompts"
        )
        expect(
            got.shape == (n,),
            f"select_prompts with {n} queries and {k} candidates returned shape {got.shape}, expected ({n},)",
        )
        expect(((got >= 0) & (got < k)).all(), f"select_prompts returned indices {got.tolist()}, outside [0, {k})")


def _true_success(types: np.ndarray) -> np.ndarray:
    """P(correct | query type, prompt) of the synthetic task: 4 query types x 6 prompts."""
    table = np.array(
        [
            [0.85, 0.30, 0.40, 0.20, 0.55, 0.35],
            [0.25, 0.80, 0.35, 0.45, 0.30, 0.50],
            [0.30, 0.35, 0.75, 0.25, 0.50, 0.40],
            [0.40, 0.20, 0.30, 0.80, 0.35, 0.55],
        ]
    )
    return table[types]


def _logs(rng: np.random.Generator, n: int, prompt_features: np.ndarray):
    types = rng.integers(0, 4, n)
    prompts = rng.integers(0, 6, n)
    q = np.eye(4)[types] + 0.1 * rng.normal(size=(n, 4))
    p = prompt_features[prompts]
    correct = (rng.random(n) < _true_success(types)[np.arange(n), prompts]).astype(float)
    return types, q, p, correct


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_offline_reward_model_picks_better_prompts(impl, monkeypatch):
    """a reward model fitted with your loss, evaluated with your AUC, lets your selection beat any fixed prompt"""
    reward_model = importlib.import_module("rl4llm.prompting.reward_model")
    monkeypatch.setattr(reward_model, "prompt_reward_loss", impl.prompt_reward_loss)
    rng = np.random.default_rng(0)
    prompt_features = rng.normal(size=(6, 3))
    _, q, p, correct = _logs(rng, 3000, prompt_features)
    model = reward_model.fit_prompt_reward_model(q, p, correct, seed=0, hidden=16, epochs=200)
    _, q_test, p_test, c_test = _logs(rng, 2000, prompt_features)
    auc = float(impl.roc_auc(model.predict_proba(q_test, p_test), c_test))
    expect(
        auc > 0.6,
        f"the reward model fitted with your prompt_reward_loss has a held-out ROC AUC of {auc:.3f} "
        f"by your roc_auc (expected > 0.6; the true success probabilities reach about 0.68)",
    )
    types = rng.integers(0, 4, 400)
    queries = np.eye(4)[types] + 0.1 * rng.normal(size=(400, 4))
    chosen = to_numpy(impl.select_prompts(model, queries, prompt_features), "select_prompts").astype(int)
    truth = _true_success(types)
    value = float(truth[np.arange(400), chosen].mean())
    best_fixed = float(truth.mean(0).max())
    oracle = float(truth.max(1).mean())
    expect(
        value > best_fixed + 0.15,
        f"your per-query selection succeeds {value:.0%} of the time, the best fixed "
        f"prompt {best_fixed:.0%} and the oracle {oracle:.0%}; selection should beat "
        f"the best fixed prompt by 15 points",
    )
