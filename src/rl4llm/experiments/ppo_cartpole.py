"""``ppo-cartpole``: PPO (:func:`rl4llm.rl.train_ppo`) on Gymnasium's CartPole-v1 (book section 1.3).

The defaults are the RL Baselines3 Zoo hyperparameters for CartPole-v1 (Raffin 2020): 8 environments x 32 steps per
batch, 20 epochs over each batch as one minibatch, learning rate :math:`10^{-3}` annealed linearly to 0,
:math:`\\gamma = 0.98`, :math:`\\lambda = 0.8`, clip range 0.2, no entropy bonus; 100k environment steps. They
reach the maximal return of 500 in about 30-50k steps for seeds 0-4, in about 15 s of one CPU core.

Metrics: ``final_return`` (mean true return of the last 20 training episodes), ``eval_return`` (mean return of 10
greedy evaluation episodes after training), ``steps_to_475`` (the first step at which the mean of the last 20
training episodes reached 475, CartPole's "solved" threshold; ``None`` if never), ``env_steps``, ``wall_s``, and
the mean approximate KL divergence and clip fraction of the updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result

NAME = "ppo-cartpole"
SUMMARY = "PPO (clipped surrogate, GAE) on CartPole-v1 with the RL Zoo hyperparameters"

SOLVED = 475.0


@dataclass
class Config:
    """Defaults are what the book and ``rl4llm run ppo-cartpole`` run (the RL Zoo settings for CartPole-v1)."""

    total_steps: int = param(100_000, low=1, help="environment steps of training")
    clip_eps: float = param(0.2, low=0.0, allow_inf=True, help="PPO clip range of the ratio; inf: no clipping")
    n_epochs: int = param(20, low=1, help="passes over each batch of rollouts")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam learning rate")
    gamma: float = param(0.98, low=0.0, high=1.0, help="discount factor")
    gae_lambda: float = param(0.8, low=0.0, high=1.0, help="GAE lambda")
    ent_coef: float = param(0.0, low=0.0, help="entropy bonus coefficient")
    n_envs: int = param(8, low=1, help="parallel environments")
    n_steps: int = param(32, low=1, help="steps per environment per batch")
    eval_episodes: int = param(10, low=0, help="greedy evaluation episodes at the end (0: none)")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)
        if self.total_steps < self.n_envs * self.n_steps:
            raise ConfigError(
                "total_steps",
                f"total_steps must be >= n_envs * n_steps = {self.n_envs * self.n_steps}, got {self.total_steps}",
            )

    def ppo_config(self):
        from rl4llm.rl import PPOConfig

        return PPOConfig(
            total_steps=self.total_steps,
            n_envs=self.n_envs,
            n_steps=self.n_steps,
            n_epochs=self.n_epochs,
            n_minibatches=1,
            lr=self.lr,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            clip_eps=self.clip_eps,
            ent_coef=self.ent_coef,
            seed=self.seed,
        )


def steps_to(result, threshold: float = SOLVED, last: int = 20) -> int | None:
    """The environment step at which the mean of the last ``last`` training episodes first reached ``threshold``."""
    returns = np.asarray(result.episode_returns, dtype=float)
    for i in range(returns.size):
        if returns[max(0, i + 1 - last) : i + 1].mean() >= threshold and i + 1 >= min(last, returns.size):
            return int(result.episode_steps[i])
    return None


def run(config: Config) -> Result:
    from rl4llm.rl import evaluate, train_ppo

    result = train_ppo("CartPole-v1", config.ppo_config(), desc="PPO CartPole")
    metrics: dict[str, object] = {
        "final_return": result.final_return(20),
        "steps_to_475": steps_to(result),
        "env_steps": result.env_steps,
        "episodes": len(result.episode_returns),
        "mean_approx_kl": float(np.mean([r["approx_kl"] for r in result.curves])),
        "mean_clip_frac": float(np.mean([r["clip_frac"] for r in result.curves])),
        "wall_s": round(result.wall_s, 3),
    }
    if config.eval_episodes:
        metrics["eval_return"] = float(
            np.mean(evaluate(result.agent, "CartPole-v1", config.eval_episodes, seed=10_000 + config.seed))
        )
    out = Result(
        metrics=metrics,
        curves=result.curves,
        artifacts={
            "episode_returns": result.episode_returns,
            "episode_steps": result.episode_steps,
            "agent": result.agent,
        },
    )
    out.figure = draw(out, config)
    return out


def draw(result: Result, config: Config):
    """Training episode returns and PPO's diagnostics (approximate KL, clip fraction) against the step."""
    from rl4llm.rl.plots import plot_ppo_run

    clip = "no clipping" if math.isinf(config.clip_eps) else f"clip ε = {config.clip_eps:g}"
    run = SimpleNamespace(
        curves=result.curves,
        episode_returns=result.artifacts["episode_returns"],
        episode_steps=result.artifacts["episode_steps"],
    )
    return plot_ppo_run(run, title=f"PPO on CartPole-v1 ({clip}, seed {config.seed})")


def cache_state(result: Result) -> dict[str, Any]:
    """The episode returns and their steps (the figure's data; the agent is not kept)."""
    return {
        "episode_returns": torch.as_tensor(np.asarray(result.artifacts["episode_returns"], dtype=float)),
        "episode_steps": torch.as_tensor(np.asarray(result.artifacts["episode_steps"], dtype=np.int64)),
    }


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {"episode_returns": state["episode_returns"].tolist(), "episode_steps": state["episode_steps"].tolist()}
