"""Measuring over-estimation: what a learned Q-function predicts against what its greedy policy really gets.

A Q-learner's greedy policy :math:`\\hat\\pi(s) = \\arg\\max_a \\hat Q(s, a)` comes with a prediction of its own
value, :math:`\\max_a \\hat Q(s, a)`. The **over-estimation** is that prediction minus the policy's true value,

.. math::  \\Delta = \\mathbb E_{s_0 \\sim p_0}\\big[\\max_a \\hat Q(s_0, a) - V^{\\hat\\pi}(s_0)\\big],

computed exactly on a tabular MDP (:func:`greedy_value_gap`, with :func:`rl4llm.offline.tabular.evaluate_policy`)
and by Monte-Carlo rollouts elsewhere (:func:`monte_carlo_value_gap`, e.g. CartPole). :math:`\\Delta > 0` means
the learner believes its policy is better than it is (book section 2.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
import torch

from rl4llm.offline.dataset import OfflineDataset
from rl4llm.offline.fqi import q_table
from rl4llm.offline.tabular import TabularMDP, evaluate_policy, greedy_policy
from rl4llm.rl.dqn import QNetwork
from rl4llm.utils import check_positive_int, check_range

__all__ = [
    "greedy_value_gap",
    "tabular_tracker",
    "q_errors",
    "overrated_pairs",
    "unsupported_greedy_share",
    "greedy_agreement",
    "monte_carlo_value_gap",
]


def greedy_value_gap(mdp: TabularMDP, q_values: np.ndarray) -> dict[str, float]:
    """Exact prediction, true value and over-estimation of the greedy policy of ``q_values`` (``[S, A]``).

    Returns ``predicted`` :math:`= \\sum_s p_0(s) \\max_a \\hat Q(s, a)`, ``true`` :math:`= J(\\hat\\pi) =
    \\sum_s p_0(s) V^{\\hat\\pi}(s)` and ``overestimation`` = predicted - true.
    """
    q_values = np.asarray(q_values, dtype=np.float64)
    if q_values.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"q_values must be [S, A] = {(mdp.n_states, mdp.n_actions)}, got {q_values.shape}")
    V, _ = evaluate_policy(mdp, greedy_policy(q_values))
    predicted = float(mdp.p0 @ q_values.max(1))
    true = float(mdp.p0 @ V)
    return {"predicted": predicted, "true": true, "overestimation": predicted - true}


def tabular_tracker(mdp: TabularMDP, states: int | np.ndarray) -> Callable[[int, QNetwork], dict[str, float]]:
    """A ``callback`` for :func:`rl4llm.offline.fqi.train_offline_q` that logs :func:`greedy_value_gap` per iteration.

    ``states``: what the network reads, the number of states or the ``[S, d]`` feature table.
    """

    def callback(iteration: int, q_net: QNetwork) -> dict[str, float]:
        return greedy_value_gap(mdp, q_table(q_net, states))

    return callback


def q_errors(
    q_values: np.ndarray, q_true: np.ndarray, counts: np.ndarray, terminal: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Errors :math:`\\hat Q(s, a) - Q(s, a)` of every pair at the states the data visits, split by coverage.

    Args:
        q_values, q_true: ``[S, A]`` estimate and reference (e.g. :math:`Q^*`).
        counts: ``[S, A]`` how often the dataset holds each pair (:meth:`OfflineDataset.action_counts`).
        terminal: optional ``[S]`` mask of terminal states, left out.
    Returns:
        ``"seen"`` and ``"unseen"``: 1-D arrays of errors of the pairs with ``N(s, a) > 0`` and ``= 0`` at visited
        states; ``"counts"``/``"errors"``: all visited pairs (for a scatter against the count).
    """
    q_values, q_true, counts = (np.asarray(x) for x in (q_values, q_true, counts))
    if not q_values.shape == q_true.shape == counts.shape or q_values.ndim != 2:
        raise ValueError(
            f"q_values, q_true and counts must all be [S, A], got {q_values.shape}, {q_true.shape}, {counts.shape}"
        )
    visited = counts.sum(1) > 0
    if terminal is not None:
        visited &= ~np.asarray(terminal, dtype=bool)
    err = (q_values - q_true)[visited]
    cnt = counts[visited]
    return {"seen": err[cnt > 0], "unseen": err[cnt == 0], "counts": cnt.ravel(), "errors": err.ravel()}


