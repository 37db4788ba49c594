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
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.rl.agent import ActorCritic
from rl4llm.rl.common import Callback, TrainResult, call_back, make_env_fn
from rl4llm.rl.returns import discounted_returns
from rl4llm.utils import progress, set_seed, set_torch_threads

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

    total_steps: int = param(50_000, low=1, help="environment steps in all (whole batches of episodes)")
    episodes_per_batch: int = param(8, low=1, help="whole episodes per gradient step (one iteration)")
    lr: float = param(3e-3, low=0.0, low_inclusive=False, help="Adam learning rate")
    gamma: float = param(0.99, low=0.0, high=1.0, help="discount factor")
    baseline: str = param(
        "value", choices=("value", "mean", "none"), help="learned value, batch-mean reward-to-go, or none"
    )
    vf_coef: float = param(0.5, low=0.0, help="weight of the value loss (baseline='value')")
    hidden: int = param(64, low=1, help="hidden units of the actor-critic")
    seed: int = param(0, low=0, help="random seed")
    torch_threads: int = param(1, low=1, help="torch CPU threads")

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class ReinforceResult(TrainResult):
    """What :func:`train_reinforce` returns: a :class:`~rl4llm.rl.common.TrainResult` (the trained
    :class:`~rl4llm.rl.agent.ActorCritic`, per-episode true returns and the step each ended at) with one row of
    ``curves`` per update (``iteration``, ``env_steps``, ``mean_return``, ``loss``)."""


def train_reinforce(
    make_env: Callable[[], gymnasium.Env] | str,
    config: ReinforceConfig | None = None,
    desc: str = "REINFORCE",
    callback: Callback | None = None,
) -> ReinforceResult:
    """Monte-Carlo policy gradient on one environment, ``episodes_per_batch`` whole episodes per update.

    Each update minimises :func:`reinforce_loss` on all the steps of the batch (plus ``vf_coef`` times the value
    regression :math:`\\tfrac12 (V_\\phi(s_t) - G_t)^2` with the learned baseline). An episode cut by a time
    limit is treated as ended (REINFORCE has no value to bootstrap from). The environment is reset with
    ``config.seed`` once; later episodes continue its random stream. Training stops after the first batch
    that reaches ``config.total_steps`` (whole episodes only). One update is one iteration of the
    ``callback(iteration, info, agent)`` protocol (:mod:`rl4llm.rl.common`): it runs after each update with that
    update's row of ``curves``; returning ``False`` stops training.
    """
    config = ReinforceConfig() if config is None else config
    if not isinstance(config, ReinforceConfig):
        raise ValueError(f"config must be a ReinforceConfig, got {type(config).__name__}")
    if callback is not None and not callable(callback):
        raise ValueError("callback must be callable or None")
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
        row = {
            "iteration": len(result.curves) + 1,
            "env_steps": env_steps,
            "mean_return": result.final_return(20),
            "loss": loss.item(),
        }
        result.curves.append(row)
        if call_back(callback, row["iteration"], row, agent):
            break
    bar.close()
    env.close()
    result.env_steps = env_steps
    result.wall_s = time.perf_counter() - t0
    return result
