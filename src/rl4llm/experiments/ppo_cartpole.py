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

import numpy as np

from rl4llm.experiments import Result
from rl4llm.utils import check_positive_int, check_range

NAME = "ppo-cartpole"
SUMMARY = "PPO (clipped surrogate, GAE) on CartPole-v1 with the RL Zoo hyperparameters"

SOLVED = 475.0


@dataclass
class Config:
    """Defaults are what the book and ``rl4llm run ppo-cartpole`` run (the RL Zoo settings for CartPole-v1)."""

    total_steps: int = 100_000
    clip_eps: float = 0.2
    n_epochs: int = 20
    lr: float = 1e-3
    gamma: float = 0.98
    gae_lambda: float = 0.8
    ent_coef: float = 0.0
    n_envs: int = 8
    n_steps: int = 32
    eval_episodes: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int("total_steps", self.total_steps)
        if not (isinstance(self.clip_eps, (int, float)) and math.isinf(self.clip_eps) and self.clip_eps > 0):
            check_range("clip_eps", self.clip_eps, 0.0, None)
        check_positive_int("n_epochs", self.n_epochs)
        check_range("lr", self.lr, 0.0, None, low_inclusive=False)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("ent_coef", self.ent_coef, 0.0, None)
        check_positive_int("n_envs", self.n_envs)
        check_positive_int("n_steps", self.n_steps)
        if self.total_steps < self.n_envs * self.n_steps:
            raise ValueError(f"total_steps must be >= n_envs * n_steps = {self.n_envs * self.n_steps}, "
                             f"got {self.total_steps}")
        check_positive_int("eval_episodes", self.eval_episodes, 0)
        check_positive_int("seed", self.seed, 0)

    def ppo_config(self):
        from rl4llm.rl import PPOConfig

        return PPOConfig(total_steps=self.total_steps, n_envs=self.n_envs, n_steps=self.n_steps,
                         n_epochs=self.n_epochs, n_minibatches=1, lr=self.lr, gamma=self.gamma,
                         gae_lambda=self.gae_lambda, clip_eps=self.clip_eps, ent_coef=self.ent_coef, seed=self.seed)


def steps_to(result, threshold: float = SOLVED, last: int = 20) -> int | None:
    """The environment step at which the mean of the last ``last`` training episodes first reached ``threshold``."""
    returns = np.asarray(result.episode_returns, dtype=float)
    for i in range(returns.size):
        if returns[max(0, i + 1 - last): i + 1].mean() >= threshold and i + 1 >= min(last, returns.size):
            return int(result.episode_steps[i])
    return None


def run(config: Config) -> Result:
    from rl4llm.rl import evaluate, train_ppo
    from rl4llm.rl.plots import plot_ppo_run

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
        metrics["eval_return"] = float(np.mean(evaluate(result.agent, "CartPole-v1", config.eval_episodes,
                                                        seed=10_000 + config.seed)))
    clip = "no clipping" if math.isinf(config.clip_eps) else f"clip ε = {config.clip_eps:g}"
    fig = plot_ppo_run(result, title=f"PPO on CartPole-v1 ({clip}, seed {config.seed})")
    return Result(metrics=metrics, curves=result.curves, figure=fig,
                  artifacts={"episode_returns": result.episode_returns, "episode_steps": result.episode_steps,
                             "agent": result.agent})
