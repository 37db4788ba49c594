"""What chapter 1's trainers share (book sections 1.2-1.5): env factories, evaluation, the callback, the result.

:func:`rl4llm.rl.train_ppo`, :func:`rl4llm.rl.train_dqn` and :func:`rl4llm.rl.train_reinforce` (and chapter 5's
:func:`rl4llm.rlhf.ppo.train_ppo_rlhf`) speak one protocol:

* **Iterations.** A trainer counts *iterations*: rounds of "collect data, then update on it". PPO collects
  ``n_envs x n_steps`` transitions per iteration, DQN counts ``log_every`` environment steps as one, the
  language-model trainers one batch of responses.
* **Callback.** ``callback(iteration, info, agent)`` is called *after each iteration's update*, with the number of
  iterations done so far (1 after the first), a dict ``info`` of that iteration's logged figures (always
  ``env_steps``, the environment steps the agent has learned from, for the RL trainers), and the agent (or policy)
  as it is after the update. Returning ``False`` stops training; anything else (``None``) continues.
  So an evaluation inside a callback measures an agent trained on exactly ``info["env_steps"]`` steps, whatever
  the algorithm, and curves of different methods line up without offsets.
* **Result.** Each trainer returns a :class:`TrainResult` (or a subclass): the agent, the true return of every
  finished training episode, the step at which each ended, the per-iteration curves, steps and seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium
import numpy as np
import torch

from rl4llm.utils import check_positive_int

__all__ = ["Callback", "TrainResult", "make_env_fn", "evaluate", "call_back"]


class Callback(Protocol):
    """``callback(iteration, info, agent) -> bool | None``, called after each iteration's update.

    ``iteration`` counts the iterations done (1, 2, ...), ``info`` holds that iteration's logged figures
    (``env_steps`` for the RL trainers), ``agent`` is the agent or policy after the update. Return ``False`` to
    stop training.
    """

    def __call__(self, iteration: int, info: dict[str, Any], agent: Any) -> bool | None: ...


def call_back(callback: Callback | None, iteration: int, info: dict[str, Any], agent: Any) -> bool:
    """Run ``callback`` (if any) with the protocol's arguments; True when training should stop."""
    return callback is not None and callback(iteration, info, agent) is False


@dataclass
class TrainResult:
    """What chapter 1's trainers return.

    Attributes:
        agent: the trained agent (``agent.act(obs, deterministic=...)``).
        episode_returns: true environment return of every finished training episode, in order.
        episode_steps: the global environment step at which each of those episodes ended.
        curves: one dict of logged figures per iteration (always ``env_steps`` and ``mean_return``, the mean
            return of the last 20 episodes).
        env_steps: environment steps taken in total.
        wall_s: seconds of training.
    """

    agent: Any
    episode_returns: list[float] = field(default_factory=list)
    episode_steps: list[int] = field(default_factory=list)
    curves: list[dict[str, float]] = field(default_factory=list)
    env_steps: int = 0
    wall_s: float = 0.0

    def final_return(self, last: int = 20) -> float:
        """Mean true return of the last ``last`` training episodes (``nan`` if none finished)."""
        if not self.episode_returns:
            return float("nan")
        return float(np.mean(self.episode_returns[-last:]))


def make_env_fn(make_env: Callable[[], gymnasium.Env] | str) -> Callable[[], gymnasium.Env]:
    """Accept a zero-argument env factory or a registered env id; return a factory."""
    if isinstance(make_env, str):
        env_id = make_env
        return lambda: gymnasium.make(env_id)
    if not callable(make_env):
        raise ValueError(f"make_env must be a zero-argument env factory or an env id string, got {make_env!r}")
    return make_env


def evaluate(
    agent: Any,
    make_env: Callable[[], gymnasium.Env] | str,
    n_episodes: int = 10,
    seed: int = 0,
    deterministic: bool = True,
    max_steps: int = 100_000,
) -> np.ndarray:
    """Run ``n_episodes`` full episodes of ``agent`` in fresh copies of the env; return their true returns.

    ``agent`` is anything with ``act(obs, deterministic=..., generator=...)`` (an
    :class:`~rl4llm.rl.ActorCritic`, a :class:`~rl4llm.rl.QNetwork`). Episode ``i`` is reset with seed
    ``seed + i``; stochastic actions draw from a generator seeded with ``seed``.
    """
    n_episodes = check_positive_int("n_episodes", n_episodes)
    seed = check_positive_int("seed", seed, 0)
    factory = make_env_fn(make_env)
    gen = torch.Generator().manual_seed(seed)
    returns = np.zeros(n_episodes)
    env = factory()
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done, t = 0.0, False, 0
        while not done and t < max_steps:
            action = agent.act(obs, deterministic=deterministic, generator=gen)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            t += 1
        returns[i] = total
    env.close()
    return returns
