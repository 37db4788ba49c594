"""The package's one tabular MDP and its planners, on MDPs of two or three states solved by hand."""

import math

import numpy as np
import pytest

from rl4llm.envs.gridworld import GridWorldEnv
from rl4llm.envs.tabular import (
    TabularEnv,
    TabularMDP,
    evaluate_policy,
    finite_horizon_value_iteration,
    greedy_policy,
    policy_return,
    soft_value_iteration,
    value_iteration,
)


def _two_states(reward_form: str = "sa") -> TabularMDP:
    """s0: a0 stays (reward 1), a1 moves to s1 (reward 0); s1: a0 stays (reward 3), a1 moves to s0 (reward 0).

    With gamma = 0.5 the optimal policy moves from s0 to s1 and stays: V*(s1) = 3 / (1 - 0.5) = 6,
    V*(s0) = 0.5 * 6 = 3, so Q* = [[1 + 0.5 * 3, 0.5 * 6], [3 + 0.5 * 6, 0.5 * 3]] = [[2.5, 3], [6, 1.5]].
    """
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    r = np.array([[1.0, 0.0], [3.0, 0.0]])
    R = r if reward_form == "sa" else np.broadcast_to(r[:, :, None], (2, 2, 2)).copy()
    return TabularMDP(P=P, R=R, terminal=np.zeros(2, dtype=bool), p0=np.array([1.0, 0.0]), gamma=0.5)


Q_STAR = np.array([[2.5, 3.0], [6.0, 1.5]])


@pytest.mark.parametrize("form", ["sa", "sas"])
def test_value_iteration_reaches_the_hand_computed_fixed_point(form):
    mdp = _two_states(form)
    q = value_iteration(mdp)
    np.testing.assert_allclose(q, Q_STAR, atol=1e-9)
    # the Bellman optimality equation holds at the fixed point
    np.testing.assert_allclose(mdp.expected_reward + mdp.gamma * mdp.P @ q.max(1), q, atol=1e-9)
    assert greedy_policy(q).tolist() == [[0, 1], [1, 0]]
    assert policy_return(mdp, greedy_policy(q)) == pytest.approx(3.0)


def test_policy_evaluation_equals_the_linear_solve():
    # uniform policy: P_pi = 1/2 everywhere, r_pi = [0.5, 1.5]; V = r_pi + 0.5 P_pi V gives mean(V) = 2,
    # V = [1.5, 2.5], and Q = r + 0.5 P V = [[1.75, 1.25], [4.25, 0.75]]
    mdp = _two_states()
    V, Q = evaluate_policy(mdp, np.full((2, 2), 0.5))
    np.testing.assert_allclose(V, [1.5, 2.5], atol=1e-12)
    np.testing.assert_allclose(Q, [[1.75, 1.25], [4.25, 0.75]], atol=1e-12)
    # the optimal policy's values are Q*'s maxima
    V_opt, Q_opt = evaluate_policy(mdp, greedy_policy(Q_STAR))
    np.testing.assert_allclose(V_opt, Q_STAR.max(1), atol=1e-12)
    np.testing.assert_allclose(Q_opt, Q_STAR, atol=1e-12)


def test_no_value_flows_back_from_a_terminal_state():
    # s0: a0 enters the terminal s1 for 5, a1 stays for 1 (worth 1 / (1 - 0.9) = 10 forever). From s1 the
    # dynamics lead back to s0 with reward 100, which an episode never collects.
    P = np.zeros((2, 2, 2))
    P[0, 0, 1] = P[0, 1, 0] = 1.0
    P[1, :, 0] = 1.0
    R = np.zeros((2, 2, 2))
    R[0, 0, 1], R[0, 1, 0], R[1, :, 0] = 5.0, 1.0, 100.0
    mdp = TabularMDP(P=P, R=R, terminal=np.array([False, True]), p0=np.array([1.0, 0.0]), gamma=0.9)
    q = value_iteration(mdp)
    np.testing.assert_allclose(q[0], [5.0, 10.0], atol=1e-8)
    V, _ = evaluate_policy(mdp, np.array([[1.0, 0.0], [1.0, 0.0]]))
    np.testing.assert_allclose(V, [5.0, 0.0], atol=1e-12)


