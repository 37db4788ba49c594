"""Logged CartPole data: a partly trained PPO agent, made epsilon-greedy, as the behaviour policy (section 2.1).

CartPole has no transition matrix to solve, so the true value of a learned policy is estimated by running it
(:func:`rl4llm.offline.evaluation.monte_carlo_value_gap`). The behaviour agent is trained by chapter 1's PPO
(:func:`rl4llm.rl.train_ppo`) for a fraction of what solving the task takes, so that the data show a competent but
imperfect policy, the usual situation of a logged dataset.
"""

from __future__ import annotations

import gymnasium

from rl4llm.offline.dataset import OfflineDataset, collect_dataset, epsilon_greedy
from rl4llm.rl import ActorCritic, PPOConfig, train_ppo
from rl4llm.utils import check_positive_int, check_range

__all__ = ["ENV_ID", "train_behaviour_agent", "log_cartpole"]

ENV_ID = "CartPole-v1"


def train_behaviour_agent(total_steps: int = 8192, seed: int = 0) -> ActorCritic:
    """PPO on CartPole for ``total_steps`` environment steps (default: about a tenth of what solving it takes)."""
    total_steps = check_positive_int("total_steps", total_steps)
    seed = check_positive_int("seed", seed, 0)
    return train_ppo(ENV_ID, PPOConfig(total_steps=total_steps, seed=seed), desc="behaviour PPO").agent


def log_cartpole(agent: ActorCritic, epsilon: float, n_episodes: int, seed: int = 0) -> OfflineDataset:
    """Log ``n_episodes`` CartPole episodes of the agent's greedy action, replaced w.p. ``epsilon`` by a random one."""
    if not isinstance(agent, ActorCritic):
        raise TypeError(f"agent must be an ActorCritic, got {type(agent).__name__}")
    epsilon = check_range("epsilon", epsilon, 0.0, 1.0)
    env = gymnasium.make(ENV_ID)
    policy = epsilon_greedy(lambda obs: agent.act(obs, deterministic=True), int(env.action_space.n), epsilon)
    dataset = collect_dataset(env, policy, n_episodes, seed=seed, desc="logging CartPole")
    env.close()
    dataset.info.update({"env": ENV_ID, "behaviour": "epsilon-greedy PPO", "epsilon": epsilon})
    return dataset
