"""Behaviour cloning (book section 3.1): supervised learning of the expert's actions on the expert's states.

.. math::  \\hat\\pi_{\\text{BC}} = \\arg\\min_{\\pi} \\; \\mathbb E_{s \\sim d_{\\pi^*}} \\big[\\ell(s, \\pi)\\big]

The states come from the expert's own trajectories :math:`d_{\\pi^*}` (Pomerleau 1989). At test time the learner
visits :math:`d_{\\hat\\pi}` instead; the gap between the two distributions is where compounding error comes from.
Supervised fine-tuning of a language model is this algorithm with tokens as actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

from rl4llm.imitation.policy import LinearSoftmaxPolicy, fit_softmax_policy, one_hot_featurizer
from rl4llm.utils import check_positive_int

__all__ = ["Expert", "collect_expert_demonstrations", "behaviour_cloning"]

#: An expert is queried with the environment (it may read privileged state) and the current observation.
Expert = Callable[[gymnasium.Env, Any], int]


def collect_expert_demonstrations(env: gymnasium.Env, expert: Expert, n_episodes: int,
                                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Roll out the expert for ``n_episodes``; return its observations ``[N, ...]`` and actions ``[N]``.

    Episode ``i`` is reset with seed ``seed + i``.
    """
    check_positive_int("n_episodes", n_episodes)
    check_positive_int("seed", seed, 0)
    if not callable(expert):
        raise TypeError(f"expert must be callable expert(env, obs) -> action, got {type(expert).__name__}")
    obs_list, act_list = [], []
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed + ep)
        done = False
        while not done:
            a = int(expert(env, obs))
            obs_list.append(np.asarray(obs))
            act_list.append(a)
            obs, _, terminated, truncated, _ = env.step(a)
            done = terminated or truncated
    return np.stack(obs_list), np.asarray(act_list, dtype=np.int64)


def behaviour_cloning(env: gymnasium.Env, expert: Expert, n_episodes: int, seed: int = 0,
                      featurize: Callable[[np.ndarray], np.ndarray] | None = None,
                      l2: float = 1e-3) -> LinearSoftmaxPolicy:
    """Behaviour cloning: fit a :class:`~rl4llm.imitation.policy.LinearSoftmaxPolicy` on expert demonstrations.

    Args:
        env: a gymnasium env with a ``Discrete`` action space.
        expert: ``expert(env, obs) -> action``.
        n_episodes: number of expert episodes to record (>= 1).
        seed: seeds the episodes (episode ``i`` is reset with ``seed + i``).
        featurize: observation -> feature vector (default: :func:`one_hot_featurizer` of the observation space).
        l2: L2 penalty of the classifier.
    """
    featurize = featurize or one_hot_featurizer(env.observation_space)
    obs, acts = collect_expert_demonstrations(env, expert, n_episodes, seed)
    feats = np.stack([featurize(o) for o in obs])
    return fit_softmax_policy(feats, acts, int(env.action_space.n), featurize, l2=l2)
