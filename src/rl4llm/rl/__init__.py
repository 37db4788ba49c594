"""Chapter 1's reinforcement-learning toolkit: returns and GAE, PPO's losses and trainer, REINFORCE, DQN.

Pure tensor functions (``discounted_returns``, ``gae``, ``ppo_clip_loss``, ...) are separate from the training
loops (``train_ppo``, ``train_reinforce``, ``train_dqn``), which only compose them.
"""

from __future__ import annotations

from rl4llm.rl.agent import ActorCritic, ObsEncoder
from rl4llm.rl.common import Callback, TrainResult, evaluate, make_env_fn
from rl4llm.rl.dqn import DQNConfig, DQNResult, QNetwork, ReplayBuffer, dqn_targets, epsilon_schedule, train_dqn
from rl4llm.rl.losses import (
    approx_kl,
    clip_fraction,
    clipped_value_loss,
    entropy_bonus,
    masked_whiten,
    normalize_advantages,
    ppo_clip_loss,
)
from rl4llm.rl.ppo import PPOConfig, PPOResult, token_ppo_config, train_ppo
from rl4llm.rl.reinforce import ReinforceConfig, ReinforceResult, reinforce_loss, train_reinforce
from rl4llm.rl.returns import discounted_returns, gae

__all__ = [
    "discounted_returns",
    "gae",
    "ppo_clip_loss",
    "clipped_value_loss",
    "entropy_bonus",
    "normalize_advantages",
    "masked_whiten",
    "approx_kl",
    "clip_fraction",
    "Callback",
    "TrainResult",
    "ActorCritic",
    "ObsEncoder",
    "PPOConfig",
    "PPOResult",
    "train_ppo",
    "evaluate",
    "make_env_fn",
    "token_ppo_config",
    "reinforce_loss",
    "ReinforceConfig",
    "ReinforceResult",
    "train_reinforce",
    "dqn_targets",
    "epsilon_schedule",
    "QNetwork",
    "ReplayBuffer",
    "DQNConfig",
    "DQNResult",
    "train_dqn",
]
