"""Exact evaluation and sampling on a tabular MDP with a known transition matrix (book section 4.1).

The tools around maximum-entropy IRL (:mod:`rl4llm.irl.maxent`) on the gridworld: the expert is the optimal
policy of the true reward (:func:`rl4llm.envs.tabular.finite_horizon_value_iteration`), demonstrations are
sampled from it (:func:`sample_trajectories`), behaviour cloning is the tabular classifier
:func:`rl4llm.imitation.bc.tabular_bc`, and every policy is scored exactly, without sampling noise, by
:func:`expected_return`:

.. math::  J(\\pi) = \\mathbb E_\\pi\\Big[\\sum_{t=0}^{H-1} r(s_t)\\Big] = \\sum_s D_\\pi(s)\\, r(s),

with :math:`D_\\pi` the expected state visits of :func:`~rl4llm.irl.maxent.state_visitation_frequencies`.
Policies are time-dependent arrays ``policy[t, s, a]`` of shape ``[H, S, A]``.
"""

from __future__ import annotations

import numpy as np

from rl4llm.envs.tabular import _check_reward, check_mdp
from rl4llm.irl.maxent import _check_policy, state_visitation_frequencies
from rl4llm.utils import check_positive_int

__all__ = ["expected_return", "sample_trajectories", "uniform_policy"]


def uniform_policy(horizon: int, n_states: int, n_actions: int) -> np.ndarray:
    """The uniformly random policy, ``[H, S, A]``."""
    horizon = check_positive_int("horizon", horizon)
    n_states = check_positive_int("n_states", n_states)
    n_actions = check_positive_int("n_actions", n_actions)
    return np.full((horizon, n_states, n_actions), 1.0 / n_actions)


def expected_return(P, policy, p0, reward) -> float:
    """The exact expected return :math:`\\sum_s D_\\pi(s)\\,r(s)` of a policy ``[H, S, A]``."""
    P, p0 = check_mdp(P, p0)
    reward = _check_reward(reward, P.shape[0])
    return float(state_visitation_frequencies(P, policy, p0) @ reward)


def sample_trajectories(P, policy, p0, n: int, rng: np.random.Generator | int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``n`` episodes of ``H`` steps; return ``(states [n, H], actions [n, H])`` as int64.

    ``s_0 ~ p0``, ``a_t ~ policy[t, s_t]``, ``s_{t+1} ~ P[s_t, a_t]``. ``rng`` is a NumPy Generator or a seed.
    """
    P, p0 = check_mdp(P, p0)
    policy = _check_policy(policy, None, P.shape[0], P.shape[1])
    n = check_positive_int("n", n)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(check_positive_int("rng", rng, 0))
    horizon = policy.shape[0]
    states = np.zeros((n, horizon), dtype=np.int64)
    actions = np.zeros((n, horizon), dtype=np.int64)
    cum_p0 = np.cumsum(p0)
    s = np.minimum(np.searchsorted(cum_p0, rng.random(n), side="right"), P.shape[0] - 1)
    for t in range(horizon):
        states[:, t] = s
        cum_pi = np.cumsum(policy[t, s], axis=1)
        a = np.minimum((rng.random((n, 1)) > cum_pi).sum(axis=1), P.shape[1] - 1)
        actions[:, t] = a
        cum_P = np.cumsum(P[s, a], axis=1)
        s = np.minimum((rng.random((n, 1)) > cum_P).sum(axis=1), P.shape[0] - 1)
    return states, actions
