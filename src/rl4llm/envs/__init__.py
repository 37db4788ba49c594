"""Gymnasium environments, registered under the ``rl4llm/`` namespace when :mod:`rl4llm` is imported.

``gymnasium.make("rl4llm/TokenMDP-v0", ...)`` etc. Entry points are strings, so registering imports nothing heavy.

* ``rl4llm/TokenMDP-v0``: the token-level MDP of a language model (state = prefix, action = next token,
  deterministic transition = append, reward at the end or per token): :mod:`rl4llm.envs.token_mdp`.
* ``rl4llm/Tightrope-v0``: a chain where one mistake leaves the expert's states, for compounding error:
  :mod:`rl4llm.envs.tightrope`.
* ``rl4llm/GridWorld-v0``: a small gridworld with a known transition matrix, for MaxEnt IRL:
  :mod:`rl4llm.envs.gridworld`.

:mod:`rl4llm.envs.tabular` holds the package's one tabular MDP (:class:`TabularMDP`, :class:`TabularEnv`) and its
exact planners; the gridworld and chapter 2's cliff walk are built on it.
"""

from __future__ import annotations

import gymnasium

_ENVS = {
    "rl4llm/TokenMDP-v0": "rl4llm.envs.token_mdp:TokenMDPEnv",
    "rl4llm/Tightrope-v0": "rl4llm.envs.tightrope:TightropeEnv",
    "rl4llm/GridWorld-v0": "rl4llm.envs.gridworld:GridWorldEnv",
}

for _id, _entry in _ENVS.items():
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point=_entry)

from rl4llm.envs.gridworld import GridWorldEnv  # noqa: E402
from rl4llm.envs.tabular import TabularEnv, TabularMDP  # noqa: E402
from rl4llm.envs.tightrope import TightropeEnv  # noqa: E402
from rl4llm.envs.token_mdp import TokenMDPEnv, target_match_reward, token_mdp_from_tokenizer  # noqa: E402

__all__ = [
    "TokenMDPEnv",
    "TightropeEnv",
    "GridWorldEnv",
    "TabularMDP",
    "TabularEnv",
    "target_match_reward",
    "token_mdp_from_tokenizer",
]
