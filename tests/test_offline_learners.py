"""Fitted Q-iteration, CQL and behaviour cloning on hand-built MDPs (chapter 2).

The lure: two states, each with a "stop" action (reward 0) and a "go" action that pays -10 in state A and +10
in state B. The data only ever stop in A and go in B. A Q-network shares what it learns about "go" between the
states, so fitted Q-iteration rates going in A (never tried, truly -10) far above stopping; CQL does not.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rl4llm.experiments import run_experiment
from rl4llm.offline.bc import behaviour_cloning, policy_table
from rl4llm.offline.dataset import OfflineDataset, collect_dataset, table_policy
from rl4llm.offline.evaluation import greedy_value_gap, q_errors
from rl4llm.offline.fqi import OfflineQConfig, conservative_q_learning, fitted_q_iteration, q_table, train_offline_q
from rl4llm.offline.tabular import TabularEnv, TabularMDP, cliff_walk, greedy_policy, policy_return, value_iteration

STOP, GO = 0, 1


def lure() -> tuple[TabularMDP, OfflineDataset]:
    P = np.zeros((3, 2, 3))
    P[:, :, 2] = 1.0  # every action ends the episode
    R = np.zeros((3, 2, 3))
    R[0, GO, 2], R[1, GO, 2] = -10.0, 10.0
    mdp = TabularMDP(P=P, R=R, terminal=np.array([False, False, True]), p0=np.array([0.5, 0.5, 0.0]), gamma=0.9)
    n = 20
    data = OfflineDataset(
        observations=np.tile([0, 1], n // 2),
        actions=np.tile([STOP, GO], n // 2),
        rewards=np.tile([0.0, 10.0], n // 2),
        next_observations=np.full(n, 2),
        terminations=np.ones(n, dtype=bool),
        truncations=np.zeros(n, dtype=bool),
    )
    return mdp, data


CONFIG = OfflineQConfig(n_iterations=5, steps_per_iteration=60, batch_size=20)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fqi_overestimates_the_unseen_action_and_cql_does_not(seed):
    mdp, data = lure()
    true_q = np.array([[0.0, -10.0], [0.0, 10.0]])
    assert np.allclose(value_iteration(mdp)[:2], true_q)
    cfg = dataclasses.replace(CONFIG, seed=seed)
    fqi = q_table(fitted_q_iteration(data, spaces.Discrete(3), spaces.Discrete(2), cfg).q_net, 3)
    cql = q_table(conservative_q_learning(data, spaces.Discrete(3), spaces.Discrete(2), cfg, alpha=1.0).q_net, 3)
    # both fit what the data shows
    assert abs(fqi[0, STOP]) < 0.5 and abs(fqi[1, GO] - 10) < 0.5
    assert abs(cql[0, STOP]) < 0.5 and abs(cql[1, GO] - 10) < 0.5
    # FQI: "go" in A (truly -10) is rated above stopping, so its greedy policy goes, and over-estimates
    assert fqi[0, GO] > fqi[0, STOP] + 1.0
    gap = greedy_value_gap(mdp, fqi)
    assert gap["true"] == pytest.approx(0.5 * (-10) + 0.5 * 10)
    assert gap["overestimation"] > 5.0
    # CQL: the unseen action is pushed below the logged one; the greedy policy is optimal and not over-rated
    assert cql[0, GO] < cql[0, STOP] - 2.0
    gap = greedy_value_gap(mdp, cql)
    assert gap["true"] == pytest.approx(5.0)
    assert abs(gap["overestimation"]) < 0.5
    # the errors of the never-taken pairs (A, go) and (B, stop): CQL's error on (A, go) is far smaller
    counts = data.action_counts(3, 2)
    fqi_err = q_errors(fqi, value_iteration(mdp), counts, mdp.terminal)["unseen"]
    cql_err = q_errors(cql, value_iteration(mdp), counts, mdp.terminal)["unseen"]
    assert fqi_err.shape == (2,) and fqi_err[0] > 10 and cql_err[0] < fqi_err[0] - 5


def test_truncation_bootstraps_and_termination_does_not():
    # one action; s0 -> s1 (reward 0), s1 -> end (reward 1). Q(s0) = gamma * 1 if s0's episode was only cut.
    def data(terminated_first: bool) -> OfflineDataset:
        return OfflineDataset(
            observations=np.array([0, 1] * 8),
            actions=np.zeros(16, dtype=np.int64),
            rewards=np.array([0.0, 1.0] * 8),
            next_observations=np.array([1, 2] * 8),
            terminations=np.array([terminated_first, True] * 8),
            truncations=np.array([not terminated_first, False] * 8),
        )

    cfg = OfflineQConfig(n_iterations=6, steps_per_iteration=60, batch_size=16, gamma=0.9)
    for terminated_first, expected in ((False, 0.9), (True, 0.0)):
        q = q_table(train_offline_q(data(terminated_first), spaces.Discrete(3), spaces.Discrete(1), cfg).q_net, 3)
        assert q[0, 0] == pytest.approx(expected, abs=0.1)
        assert q[1, 0] == pytest.approx(1.0, abs=0.1)


def test_bc_recovers_the_expert_with_full_coverage():
    mdp = cliff_walk()
    starts = (~mdp.terminal).astype(float)
    mdp = dataclasses.replace(mdp, p0=starts / starts.sum())  # episodes start everywhere: full state coverage
    expert = greedy_policy(value_iteration(mdp))
    env = TabularEnv(mdp, horizon=30)
    data = collect_dataset(env, table_policy(expert), 80, seed=0)
    counts = data.action_counts(mdp.n_states, mdp.n_actions)
    assert (counts.sum(1) > 0)[~mdp.terminal].all()
    agent = behaviour_cloning(
        data.observations,
        data.actions,
        env.observation_space,
        env.action_space,
        steps=300,
        batch_size=256,
        lr=3e-3,
        seed=0,
    )
    cloned = policy_table(agent, mdp.n_states)
    np.testing.assert_array_equal(cloned[~mdp.terminal].argmax(1), expert[~mdp.terminal].argmax(1))
    assert policy_return(mdp, cloned) == pytest.approx(policy_return(mdp, expert))


def test_offline_q_is_reproducible_and_validates():
    mdp, data = lure()
    cfg = OfflineQConfig(n_iterations=2, steps_per_iteration=10, seed=3)
    a = q_table(train_offline_q(data, spaces.Discrete(3), spaces.Discrete(2), cfg).q_net, 3)
    b = q_table(train_offline_q(data, spaces.Discrete(3), spaces.Discrete(2), cfg).q_net, 3)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="gamma"):
        OfflineQConfig(gamma=1.0)
    with pytest.raises(ValueError, match="cql_alpha"):
        OfflineQConfig(cql_alpha=-1.0)
    with pytest.raises(ValueError, match="action_space.n"):
        train_offline_q(data, spaces.Discrete(3), spaces.Discrete(1), cfg)
    with pytest.raises(ValueError, match="alpha"):
        conservative_q_learning(data, spaces.Discrete(3), spaces.Discrete(2), cfg, alpha=0.0)
    with pytest.raises(ValueError, match="agree in N"):
        behaviour_cloning([1, 2], [0], spaces.Discrete(3), spaces.Discrete(2))
    with pytest.raises(ValueError, match="actions must be in"):
        behaviour_cloning([1, 2], [0, 2], spaces.Discrete(3), spaces.Discrete(2))
    with pytest.raises(ValueError, match="batch_size"):
        behaviour_cloning([1, 2], [0, 1], spaces.Discrete(3), spaces.Discrete(2), batch_size=0)


def test_offline_rl_experiment_contract():
    small = {"n_seeds": 1, "n_iterations": 2, "steps_per_iteration": 5, "n_episodes": 5, "bc_steps": 5}
    a = run_experiment("offline-rl", seed=1, **small)
    b = run_experiment("offline-rl", seed=1, **small)
    for key in (
        "behaviour_return",
        "bc_return",
        "fqi_return",
        "cql_return",
        "fqi_overestimation",
        "cql_overestimation",
    ):
        assert key in a.metrics and a.metrics[key] == b.metrics[key]
    assert a.metrics["optimal_return"] == pytest.approx(10 * 0.95**7)
    assert len(a.curves) == 2 and "fqi_overestimation" in a.curves[0]
    with pytest.raises(ValueError, match="epsilon"):
        run_experiment("offline-rl", epsilon=1.5)
    with pytest.raises(ValueError, match="cql_alpha"):
        run_experiment("offline-cartpole", cql_alpha=0.0)


@pytest.mark.slow
def test_offline_rl_default_fqi_overestimates_cql_corrects():
    m = run_experiment("offline-rl").metrics
    safe = 10 * 0.95**11
    assert m["behaviour_return"] < safe  # the noise costs the behaviour policy
    assert m["bc_return"] == pytest.approx(safe, abs=1e-6)  # BC copies the route without the noise
    assert m["fqi_overestimation"] > 5 and m["fqi_return"] < m["behaviour_return"]
    assert m["cql_overestimation"] < 2 and m["cql_overestimation"] < m["fqi_overestimation"] / 4
    assert m["cql_return"] >= m["behaviour_return"]
    assert m["fqi_unseen_q_error"] > 0 > m["cql_unseen_q_error"]


@pytest.mark.slow
def test_fresh_data_from_the_learner_removes_the_overestimation():
    from rl4llm.offline.fresh_data import fqi_with_more_data
    from rl4llm.offline.tabular import epsilon_greedy_probs, safe_route

    mdp = cliff_walk()
    env = TabularEnv(mdp, horizon=50)
    behaviour = epsilon_greedy_probs(safe_route(mdp), 4, 0.1)
    data = collect_dataset(env, table_policy(behaviour), 50, seed=0)
    history = fqi_with_more_data(
        env, data, behaviour, "own", n_rounds=4, episodes_per_round=10, config=OfflineQConfig(n_iterations=10, seed=0)
    )
    assert history[0]["overestimation"] > 5
    assert abs(history[-1]["overestimation"]) < 0.5 and history[-1]["true"] > 5
    assert history[-1]["n_transitions"] > history[0]["n_transitions"]


@pytest.mark.slow
def test_offline_cartpole_fqi_collapses_cql_keeps_the_pole_up():
    m = run_experiment("offline-cartpole").metrics
    assert m["behaviour_return"] > 100
    assert m["fqi_return"] < 50 and m["fqi_overestimation"] > 10
    assert m["cql_return"] > 0.7 * m["behaviour_return"] and m["cql_overestimation"] < 5
    assert m["fqi_predicted"] <= m["max_discounted_value"] + 5


def test_unsupported_greedy_share_and_greedy_agreement_by_hand():
    from rl4llm.offline.evaluation import greedy_agreement, unsupported_greedy_share

    q = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 5.0], [9.0, 9.5]])
    counts = np.array([[4, 0], [2, 1], [0, 3], [0, 0]])  # state 3 is never visited
    # greedy: 1 (never taken at state 0), 0 (taken), 1 (taken) -> 1 of the 3 visited states
    assert unsupported_greedy_share(q, counts) == pytest.approx(1 / 3)
    assert unsupported_greedy_share(q, counts, terminal=np.array([True, False, False, False])) == 0.0
    with pytest.raises(ValueError, match="visit no"):
        unsupported_greedy_share(q, np.zeros((4, 2)))
    _, data = lure()  # logged: stop in A, go in B
    from rl4llm.rl import QNetwork

    net = QNetwork(spaces.Discrete(3), spaces.Discrete(2))
    with torch.no_grad():  # make the network's greedy action "go" everywhere
        net.q[-1].weight.zero_()
        net.q[-1].bias.copy_(torch.tensor([0.0, 1.0]))
    assert greedy_agreement(net, data) == pytest.approx(0.5)
