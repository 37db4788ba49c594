"""Chapter 6: the offline reward model, AUC, the loss, prompt selection and evaluation (no LM involved)."""

import itertools

import numpy as np
import pytest
import torch

from rl4llm.prompting import evaluate_prompts, fit_prompt_reward_model, prompt_reward_loss, roc_auc, select_prompts

PROMPT_VECS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


def synthetic_logs(n_queries: int, seed: int):
    """Queries x in [-1, 1]^2; prompt p succeeds with probability sigmoid(6 x . v_p): no prompt is best everywhere."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n_queries, 2))
    prob = 1 / (1 + np.exp(-6 * x @ PROMPT_VECS.T))  # [n, 3]
    correct = (rng.random(prob.shape) < prob).astype(float)
    return x, prob, correct


def rows(x, correct):
    n, k = correct.shape
    return np.repeat(x, k, axis=0), np.tile(PROMPT_VECS, (n, 1)), correct.ravel()


def test_roc_auc_hand_cases_and_brute_force():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5, 0.5], [0, 1, 1]) == pytest.approx(0.5)
    assert roc_auc([3, 2, 1], [1, 1, 0]) == pytest.approx(1.0)
    assert np.isnan(roc_auc([1, 2], [1, 1]))
    rng = np.random.default_rng(1)
    s = rng.integers(0, 5, size=60).astype(float)  # many ties
    y = rng.integers(0, 2, size=60)
    pos, neg = s[y == 1], s[y == 0]
    brute = np.mean([(a > b) + 0.5 * (a == b) for a, b in itertools.product(pos, neg)])
    assert roc_auc(s, y) == pytest.approx(brute)


def test_reward_loss_hand_case():
    loss = prompt_reward_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]))
    expected = (np.log(2.0) + np.log1p(np.exp(2.0))) / 2  # -log sigmoid(0), -log(1 - sigmoid(2))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        prompt_reward_loss(torch.zeros(3), torch.zeros(2))


def test_reward_model_beats_chance_on_held_out_pairs_and_selects_well():
    x_tr, _, c_tr = synthetic_logs(300, seed=0)
    x_te, p_te, c_te = synthetic_logs(300, seed=1)
    rm = fit_prompt_reward_model(*rows(x_tr, c_tr), seed=0)
    q, p, y = rows(x_te, c_te)
    bayes_auc = roc_auc(p_te.ravel(), y)
    auc = roc_auc(rm.predict_proba(q, p), y)
    assert auc > 0.75 and auc > bayes_auc - 0.05
    choice = select_prompts(rm, x_te, PROMPT_VECS)
    assert choice.shape == (300,) and choice.dtype.kind == "i"
    expected_success = p_te[np.arange(300), choice].mean()
    best_single = p_te.mean(axis=0).max()
    assert expected_success > best_single + 0.15  # per-query choice beats any fixed prompt
    realised = c_te[np.arange(300), choice].mean()
    assert realised <= c_te.max(axis=1).mean()  # never above the oracle
    # evaluation of each prompt on a query set ~ its true mean success
    np.testing.assert_allclose(evaluate_prompts(rm, x_te, PROMPT_VECS), p_te.mean(axis=0), atol=0.08)


def test_reward_model_is_deterministic_for_a_seed():
    x, _, c = synthetic_logs(60, seed=2)
    a = fit_prompt_reward_model(*rows(x, c), seed=5, epochs=50).predict_proba(*rows(x, c)[:2])
    b = fit_prompt_reward_model(*rows(x, c), seed=5, epochs=50).predict_proba(*rows(x, c)[:2])
    np.testing.assert_array_equal(a, b)


def test_prompt_only_reward_model_picks_one_prompt():
    x, _, c = synthetic_logs(200, seed=3)
    q, p, y = rows(x, c)
    c[:, 1] = 1.0 * (np.random.default_rng(0).random(200) < 0.9)  # prompt 1 is best on average
    q, p, y = rows(x, c)
    rm = fit_prompt_reward_model(np.zeros_like(q), p, y, seed=0)
    choice = select_prompts(rm, np.zeros((50, 2)), PROMPT_VECS)
    assert set(choice.tolist()) == {1}


class DotModel:
    """A stub reward model: score = <q, p>; lets selection be checked by hand."""

    def predict_proba(self, q, p):
        return (np.asarray(q) * np.asarray(p)).sum(axis=1)


def test_select_prompts_hand_case_and_ties():
    q = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    cands = np.array([[0.0, 1.0], [3.0, 0.0], [1.0, 1.0]])
    # scores: q0 -> [0, 3, 1]; q1 -> [2, 0, 2] (tie -> lowest index 0); q2 -> all 0 -> 0
    np.testing.assert_array_equal(select_prompts(DotModel(), q, cands), [1, 0, 0])


def test_bad_inputs_name_the_parameter():
    q, p, y = rows(*synthetic_logs(10, seed=0)[::2])
    with pytest.raises(ValueError, match="query_features"):
        fit_prompt_reward_model(q[:, 0], p, y, seed=0)
    with pytest.raises(ValueError, match="prompt_features"):
        fit_prompt_reward_model(q, p[:-1], y, seed=0)
    with pytest.raises(ValueError, match="correct"):
        fit_prompt_reward_model(q, p, y * 2, seed=0)
    with pytest.raises(ValueError, match="correct"):
        fit_prompt_reward_model(q, p, y[:-1], seed=0)
    bad = q.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="query_features"):
        fit_prompt_reward_model(bad, p, y, seed=0)
    with pytest.raises(ValueError, match="seed"):
        fit_prompt_reward_model(q, p, y, seed=-1)
    with pytest.raises(ValueError, match="lr"):
        fit_prompt_reward_model(q, p, y, seed=0, lr=0.0)
    with pytest.raises(ValueError, match="epochs"):
        fit_prompt_reward_model(q, p, y, seed=0, epochs=0)
    with pytest.raises(ValueError, match="candidate_prompt_features"):
        select_prompts(DotModel(), q, np.zeros(2))
    with pytest.raises(ValueError, match="query_features"):
        select_prompts(DotModel(), np.zeros((0, 2)), PROMPT_VECS)
    rm = fit_prompt_reward_model(q, p, y, seed=0, epochs=5)
    with pytest.raises(ValueError, match="prompt_features must have 2 columns"):
        rm.predict_proba(q, np.zeros((q.shape[0], 3)))
