"""Behaviour cloning (book section 3.1): supervised learning of the expert's actions on the expert's states.

.. math::  \\hat\\pi_{\\text{BC}} = \\arg\\min_{\\pi} \\; \\mathbb E_{s \\sim d_{\\pi^*}} \\big[\\ell(s, \\pi)\\big]

The states come from the expert's own trajectories :math:`d_{\\pi^*}` (Pomerleau 1989). At test time the learner
visits :math:`d_{\\hat\\pi}` instead; the gap between the two distributions is where compounding error comes from.
Supervised fine-tuning of a language model is this algorithm with tokens as actions.

* :func:`behaviour_cloning`: the package's behaviour-cloning routine for a neural policy: cross-entropy of the
  demonstrated actions under the actor of a fresh :class:`~rl4llm.rl.ActorCritic` (PPO's own network), by Adam
  on minibatches or on the whole set. Chapter 2 clones a logged behaviour policy with it, chapter 4 an expert's
  demonstrations;
* :func:`clone_expert`: records an expert on any discrete environment and fits the linear softmax classifier of
  :mod:`rl4llm.imitation.policy` (convex, exact): the walker of chapter 3's tightrope, whose costs the theory
  predicts;
* :func:`tabular_bc`: the maximum-likelihood clone of a tabular MDP, the demonstrated action frequencies in each
  state (chapter 4's gridworld).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F

from rl4llm.imitation.policy import LinearSoftmaxPolicy, fit_softmax_policy, one_hot_featurizer
from rl4llm.rl.agent import ActorCritic
from rl4llm.utils import check_positive_int, check_range, progress, set_seed, set_torch_threads

__all__ = ["Expert", "collect_expert_demonstrations", "behaviour_cloning", "clone_expert", "tabular_bc"]

#: An expert is queried with the environment (it may read privileged state) and the current observation.
Expert = Callable[[gymnasium.Env, Any], int]


def collect_expert_demonstrations(
    env: gymnasium.Env, expert: Expert, n_episodes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
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


def behaviour_cloning(
    obs,
    actions,
    observation_space: gymnasium.Space,
    action_space: gymnasium.Space,
    *,
    hidden: int = 64,
    steps: int = 1000,
    batch_size: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    torch_threads: int = 1,
    desc: str = "behaviour cloning",
) -> ActorCritic:
    """Behaviour cloning: fit :math:`\\pi_\\theta(a \\mid s)` to demonstrated pairs by cross-entropy; return the agent.

    .. math::  \\min_\\theta\\; -\\frac1N \\sum_{i=1}^N \\log \\pi_\\theta(a_i \\mid s_i)

    The policy is the actor of a fresh :class:`~rl4llm.rl.ActorCritic` (its critic stays untrained), so the clone
    is evaluated like any PPO agent; ``agent.act(obs, deterministic=True)`` takes its most likely action.

    Args:
        obs: ``[N, ...]`` demonstrated observations (state indices for a ``Discrete`` space, else float features).
        actions: ``[N]`` demonstrated actions, integers below ``action_space.n``.
        observation_space, action_space: the environment's spaces (they size the network).
        hidden: width of the network's hidden layers.
        steps: Adam steps, >= 1.
        batch_size: pairs per step, drawn with replacement (``torch.randint`` with a generator seeded by
            ``seed``); ``None``: every step uses all ``N`` pairs (full-batch).
        lr, weight_decay: Adam's step size (> 0) and L2 weight decay (>= 0).
        seed: seeds the network's initialisation and the minibatches.
        torch_threads: threads for torch (tiny networks are fastest on one).
        desc: the progress bar's label.
    """
    obs_t = torch.as_tensor(np.asarray(obs))
    if obs_t.is_floating_point():
        obs_t = obs_t.float()
    act_t = torch.as_tensor(np.asarray(actions), dtype=torch.long)
    if obs_t.shape[0] == 0 or act_t.shape != (obs_t.shape[0],):
        raise ValueError(
            f"obs [N, ...] and actions [N] must be non-empty and agree in N, got {tuple(obs_t.shape)} "
            f"and {tuple(act_t.shape)}"
        )
    if int(act_t.min()) < 0 or int(act_t.max()) >= int(action_space.n):
        raise ValueError(f"actions must be in [0, {int(action_space.n) - 1}] (action_space.n = {action_space.n})")
    hidden = check_positive_int("hidden", hidden)
    steps = check_positive_int("steps", steps)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    weight_decay = check_range("weight_decay", weight_decay, 0.0, None)
    seed = check_positive_int("seed", seed, 0)
    set_torch_threads(torch_threads)
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    agent = ActorCritic(observation_space, action_space, hidden=hidden)
    optimizer = torch.optim.Adam(agent.actor.parameters(), lr=lr, weight_decay=weight_decay)
    n = obs_t.shape[0]
    for _ in progress(range(steps), desc=desc):
        if batch_size is None:
            loss = F.cross_entropy(agent.logits(obs_t), act_t)
        else:
            idx = torch.randint(n, (min(batch_size, n),), generator=gen)
            loss = F.cross_entropy(agent.logits(obs_t[idx]), act_t[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return agent


def clone_expert(
    env: gymnasium.Env,
    expert: Expert,
    n_episodes: int,
    seed: int = 0,
    featurize: Callable[[np.ndarray], np.ndarray] | None = None,
    l2: float = 1e-3,
) -> LinearSoftmaxPolicy:
    """Behaviour cloning of an expert with a linear learner: record ``n_episodes`` of the expert, then fit a
    :class:`~rl4llm.imitation.policy.LinearSoftmaxPolicy` to its observations and actions.

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


def tabular_bc(states, actions, n_states: int, n_actions: int, horizon: int, smoothing: float = 0.0) -> np.ndarray:
    """Behaviour cloning for a tabular MDP: the demonstrated action frequencies in each state.

    .. math::  \\hat\\pi(a \\mid s) = \\frac{N(s, a) + \\alpha}{N(s) + A\\alpha},

    stationary (the same at every step); a state the demonstrations never visit gets the uniform distribution,
    since BC has nothing to go on there. Returns ``[H, S, A]``.
    """
    states, actions = np.asarray(states), np.asarray(actions)
    if states.shape != actions.shape or states.size == 0:
        raise ValueError(
            f"states and actions must be non-empty arrays of one shape, got {states.shape} and {actions.shape}"
        )
    n_states = check_positive_int("n_states", n_states)
    n_actions = check_positive_int("n_actions", n_actions)
    horizon = check_positive_int("horizon", horizon)
    smoothing = check_range("smoothing", smoothing, 0.0, None)
    if states.min() < 0 or states.max() >= n_states:
        raise ValueError(f"states must be in [0, {n_states - 1}]")
    if actions.min() < 0 or actions.max() >= n_actions:
        raise ValueError(f"actions must be in [0, {n_actions - 1}]")
    counts = np.zeros((n_states, n_actions))
    np.add.at(counts, (states.reshape(-1), actions.reshape(-1)), 1.0)
    counts += smoothing
    totals = counts.sum(axis=1, keepdims=True)
    pi = np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), 1.0 / n_actions)
    return np.broadcast_to(pi, (horizon, n_states, n_actions)).copy()
