"""Chapter 4.1: exact planning, evaluation, sampling and tabular BC on a known MDP; the maxent-irl experiment."""

import itertools

import numpy as np
import pytest

from rl4llm.envs import GridWorldEnv
from rl4llm.envs.tabular import finite_horizon_value_iteration
from rl4llm.imitation.bc import tabular_bc
from rl4llm.irl.planning import expected_return, sample_trajectories, uniform_policy

P = np.array([[[0.9, 0.1], [0.3, 0.7]], [[0.2, 0.8], [0.6, 0.4]]])
P0 = np.array([0.5, 0.5])


def test_value_iteration_is_optimal_among_all_deterministic_policies():
    reward = np.array([1.0, -0.2])
    horizon = 3
    V, policy = finite_horizon_value_iteration(P, reward, horizon)
    best = -np.inf
    # every time-dependent deterministic policy: one action per (t, s), 2^(2*3) = 64 of them
    for choice in itertools.product(range(2), repeat=2 * horizon):
        pi = np.zeros((horizon, 2, 2))
        for t in range(horizon):
            for s in range(2):
                pi[t, s, choice[2 * t + s]] = 1.0
        best = max(best, expected_return(P, pi, P0, reward))
    assert P0 @ V[0] == pytest.approx(best, rel=1e-12)
    assert expected_return(P, policy, P0, reward) == pytest.approx(best, rel=1e-12)


def test_expected_return_by_hand():
    # one step: the return is r(s_0), whatever the policy
    assert expected_return(P, uniform_policy(1, 2, 2), np.array([0.25, 0.75]), np.array([4.0, 8.0])) == 7.0
    # two steps from state 0 with "always action 1": r(0) + 0.3 r(0) + 0.7 r(1)
    pi = np.zeros((2, 2, 2))
    pi[:, :, 1] = 1.0
    assert expected_return(P, pi, np.array([1.0, 0.0]), np.array([1.0, 2.0])) == pytest.approx(1 + 0.3 + 1.4)


def test_sampled_returns_agree_with_the_exact_return():
    env = GridWorldEnv()
    _, pi = finite_horizon_value_iteration(env.P, env.reward, env.horizon)
    states, actions = sample_trajectories(env.P, pi, env.p0, 4000, rng=0)
    assert states.shape == actions.shape == (4000, env.horizon)
    assert np.all(states[:, 0] == 0)  # the start cell
    mc = env.reward[states].sum(axis=1)
    exact = expected_return(env.P, pi, env.p0, env.reward)
    assert abs(mc.mean() - exact) < 4 * mc.std() / np.sqrt(len(mc))
    # same seed, same samples
    np.testing.assert_array_equal(
        sample_trajectories(env.P, pi, env.p0, 5, rng=7)[0], sample_trajectories(env.P, pi, env.p0, 5, rng=7)[0]
    )


def test_tabular_bc_counts_and_unseen_states():
    states = np.array([[0, 0, 1]])
    actions = np.array([[1, 1, 0]])
    pi = tabular_bc(states, actions, n_states=3, n_actions=2, horizon=4)
    assert pi.shape == (4, 3, 2)
    np.testing.assert_allclose(pi[0], [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])  # state 2 never demonstrated
    np.testing.assert_allclose(tabular_bc(states, actions, 3, 2, 1, smoothing=1.0)[0, 0], [0.25, 0.75])


def test_planning_validation():
    with pytest.raises(ValueError, match="horizon must be an int >= 1"):
        finite_horizon_value_iteration(P, np.zeros(2), 0)
    with pytest.raises(ValueError, match=r"actions must be in \[0, 1\]"):
        tabular_bc(np.array([[0]]), np.array([[2]]), 2, 2, 1)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        sample_trajectories(P, uniform_policy(2, 2, 2), P0, 0, rng=0)


def test_maxent_irl_experiment_is_reproducible_and_validated():
    from rl4llm.experiments import run_experiment

    a = run_experiment("maxent-irl", n_demos=2, n_iters=30, seed=1)
    b = run_experiment("maxent-irl", n_demos=2, n_iters=30, seed=1)
    keys = [k for k in a.metrics if k != "wall_s"]
    assert {k: a.metrics[k] for k in keys} == {k: b.metrics[k] for k in keys}
    for key in ("expert_return", "irl_return", "bc_return", "reward_correlation"):
        assert key in a.metrics
    assert a.metrics["expert_return"] >= a.metrics["irl_return"] - 1e-9  # nothing beats the optimal policy
    assert len(a.curves) == 30 and a.figure is not None
    with pytest.raises(ValueError, match="features must be one of"):
        run_experiment("maxent-irl", features="pixels")
    with pytest.raises(ValueError, match=r"n_demos must be an int in \[1, inf\), got 0"):
        run_experiment("maxent-irl", n_demos=0)