def overrated_pairs(
    mdp: TabularMDP, q_values: np.ndarray, q_true: np.ndarray, counts: np.ndarray, k: int = 5
) -> list[dict[str, Any]]:
    """The ``k`` state-action pairs at visited states whose estimate exceeds the reference by the most.

    Each row: ``state`` (and ``row``/``col`` for grid MDPs), ``action`` (its name if the MDP has names),
    ``count`` in the data, ``estimate`` :math:`\\hat Q`, ``true`` reference, ``error`` = estimate - true.
    """
    k = check_positive_int("k", k)
    q_values, q_true, counts = (np.asarray(x) for x in (q_values, q_true, counts))
    if not q_values.shape == q_true.shape == counts.shape == (mdp.n_states, mdp.n_actions):
        raise ValueError(f"q_values, q_true and counts must all be [S, A] = {(mdp.n_states, mdp.n_actions)}")
    visited = (counts.sum(1) > 0) & ~mdp.terminal
    error = np.where(visited[:, None], q_values - q_true, -np.inf)
    rows = []
    for flat in np.argsort(-error, axis=None)[:k]:
        s, a = divmod(int(flat), mdp.n_actions)
        if not np.isfinite(error[s, a]):
            break
        row: dict[str, Any] = {"state": s}
        if mdp.shape is not None:
            row["row"], row["col"] = divmod(s, mdp.shape[1])
        row.update(
            {
                "action": mdp.names[a] if mdp.names else a,
                "count": int(counts[s, a]),
                "estimate": float(q_values[s, a]),
                "true": float(q_true[s, a]),
                "error": float(error[s, a]),
            }
        )
        rows.append(row)
    return rows


def unsupported_greedy_share(q_values: np.ndarray, counts: np.ndarray, terminal: np.ndarray | None = None) -> float:
    """The share of the data's visited states at which the greedy action of ``q_values`` was never taken there.

    Those are the states where the max of a Bellman target, and the greedy policy, rely on a pure guess.
    """
    q_values, counts = np.asarray(q_values), np.asarray(counts)
    if q_values.shape != counts.shape or q_values.ndim != 2:
        raise ValueError(f"q_values and counts must both be [S, A], got {q_values.shape} and {counts.shape}")
    visited = counts.sum(1) > 0
    if terminal is not None:
        visited &= ~np.asarray(terminal, dtype=bool)
    if not visited.any():
        raise ValueError("counts visit no (non-terminal) state")
    greedy = q_values.argmax(1)
    return float(np.mean(counts[np.flatnonzero(visited), greedy[visited]] == 0))


def greedy_agreement(q_net: QNetwork, dataset: OfflineDataset) -> float:
    """The fraction of logged transitions whose action is the network's greedy action at that observation."""
    if not isinstance(dataset, OfflineDataset):
        raise TypeError(f"dataset must be an OfflineDataset, got {type(dataset).__name__}")
    with torch.no_grad():
        greedy = q_net(torch.as_tensor(dataset.observations)).argmax(1).numpy()
    return float(np.mean(greedy == dataset.actions))


def monte_carlo_value_gap(
    env: gymnasium.Env, q_net: QNetwork, n_episodes: int = 10, gamma: float = 0.98, seed: int = 0
) -> dict[str, float]:
    """Run the greedy policy of ``q_net``; compare :math:`\\max_a \\hat Q(s_0, a)` with the discounted return.

    Episode ``i`` starts from ``env.reset(seed=seed + i)``. Returns the means of ``predicted``, ``true`` (the
    discounted return :math:`\\sum_t \\gamma^t r_t`, an unbiased estimate of :math:`V^{\\hat\\pi}(s_0)`),
    ``overestimation`` (their difference) and ``return`` (the undiscounted episode return).
    """
    n_episodes = check_positive_int("n_episodes", n_episodes)
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    seed = check_positive_int("seed", seed, 0)
    predicted, discounted, returns = [], [], []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        with torch.no_grad():
            predicted.append(float(q_net(torch.as_tensor(np.asarray(obs))[None]).max()))
        total, disc, discount, done = 0.0, 0.0, 1.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(q_net.act(obs))
            total += float(reward)
            disc += discount * float(reward)
            discount *= gamma
            done = terminated or truncated
        discounted.append(disc)
        returns.append(total)
    out = {
        "predicted": float(np.mean(predicted)),
        "true": float(np.mean(discounted)),
        "return": float(np.mean(returns)),
    }
    out["overestimation"] = out["predicted"] - out["true"]
    return out
