"""Exact tabular evaluation (chapter 2): hand-computed values, the cliff walk's known values, the env wrapper."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl4llm.offline.tabular import (
    TabularEnv,
    TabularMDP,
    cliff_walk,
    epsilon_greedy_probs,
    evaluate_policy,
    greedy_policy,
    policy_return,
    safe_route,
    value_iteration,
)


def two_state_mdp(gamma: float = 0.5) -> TabularMDP:
    """States 0, 1 and a terminal 2; actions 0, 1.

    From 0: action 0 -> state 1 with reward 1; action 1 -> terminal with reward 2.
    From 1: action 0 -> terminal with reward 0; action 1 -> back to 0 with reward -1.
    """
    P = np.zeros((3, 2, 3))
    R = np.zeros((3, 2, 3))
    P[0, 0, 1], R[0, 0, 1] = 1.0, 1.0
    P[0, 1, 2], R[0, 1, 2] = 1.0, 2.0
    P[1, 0, 2], R[1, 0, 2] = 1.0, 0.0
    P[1, 1, 0], R[1, 1, 0] = 1.0, -1.0
    P[2, :, 2] = 1.0
    return TabularMDP(P=P, R=R, terminal=np.array([False, False, True]), p0=np.array([1.0, 0.0, 0.0]), gamma=gamma)


def test_evaluate_deterministic_policy_by_hand():
    mdp = two_state_mdp()
    policy = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    V, Q = evaluate_policy(mdp, policy)
    # V(1) = 0; V(0) = 1 + 0.5 * V(1) = 1; Q(0, 1) = 2; Q(1, 1) = -1 + 0.5 * V(0) = -0.5; terminal: 0
    np.testing.assert_allclose(V, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(Q[:2], [[1.0, 2.0], [0.0, -0.5]], atol=1e-12)
    np.testing.assert_allclose(Q[2], [0.0, 0.0], atol=1e-12)


def test_evaluate_stochastic_policy_with_a_cycle_by_hand():
    mdp = two_state_mdp()
    policy = np.array([[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])
    V, Q = evaluate_policy(mdp, policy)
    # V0 = 0.5 (1 + 0.5 V1) + 0.5 * 2,  V1 = -1 + 0.5 V0  =>  V0 = 1.25 / 0.875 = 10/7, V1 = -2/7
    np.testing.assert_allclose(V[:2], [10 / 7, -2 / 7], atol=1e-12)
    np.testing.assert_allclose(Q[0], [1 + 0.5 * (-2 / 7), 2.0], atol=1e-12)
    np.testing.assert_allclose((policy * Q).sum(1)[:2], V[:2], atol=1e-12)  # V = E_pi Q
    assert policy_return(mdp, policy) == pytest.approx(10 / 7)


def test_value_iteration_by_hand_and_greedy_ties():
    mdp = two_state_mdp()
    Q = value_iteration(mdp)
    # V*(1) = max(0, -1 + 0.5 V*(0)); V*(0) = max(1 + 0.5 V*(1), 2) = 2 => V*(1) = 0 (a tie in state 1)
    np.testing.assert_allclose(Q[:2], [[1.0, 2.0], [0.0, 0.0]], atol=1e-9)
    np.testing.assert_array_equal(greedy_policy(Q)[:2], [[0, 1], [1, 0]])  # ties -> lowest index


def test_cliff_walk_known_values():
    mdp = cliff_walk()
    gamma = mdp.gamma
    # the edge route: up, 6 x right, down = 8 moves, the goal's +10 arrives on the 8th: 10 gamma^7
    assert policy_return(mdp, greedy_policy(value_iteration(mdp))) == pytest.approx(10 * gamma**7)
    # the safe route: 3 up, 6 right, 3 down = 12 moves
    assert policy_return(mdp, np.eye(4)[safe_route(mdp)]) == pytest.approx(10 * gamma**11)
    # stepping right from the start falls off the cliff at once
    _, Q = evaluate_policy(mdp, np.eye(4)[safe_route(mdp)])
    assert Q[mdp.info["start"], 1] == pytest.approx(-10.0)
    assert mdp.terminal.sum() == 6 and mdp.features.shape == (28, 4 + 7)


def test_epsilon_greedy_probs_and_random_policy_value():
    probs = epsilon_greedy_probs(np.array([0, 2]), 4, 0.2)
    np.testing.assert_allclose(probs, [[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05]])
    # more noise on the safe route can only lose value here (the cliff is one wrong step away)
    mdp = cliff_walk()
    values = [policy_return(mdp, epsilon_greedy_probs(safe_route(mdp), 4, e)) for e in (0.0, 0.1, 0.4)]
    assert values[0] > values[1] > values[2]


def test_slip_keeps_rows_stochastic_and_lowers_the_edge_route():
    calm, windy = cliff_walk(), cliff_walk(slip=0.2)
    np.testing.assert_allclose(windy.P.sum(-1), 1.0)
    edge = greedy_policy(value_iteration(calm))
    assert policy_return(windy, edge) < policy_return(calm, edge)


def test_validation_errors_name_the_parameter():
    mdp = two_state_mdp()
    with pytest.raises(ValueError, match="policy"):
        evaluate_policy(mdp, np.ones((3, 3)) / 3)
    with pytest.raises(ValueError, match="policy rows"):
        evaluate_policy(mdp, np.ones((3, 2)))
    with pytest.raises(ValueError, match="gamma"):
        dataclasses.replace(mdp, gamma=1.0)
    with pytest.raises(ValueError, match="P must hold probabilities"):
        dataclasses.replace(mdp, P=mdp.P * 2)
    with pytest.raises(ValueError, match="p0"):
        dataclasses.replace(mdp, p0=np.array([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy_probs(np.array([0]), 2, 1.5)
    with pytest.raises(ValueError, match="slip"):
        cliff_walk(slip=-0.1)
    with pytest.raises(ValueError, match="width"):
        cliff_walk(width=2)


def test_tabular_env_terminates_and_truncates():
    mdp = cliff_walk()
    env = TabularEnv(mdp, horizon=3)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs == mdp.info["start"]
    obs, reward, terminated, truncated, _ = env.step(1)  # right: into the cliff
    assert (reward, terminated, truncated) == (-10.0, True, False)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(3)]  # up three times: alive, then cut by the time limit
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(ValueError, match="horizon"):
        TabularEnv(mdp, horizon=0)
