"""Behaviour cloning from a logged dataset (book section 2.1): copy the behaviour policy, ignore the rewards.

.. math::  \\hat\\pi = \\arg\\max_\\pi \\; \\mathbb E_{(s, a) \\sim \\mathcal D} \\big[\\log \\pi(a \\mid s)\\big]

BC needs no value function and so cannot over-estimate one, but it can only be as good as the data: it
reproduces the behaviour policy, noise included, on the states the data covers. Chapter 3 studies its other
weakness, compounding error. The learner is the policy half of :class:`rl4llm.rl.ActorCritic` (the same network
as PPO's actor), trained by cross-entropy; its critic is unused.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F

from rl4llm.offline.dataset import OfflineDataset
from rl4llm.offline.fqi import state_inputs
from rl4llm.rl.agent import ActorCritic
from rl4llm.utils import check_positive_int, check_range, progress, set_seed, set_torch_threads

__all__ = ["behaviour_cloning", "policy_table"]


def behaviour_cloning(dataset: OfflineDataset, observation_space: gymnasium.Space,
                      action_space: gymnasium.Space, steps: int = 1000, batch_size: int = 256, lr: float = 3e-3,
                      hidden: int = 64, seed: int = 0, torch_threads: int = 1) -> ActorCritic:
    """Fit :math:`\\pi_\\theta(a \\mid s)` to the logged actions by minibatch cross-entropy; return the agent.

    ``agent.act(obs, deterministic=True)`` takes the cloned policy's most likely action.
    """
    if not isinstance(dataset, OfflineDataset):
        raise TypeError(f"dataset must be an OfflineDataset, got {type(dataset).__name__}")
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    hidden = check_positive_int("hidden", hidden)
    seed = check_positive_int("seed", seed, 0)
    if int(dataset.actions.max()) >= int(action_space.n):
        raise ValueError(f"dataset actions must be < action_space.n = {action_space.n}")
    set_torch_threads(torch_threads)
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    agent = ActorCritic(observation_space, action_space, hidden=hidden)
    optimizer = torch.optim.Adam(agent.actor.parameters(), lr=lr)
    obs = torch.as_tensor(dataset.observations)
    actions = torch.as_tensor(dataset.actions)
    n = len(dataset)
    for _ in progress(range(steps), desc="BC"):
        idx = torch.randint(n, (min(batch_size, n),), generator=gen)
        loss = F.cross_entropy(agent.logits(obs[idx]), actions[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return agent


def policy_table(agent: ActorCritic, states: int | np.ndarray, deterministic: bool = True) -> np.ndarray:
    """``[S, A]`` the agent's policy on every state of a tabular problem (one-hot rows if ``deterministic``).

    ``states``: the number of states (the agent reads indices) or the ``[S, d]`` feature table it was trained on.
    """
    with torch.no_grad():
        logits = agent.logits(state_inputs(states)).double()
    if deterministic:
        return np.eye(logits.shape[1])[logits.argmax(1).numpy()]
    return torch.softmax(logits, dim=1).numpy()
