"""Chapter 4.1: exact MaxEnt IRL (soft value iteration, visitation frequencies, feature-matching gradient)."""

import itertools
import math

import numpy as np
import pytest

from rl4llm.envs import GridWorldEnv
from rl4llm.irl.maxent import (
    feature_expectations,
    maxent_gradient,
    maxent_irl,
    soft_value_iteration,
    state_visitation_frequencies,
)

# A deterministic 2-state MDP: action 0 stays, action 1 switches.
P_DET = np.zeros((2, 2, 2))
P_DET[0, 0, 0] = P_DET[1, 0, 1] = 1.0
P_DET[0, 1, 1] = P_DET[1, 1, 0] = 1.0

# A stochastic 2-state MDP (rows sum to one).
P_STOCH = np.array([[[0.9, 0.1], [0.3, 0.7]], [[0.2, 0.8], [0.6, 0.4]]])


def _trajectories(P, policy, p0):
    """Enumerate every (states, actions) path of H steps with its probability (brute force)."""
    horizon, n_states, n_actions = policy.shape
    for states in itertools.product(range(n_states), repeat=horizon):
        for actions in itertools.product(range(n_actions), repeat=horizon):
            prob = p0[states[0]]
            for t in range(horizon):
                prob *= policy[t, states[t], actions[t]]
                if t + 1 < horizon:
                    prob *= P[states[t], actions[t], states[t + 1]]
            if prob > 0:
                yield states, actions, prob


def test_soft_value_iteration_matches_enumeration_deterministic():
    reward = np.array([0.3, -0.7])
    horizon = 4
    _, V, policy = soft_value_iteration(P_DET, reward, horizon)
    for s0 in (0, 1):
        # V_0(s0) = log sum over all action sequences of exp(return)
        returns = []
        for actions in itertools.product(range(2), repeat=horizon):
            s, total = s0, 0.0
            for a in actions:
                total += reward[s]
                s = int(np.argmax(P_DET[s, a]))
            returns.append(total)
        assert V[0, s0] == pytest.approx(math.log(sum(math.exp(r) for r in returns)), rel=1e-10)
    # the policy's path distribution is exp(R(tau)) / Z, the MaxEnt distribution
    p0 = np.array([1.0, 0.0])
    z = math.exp(V[0, 0])
    for states, actions, prob in _trajectories(P_DET, policy, p0):
        assert prob == pytest.approx(math.exp(sum(reward[s] for s in states)) / z, rel=1e-9)


def test_soft_value_iteration_is_the_best_entropy_regularised_return_stochastic():
    reward = np.array([1.0, -0.5])
    horizon = 3
    p0 = np.array([0.4, 0.6])
    _, V, policy = soft_value_iteration(P_STOCH, reward, horizon)

    def regularised_return(pi):
        total = 0.0
        for states, actions, prob in _trajectories(P_STOCH, pi, p0):
            total += prob * sum(reward[s] - math.log(pi[t, s, a]) for t, (s, a) in enumerate(zip(states, actions)))
        return total

    # V_0 is the expected return plus the policy's entropy, computed over all trajectories ...
    assert p0 @ V[0] == pytest.approx(regularised_return(policy), rel=1e-10)
    # ... and no other policy does better
    rng = np.random.default_rng(0)
    for _ in range(20):
        other = rng.dirichlet(np.ones(2), size=(horizon, 2))
        assert regularised_return(other) <= p0 @ V[0] + 1e-12


def test_visitation_frequencies_match_enumeration_and_sum_to_horizon():
    rng = np.random.default_rng(1)
    horizon = 4
    policy = rng.dirichlet(np.ones(2), size=(horizon, 2))
    p0 = np.array([0.25, 0.75])
    D, d = state_visitation_frequencies(P_STOCH, policy, p0, return_per_step=True)
    brute = np.zeros(2)
    for states, _, prob in _trajectories(P_STOCH, policy, p0):
        for s in states:
            brute[s] += prob
    np.testing.assert_allclose(D, brute, rtol=1e-10)
    assert D.sum() == pytest.approx(horizon)
    np.testing.assert_allclose(d.sum(axis=1), np.ones(horizon))
    env = GridWorldEnv(horizon=13)
    _, _, pi = soft_value_iteration(env.P, env.reward, env.horizon)
    assert state_visitation_frequencies(env.P, pi, env.p0).sum() == pytest.approx(13)


