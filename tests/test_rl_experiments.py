"""Chapter 1's experiments (ppo-cartpole, why-ppo, action-space) and figure helpers: contracts, hand-computed
pieces, analytic checks, reproducibility."""

import math

import numpy as np
import pytest

from rl4llm.experiments import config_from_overrides, list_experiments, run_experiment
from rl4llm.experiments.action_space import fit_power_law
from rl4llm.experiments.why_ppo import max_drop, review_task
from rl4llm.rl.analysis import (
    clipped_surrogate,
    clipped_surrogate_curves,
    discounting_returns,
    episode_returns_by_gamma,
    gae_advantage_quality,
)
from rl4llm.rl.plots import plot_clipped_surrogate, plot_discounting, plot_gae_quality


def test_experiments_are_registered():
    assert {"ppo-cartpole", "why-ppo", "action-space"} <= set(list_experiments())


@pytest.mark.parametrize(
    "name, overrides, word",
    [
        ("ppo-cartpole", {"clip_eps": -0.2}, "clip_eps"),
        ("ppo-cartpole", {"total_steps": 100}, "total_steps"),
        ("ppo-cartpole", {"gae_lambda": 1.5}, "gae_lambda"),
        ("why-ppo", {"vocab_size": 8}, "vocab_size"),
        ("why-ppo", {"methods": "ppo,sarsa"}, "methods"),
        ("why-ppo", {"eval_every": 1000}, "eval_every"),
        ("why-ppo", {"solved": 0.0}, "solved"),
        ("action-space", {"vocab_sizes": "4,x"}, "vocab_sizes"),
        ("action-space", {"vocab_sizes": "1,4"}, "vocab_sizes"),
        ("action-space", {"modes": "dense,sparse"}, "modes"),
        ("action-space", {"target_return": 1.5}, "target_return"),
    ],
)
def test_configs_reject_bad_values(name, overrides, word):
    with pytest.raises((ValueError, TypeError), match=word):
        config_from_overrides(name, **overrides)


def test_clip_eps_may_be_infinite():
    assert math.isinf(config_from_overrides("ppo-cartpole", clip_eps=math.inf).clip_eps)


def test_review_task_is_a_sentence_of_the_language():
    from rl4llm.lm import EOS, parses

    make_env, words, target = review_task(32, 12, text_seed=0)
    assert len(words) == 32 and len(set(words)) == 32 and len(target) == 12
    text = " ".join(words[t] for t in target)
    assert parses(text) and words[target[-1]] == EOS
    env = make_env()
    obs, _ = env.reset(seed=0)
    total = 0.0
    for t in target:  # writing the reference scores 1, paid only at the end
        obs, r, term, trunc, _ = env.step(t)
        total += r
        assert r == 0.0 or term
    assert term and total == pytest.approx(1.0)
    env.reset()
    _, r, term, _, _ = env.step(target[-1])  # <eos> first: the episode ends with at most one match
    assert term and r <= 1 / 12 + 1e-9


def test_max_drop_by_hand():
    assert max_drop(np.array([0.1, 0.5, 0.2, 0.6, 0.3])) == pytest.approx(0.3)
    assert max_drop(np.array([0.0, 0.2, 0.4])) == 0.0


def test_fit_power_law_recovers_an_exact_law():
    v = np.array([4.0, 16.0, 64.0, 256.0])
    a, b = fit_power_law(v, 10.0 * v**0.5)
    assert a == pytest.approx(1.0) and b == pytest.approx(0.5)
    with pytest.raises(ValueError):
        fit_power_law(np.array([4.0, 4.0]), np.array([1.0, 2.0]))


def test_returns_by_gamma_match_the_geometric_sum():
    out = episode_returns_by_gamma(np.ones(5), [0.5, 1.0])
    np.testing.assert_allclose(out[0.5], 2 * (1 - 0.5 ** np.arange(5, 0, -1)), rtol=1e-6)
    np.testing.assert_allclose(out[1.0], [5, 4, 3, 2, 1])


