"""Expert demonstrations from the package's own PPO, and behaviour cloning on them (book section 4.2).

No data is downloaded: the expert is a PPO agent (:func:`train_expert`) and its demonstrations are episodes it
plays (:func:`collect_demonstrations`). Following Ho & Ermon (2016), a demonstration can be *subsampled* (one
state-action pair every ``subsample`` steps), which keeps the states spread along the whole episode while
making the data scarce.

Behaviour cloning (the package's :func:`rl4llm.imitation.bc.behaviour_cloning`, full-batch) is supervised
learning of the expert's actions with the same network the adversarial learner uses (the actor of
:class:`~rl4llm.rl.ActorCritic`), so that the comparison isolates the learning signal:

.. math::  \\min_\\theta\\; -\\frac1N \\sum_{i=1}^N \\log \\pi_\\theta(a_i \\mid s_i).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium
import numpy as np
import torch

from rl4llm.rl.agent import ActorCritic
from rl4llm.rl.ppo import PPOConfig, make_env_fn, train_ppo
from rl4llm.utils import check_positive_int

__all__ = ["train_expert", "collect_demonstrations"]


def train_expert(
    make_env: Callable[[], gymnasium.Env] | str = "CartPole-v1", total_steps: int = 40_000, seed: int = 0
) -> ActorCritic:
    """A PPO expert: :func:`rl4llm.rl.train_ppo` with its default settings for ``total_steps`` steps.

    On CartPole-v1, 40,000 steps (about 6 s of one CPU core) reach the maximal return of 500.
    """
    check_positive_int("total_steps", total_steps)
    result = train_ppo(make_env, PPOConfig(total_steps=total_steps, seed=seed), desc="PPO expert")
    return result.agent


def collect_demonstrations(
    agent,
    make_env: Callable[[], gymnasium.Env] | str,
    n_episodes: int,
    seed: int = 0,
    subsample: int = 1,
    deterministic: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play ``n_episodes`` with ``agent``; keep every ``subsample``-th state-action pair of each episode.

    Episode ``i`` is reset with seed ``seed + i``; the kept pairs of an episode start at a random offset in
    ``[0, subsample)`` (drawn from ``seed``). Returns ``(obs [N, *obs_shape], actions [N], episode_returns
    [n_episodes])``.
    """
    n_episodes = check_positive_int("n_episodes", n_episodes)
    subsample = check_positive_int("subsample", subsample)
    seed = check_positive_int("seed", seed, 0)
    env = make_env_fn(make_env)()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    obs_list, act_list, returns = [], [], []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        offset = int(rng.integers(subsample))
        t, total, done = 0, 0.0, False
        while not done:
            action = agent.act(obs, deterministic=deterministic, generator=gen)
            if t % subsample == offset:
                obs_list.append(np.asarray(obs, dtype=np.float32))
                act_list.append(int(action))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            t += 1
        returns.append(total)
    env.close()
    if not obs_list:
        raise ValueError(f"subsample={subsample} kept no pair: the episodes were shorter than the offsets")
    return np.stack(obs_list), np.asarray(act_list, dtype=np.int64), np.asarray(returns)