def _chain_for_soft_vi():
    """Deterministic: from either state a0 stays and a1 switches; state reward r = [0, 1]; horizon 2."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    return P, np.array([0.0, 1.0])


def test_soft_value_iteration_is_the_log_sum_exp_backup():
    P, r = _chain_for_soft_vi()
    Q, V, pi = soft_value_iteration(P, r, 2)
    # last step: Q_1(s, a) = r(s), so V_1 = r + log 2
    np.testing.assert_allclose(V[1], r + math.log(2), atol=1e-12)
    # first step from s0: Q_0(s0, a0) = V_1(s0) = log 2, Q_0(s0, a1) = V_1(s1) = 1 + log 2
    np.testing.assert_allclose(Q[0, 0], [math.log(2), 1 + math.log(2)], atol=1e-12)
    assert V[0, 0] == pytest.approx(math.log(math.exp(Q[0, 0, 0]) + math.exp(Q[0, 0, 1])), abs=1e-12)
    # deterministic dynamics: V_0(s0) = log sum over the four action sequences of e^{return} = log(2 + 2e)
    assert V[0, 0] == pytest.approx(math.log(2 + 2 * math.e), abs=1e-12)
    assert pi[0, 0, 1] == pytest.approx(math.e / (1 + math.e), abs=1e-12)
    np.testing.assert_array_equal(V[2], [0.0, 0.0])


def test_finite_horizon_value_iteration_takes_the_hard_maximum():
    P, r = _chain_for_soft_vi()
    V, pi = finite_horizon_value_iteration(P, r, 2)
    # from s0: switch to s1 and collect 1 there; from s1: collect 1 now and stay for 1 more
    np.testing.assert_allclose(V[0], [1.0, 2.0])
    assert pi[0, 0].tolist() == [0.0, 1.0] and pi[0, 1].tolist() == [1.0, 0.0]


def test_state_reward_and_finite_horizon():
    P, r = _chain_for_soft_vi()
    mdp = TabularMDP(P=P, R=r, terminal=np.zeros(2, dtype=bool), p0=np.array([1.0, 0.0]), gamma=1.0, horizon=3)
    np.testing.assert_array_equal(mdp.expected_reward, [[0.0, 0.0], [1.0, 1.0]])
    env = TabularEnv(mdp)
    assert env.horizon == 3
    env.reset(seed=0)
    rewards = []
    for a in (1, 0, 0):  # s0 -> s1 -> s1 -> s1: rewards of the states acted in are 0, 1, 1
        _, reward, terminated, truncated, _ = env.step(a)
        rewards.append(reward)
    assert rewards == [0.0, 1.0, 1.0] and not terminated and truncated
    with pytest.raises(ValueError, match="gamma"):
        value_iteration(mdp)


def test_validation_names_the_field():
    P, r = _chain_for_soft_vi()
    with pytest.raises(ValueError, match="R must be"):
        TabularMDP(P=P, R=np.zeros(3), terminal=np.zeros(2, dtype=bool), p0=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="gamma"):  # an undiscounted problem needs a horizon
        TabularMDP(P=P, R=r, terminal=np.zeros(2, dtype=bool), p0=np.array([1.0, 0.0]), gamma=1.0)
    with pytest.raises(ValueError, match="horizon"):
        TabularMDP(P=P, R=r, terminal=np.zeros(2, dtype=bool), p0=np.array([1.0, 0.0]), gamma=1.0, horizon=0)


def test_the_gridworld_is_a_tabular_mdp():
    env = GridWorldEnv(horizon=7)
    assert isinstance(env, TabularEnv) and env.mdp.horizon == 7 and env.mdp.gamma == 1.0
    assert env.P is env.mdp.P and env.reward is env.mdp.R and not env.mdp.terminal.any()
    V, pi = finite_horizon_value_iteration(env.mdp.P, env.mdp.R, env.mdp.horizon)
    assert V.shape == (8, env.n_states) and pi.shape == (7, env.n_states, env.n_actions)