def test_maxent_gradient_vanishes_at_the_experts_reward_hand_built():
    # Deterministic 2-state MDP, start in state 0, horizon 2. Only the second state s_1 depends on theta:
    # P(s_1 = 0) = pi_0(stay | 0) = e^{r0} / (e^{r0} + e^{r1}). With r = (0, log 3) that is 1/4, so the expected
    # visits are D = (1 + 1/4, 3/4) = (1.25, 0.75). An expert with these feature counts has gradient 0 there.
    features = np.eye(2)
    p0 = np.array([1.0, 0.0])
    expert_counts = np.array([1.25, 0.75])
    theta_star = np.array([0.0, math.log(3.0)])
    for theta in (theta_star, theta_star + 2.5):  # shifting the reward changes nothing: it is not identified
        _, _, pi = soft_value_iteration(P_DET, features @ theta, 2)
        D = state_visitation_frequencies(P_DET, pi, p0)
        np.testing.assert_allclose(D, expert_counts, atol=1e-12)
        np.testing.assert_allclose(maxent_gradient(expert_counts, features, D), 0.0, atol=1e-12)
    # at theta = 0 the model visits (1.5, 0.5): the gradient points towards the expert
    _, _, pi = soft_value_iteration(P_DET, np.zeros(2), 2)
    grad = maxent_gradient(expert_counts, features, state_visitation_frequencies(P_DET, pi, p0))
    np.testing.assert_allclose(grad, [-0.25, 0.25], atol=1e-12)


def test_maxent_gradient_is_the_gradient_of_the_objective():
    env = GridWorldEnv(horizon=8)
    rng = np.random.default_rng(2)
    mu_e = rng.uniform(0, 3, size=3)
    theta = rng.normal(size=3)

    def objective(th):
        _, V, _ = soft_value_iteration(env.P, env.features @ th, env.horizon)
        return th @ mu_e - env.p0 @ V[0]

    _, _, pi = soft_value_iteration(env.P, env.features @ theta, env.horizon)
    grad = maxent_gradient(mu_e, env.features, state_visitation_frequencies(env.P, pi, env.p0))
    eps = 1e-6
    numeric = [(objective(theta + eps * e) - objective(theta - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_feature_expectations_hand_computed():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    states = np.array([[0, 2, 2], [1, 1, 0]])
    # demo 1: (1,0)+(1,1)+(1,1) = (3,2); demo 2: (0,1)+(0,1)+(1,0) = (1,2); mean (2, 2)
    np.testing.assert_allclose(feature_expectations(states, features), [2.0, 2.0])


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(P=np.ones((2, 2, 2))), "P must hold probabilities"),
        (dict(P=np.ones((2, 2))), "P must have 3 dimensions"),
        (dict(reward=np.zeros(3)), r"reward must have shape \[S\]"),
        (dict(horizon=0), "horizon must be an int >= 1"),
    ],
)
def test_soft_value_iteration_validates(bad, match):
    args = dict(P=P_DET, reward=np.zeros(2), horizon=2) | bad
    with pytest.raises(ValueError, match=match):
        soft_value_iteration(**args)


def test_validation_errors():
    with pytest.raises(TypeError, match="horizon must be an int"):
        soft_value_iteration(P_DET, np.zeros(2), 2.5)
    with pytest.raises(ValueError, match="p0 must be a probability distribution"):
        state_visitation_frequencies(P_DET, np.full((2, 2, 2), 0.5), np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="policy must hold probabilities"):
        state_visitation_frequencies(P_DET, np.ones((2, 2, 2)), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"expert_features must have shape \[d\]"):
        maxent_gradient(np.zeros(3), np.eye(2), np.ones(2))
    with pytest.raises(ValueError, match=r"states must be in \[0, 1\]"):
        feature_expectations(np.array([[0, 2]]), np.eye(2))
    with pytest.raises(ValueError, match=r"lr must be in \(0, inf\)"):
        maxent_irl(P_DET, np.eye(2), np.array([1.0, 0.0]), np.array([[0, 1]]), lr=0.0)


@pytest.mark.slow
def test_maxent_irl_recovers_a_reward_whose_optimal_policy_matches_the_expert():
    from rl4llm.experiments import run_experiment

    result = run_experiment("maxent-irl", n_demos=20, seed=3)
    m = result.metrics
    assert m["irl_return"] == pytest.approx(m["expert_return"], rel=0.01)
    assert m["reward_correlation"] > 0.95
    assert m["irl_return"] > m["random_return"] + 10
    # swamp < floor < goal, as in the true reward (the learned values are shifted: only differences matter)
    assert m["theta_swamp"] < m["theta_floor"] < m["theta_goal"]
