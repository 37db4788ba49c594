"""REINFORCE with a baseline (Williams 1992; book section 1.2).

The policy-gradient theorem (Sutton et al. 1999) gives an unbiased estimate from whole episodes,

.. math:: \\nabla_\\theta J(\\theta) = \\mathbb E\\Big[\\sum_t \\nabla_\\theta \\log \\pi_\\theta(a_t|s_t)\\,(G_t - b(s_t))\\Big],

where :math:`G_t` is the reward-to-go and any baseline :math:`b(s_t)` that does not depend on the action leaves it
unbiased (since :math:`\\mathbb E_a[\\nabla \\log \\pi(a|s)] = 0`) while it can shrink the variance a lot. Here the
baseline is a learned value function :math:`V_\\phi(s_t)` regressed on :math:`G_t`, or none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium
import numpy as np
import torch

from rl4llm.rl.agent import ActorCritic
from rl4llm.rl.ppo import make_env_fn
from rl4llm.rl.returns import discounted_returns
from rl4llm.utils import check_choice, check_positive_int, check_range, progress, set_seed, set_torch_threads

__all__ = ["reinforce_loss", "ReinforceConfig", "ReinforceResult", "train_reinforce"]


def reinforce_loss(logp: torch.Tensor, returns: torch.Tensor, baseline: torch.Tensor | None = None) -> torch.Tensor:
    """The REINFORCE surrogate loss :math:`-\\text{mean}_t\\big[\\log\\pi_\\theta(a_t|s_t)\\,(G_t - b_t)\\big]`.

    Args:
        logp: ``[B]`` log-probabilities of the taken actions (differentiable).
        returns: ``[B]`` rewards-to-go :math:`G_t` (constants).
        baseline: optional ``[B]`` baseline :math:`b_t` (treated as a constant: no gradient flows into it).

    Returns:
        A scalar whose gradient is minus the policy-gradient estimate.
    """
    for name, t in (("logp", logp), ("returns", returns)) + ((("baseline", baseline),) if baseline is not None else ()):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.shape != logp.shape:
            raise ValueError(f"{name} must have the shape of logp {tuple(logp.shape)}, got {tuple(t.shape)}")
    if logp.numel() == 0:
        raise ValueError("logp must not be empty")
    # BEGIN SOLUTION
    weights = returns.detach()
    if baseline is not None:
        weights = weights - baseline.detach()
    return -(logp * weights).mean()
    # END SOLUTION


@dataclass
class ReinforceConfig:
    """REINFORCE hyperparameters: ``episodes_per_batch`` whole episodes per gradient step.

    ``baseline`` is ``"value"`` (a learned :math:`V_\\phi(s_t)` regressed on :math:`G_t`, loss weight
    ``vf_coef``), ``"mean"`` (one constant per batch: the mean reward-to-go of its steps) or ``"none"``.
    """

    total_steps: int = 50_000
    episodes_per_batch: int = 8
    lr: float = 3e-3
    gamma: float = 0.99
    baseline: str = "value"
    vf_coef: float = 0.5
    hidden: int = 64
    seed: int = 0
    torch_threads: int = 1

    def __post_init__(self) -> None:
        check_positive_int("total_steps", self.total_steps)
        check_positive_int("episodes_per_batch", self.episodes_per_batch)
        check_range("lr", self.lr, 0.0, None, low_inclusive=False)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_choice("baseline", self.baseline, ("value", "mean", "none"))
        check_range("vf_coef", self.vf_coef, 0.0, None)
        check_positive_int("hidden", self.hidden)
        check_positive_int("seed", self.seed, 0)
        check_positive_int("torch_threads", self.torch_threads)


@dataclass
class ReinforceResult:
    """The trained agent, per-episode true returns (and the env step each ended at), per-update curves."""

    agent: ActorCritic
    episode_returns: list[float] = field(default_factory=list)
    episode_steps: list[int] = field(default_factory=list)
    curves: list[dict[str, float]] = field(default_factory=list)
    env_steps: int = 0
    wall_s: float = 0.0

    def final_return(self, last: int = 20) -> float:
        return float(np.mean(self.episode_returns[-last:])) if self.episode_returns else float("nan")


def train_reinforce(make_env: Callable[[], gymnasium.Env] | str,
                    config: ReinforceConfig | None = None, desc: str = "REINFORCE") -> ReinforceResult:
    """Monte-Carlo policy gradient on one environment, ``episodes_per_batch`` whole episodes per update.

    Each update minimises :func:`reinforce_loss` on all the steps of the batch (plus ``vf_coef`` times the value
    regression :math:`\\tfrac12 (V_\\phi(s_t) - G_t)^2` with the learned baseline). An episode cut by a time
    limit is treated as ended (REINFORCE has no value to bootstrap from). The environment is reset with
    ``config.seed`` once; later episodes continue its random stream. Training stops after the first batch
    that reaches ``config.total_steps`` (whole episodes only).
    """
    config = ReinforceConfig() if config is None else config
    if not isinstance(config, ReinforceConfig):
        raise ValueError(f"config must be a ReinforceConfig, got {type(config).__name__}")
    factory = make_env_fn(make_env)
    set_torch_threads(config.torch_threads)
    set_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    t0 = time.perf_counter()
    env = factory()
    agent = ActorCritic(env.observation_space, env.action_space, hidden=config.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr)
    result = ReinforceResult(agent=agent)
    env_steps, first_reset = 0, True
    bar = progress(total=config.total_steps, desc=desc)
    while env_steps < config.total_steps:
        obs_l, act_l, rew_l, end_l = [], [], [], []
        for _ in range(config.episodes_per_batch):
            obs, _ = env.reset(seed=config.seed) if first_reset else env.reset()
            first_reset = False
            done, total = False, 0.0
            while not done:
                action = agent.act(obs, generator=gen)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
                obs_l.append(np.asarray(obs, dtype=np.float32))
                act_l.append(action)
                rew_l.append(float(reward))
                end_l.append(1.0 if done else 0.0)  # the return stops at the episode's end
                total += float(reward)
                obs = next_obs
                env_steps += 1
            result.episode_returns.append(total)
            result.episode_steps.append(env_steps)
        bar.update(len(rew_l))
        obs_t = torch.as_tensor(np.stack(obs_l))
        act_t = torch.as_tensor(act_l, dtype=torch.long)
        returns = discounted_returns(torch.tensor(rew_l), torch.tensor(end_l), config.gamma)
        logp = agent.dist(obs_t).log_prob(act_t)
        if config.baseline == "value":
            values = agent.value(obs_t)
            loss = reinforce_loss(logp, returns, values) + config.vf_coef * 0.5 * ((values - returns) ** 2).mean()
        elif config.baseline == "mean":
            loss = reinforce_loss(logp, returns, returns.mean().expand_as(returns))
        else:
            loss = reinforce_loss(logp, returns)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        result.curves.append({"env_steps": env_steps, "mean_return": result.final_return(20),
                              "loss": loss.item()})
    bar.close()
    env.close()
    result.env_steps = env_steps
    result.wall_s = time.perf_counter() - t0
    return result