def test_clipped_surrogate_values_and_slopes():
    vals, slopes = clipped_surrogate([0.5, 1.0, 1.5], 1.0, 0.2)
    np.testing.assert_allclose(vals, [0.5, 1.0, 1.2], rtol=1e-6)
    np.testing.assert_allclose(slopes, [1.0, 1.0, 0.0], atol=1e-6)
    vals, slopes = clipped_surrogate([0.5, 1.5], -1.0, 0.2)
    np.testing.assert_allclose(vals, [-0.8, -1.5], rtol=1e-6)
    np.testing.assert_allclose(slopes, [0.0, -1.0], atol=1e-6)


def test_gae_quality_matches_the_analytic_values():
    # Exact critic: lambda = 0 gives the true advantage exactly (correlation 1). lambda = 1 gives
    # A_t + (sum of the later tokens' centred matches) / T, whose correlation with A_t is 1 / sqrt(T - t).
    q = gae_advantage_quality([0.0, 1.0], vocab_size=4, horizon=8, n_episodes=20_000, seed=1)
    exact = q["critics"]["exact critic"]
    assert exact[0] == pytest.approx(1.0, abs=1e-9)
    assert exact[1] == pytest.approx(np.mean(1 / np.sqrt(np.arange(1, 9))), abs=0.02)
    none = q["critics"]["no critic (V = 0)"]
    # no critic, lambda = 0: only the last token gets a non-zero estimate (the reward R), corr 1/sqrt(T) there
    assert none[0] == pytest.approx(1 / np.sqrt(8) / 8, abs=0.02)


def test_figures_have_labelled_axes():
    q = gae_advantage_quality([0.0, 0.5, 1.0], n_episodes=50)
    for fig in (
        plot_discounting(discounting_returns((0.9, 1.0), horizon=20)),
        plot_clipped_surrogate(clipped_surrogate_curves((0.2,))),
        plot_gae_quality(q, lam=0.5),
    ):
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel()


def _strip(metrics):
    return {k: v for k, v in metrics.items() if k != "wall_s"}


def test_why_ppo_small_run_is_reproducible():
    kw = dict(seeds=1, total_steps=1024, eval_every=512, methods="ppo,dqn")
    a = run_experiment("why-ppo", **kw)
    b = run_experiment("why-ppo", **kw)
    assert _strip(a.metrics) == _strip(b.metrics)
    assert {"ppo_final_mean", "ppo_final_std", "dqn_final_mean", "dqn_max_drop"} <= set(a.metrics)
    assert [r["env_steps"] for r in a.curves] == [512, 1024]
    assert set(a.artifacts["texts"]) == {"ppo", "dqn"}


def test_action_space_small_run_is_reproducible(tmp_path):
    kw = dict(vocab_sizes="2,4", horizon=2, max_steps=2048, seeds=1, target_return=0.5)
    a = run_experiment("action-space", out=tmp_path, **kw)
    b = run_experiment("action-space", **kw)
    assert _strip(a.metrics) == _strip(b.metrics)
    assert len(a.curves) == 4  # 2 vocabularies x 2 modes x 1 seed
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "figure.png").exists()
    # a 2-token, 2-step task is solved by the first greedy evaluation or shortly after
    assert a.metrics["dense_V2_steps"] is not None and a.metrics["dense_V2_steps"] <= 2048


def test_ppo_cartpole_small_run_reports_the_contract_metrics():
    res = run_experiment("ppo-cartpole", total_steps=512, eval_episodes=1, seed=0)
    assert {"final_return", "env_steps", "wall_s", "steps_to_475", "eval_return"} <= set(res.metrics)
    assert res.metrics["env_steps"] == 512
    assert res.metrics["steps_to_475"] is None


@pytest.mark.slow
def test_why_ppo_clipping_matters_on_the_token_mdp():
    # the experiment's central measurement at a small budget: clipped PPO writes (nearly) the whole reference,
    # unclipped PPO collapses early and stays far below
    res = run_experiment("why-ppo", seeds=1, total_steps=20_480, methods="ppo,ppo-noclip")
    assert res.metrics["ppo_final_mean"] >= 0.75
    assert res.metrics["ppo-noclip_final_mean"] <= res.metrics["ppo_final_mean"] - 0.25
