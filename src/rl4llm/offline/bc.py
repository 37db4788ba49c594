"""Behaviour cloning from a logged dataset (book section 2.1): copy the behaviour policy, ignore the rewards.

.. math::  \\hat\\pi = \\arg\\max_\\pi \\; \\mathbb E_{(s, a) \\sim \\mathcal D} \\big[\\log \\pi(a \\mid s)\\big]

BC needs no value function and so cannot over-estimate one, but it can only be as good as the data: it
reproduces the behaviour policy, noise included, on the states the data covers. Chapter 3 studies its other
weakness, compounding error. The routine is the package's one :func:`rl4llm.imitation.bc.behaviour_cloning`
(re-exported here), fitted on the dataset's observations and actions; the learner is the policy half of
:class:`rl4llm.rl.ActorCritic` (the same network as PPO's actor), and its critic is unused.
:func:`policy_table` reads the cloned policy off every state of a tabular problem.
"""

from __future__ import annotations

import numpy as np
import torch

from rl4llm.imitation.bc import behaviour_cloning
from rl4llm.offline.fqi import state_inputs
from rl4llm.rl.agent import ActorCritic

__all__ = ["behaviour_cloning", "policy_table"]


def policy_table(agent: ActorCritic, states: int | np.ndarray, deterministic: bool = True) -> np.ndarray:
    """``[S, A]`` the agent's policy on every state of a tabular problem (one-hot rows if ``deterministic``).

    ``states``: the number of states (the agent reads indices) or the ``[S, d]`` feature table it was trained on.
    """
    with torch.no_grad():
        logits = agent.logits(state_inputs(states)).double()
    if deterministic:
        return np.eye(logits.shape[1])[logits.argmax(1).numpy()]
    return torch.softmax(logits, dim=1).numpy()
