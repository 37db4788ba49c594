"""Proximal policy optimisation for gymnasium vector environments (book section 1.3).

The loop (Schulman et al. 2017, Algorithm 1; implementation details after Huang et al. 2022):

1. **Collect** ``n_steps`` transitions in each of ``n_envs`` environments with the current policy
   :math:`\\pi_{\\theta_{old}}`, storing :math:`\\log \\pi_{\\theta_{old}}(a_t|s_t)`.
2. **Score** them: the environment's reward, or ``reward_fn(obs, actions, next_obs)`` when one is given (a learned
   reward, e.g. the discriminator of adversarial IRL in chapter 4; episode returns are still logged from the true
   environment reward, so a learning curve always shows the real task).
3. **Estimate advantages** with GAE(:math:`\\gamma, \\lambda`) (:func:`rl4llm.rl.gae`), terminations and
   truncations handled separately.
4. **Update** for ``n_epochs`` passes over shuffled minibatches, minimising

   .. math:: \\mathcal L = -L^{CLIP}(\\theta) + c_V \\mathcal L_V - c_H \\mathcal H[\\pi_\\theta]

   with normalised advantages and a clipped global gradient norm.

Each step is one function (:func:`collect_rollout`, :func:`learned_rewards`, :func:`compute_advantages`,
:func:`ppo_update`) and :func:`train_ppo` is the explicit loop over them, the code section 1.3 shows.

Gymnasium 1.x vector environments reset *on the next step*: after an episode ends at step ``t``, the call at
``t + 1`` ignores the action, resets that sub-environment and returns its first observation with reward 0. That
step is not a transition of the MDP, so it is masked out of the loss (``valid = False``). The upside is that
the observation returned at ``t`` is the true last observation, which GAE bootstraps from on truncation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.rl.agent import ActorCritic
from rl4llm.rl.common import Callback, TrainResult, call_back, evaluate, make_env_fn
from rl4llm.rl.losses import (
    approx_kl,
    clip_fraction,
    clipped_value_loss,
    entropy_bonus,
    normalize_advantages,
    ppo_clip_loss,
)
from rl4llm.rl.returns import gae
from rl4llm.utils import progress, set_seed, set_torch_threads

__all__ = [
    "PPOConfig",
    "PPOResult",
    "Rollout",
    "collect_rollout",
    "compute_advantages",
    "ppo_update",
    "train_ppo",
    "evaluate",
    "make_env_fn",
    "token_ppo_config",
    "RewardFn",
    "RolloutHook",
    "BatchHook",
    "Callback",
]

#: ``reward_fn(obs [M, *obs_shape] float, actions [M] long, next_obs [M, *obs_shape] float) -> [M]``
RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
#: ``on_rollout(state: dict) -> bool | None``: sees each fresh rollout before it is scored (see :func:`train_ppo`).
RolloutHook = Callable[[dict[str, Any]], Any]
#: ``on_batch(iteration: int, batch: dict, agent) -> dict``: the batch an iteration's update trains on (see
#: :func:`train_ppo`); e.g. a replay of an older batch, to measure what stale rollouts cost.
BatchHook = Callable[[int, dict[str, Any], ActorCritic], dict[str, Any]]


@dataclass
class PPOConfig:
    """PPO hyperparameters. Defaults solve CartPole-v1 (return 500) in about 100k steps.

    One *iteration* collects ``n_envs x n_steps`` transitions (``batch_size``) and updates on them, so training runs
    ``iterations = total_steps // batch_size`` iterations (read-only, at least 1): the same word as chapter 5's
    :class:`rl4llm.rlhf.ppo.PPORLHFConfig`, whose ``iterations`` field counts its collect/update rounds directly.
    The knobs both PPOs share have the same names (``lr``, ``n_epochs``, ``n_minibatches``, ``gamma``,
    ``gae_lambda``, ``clip_eps``, ``clip_value``, ``vf_coef``, ``ent_coef``, ``max_grad_norm``, ``norm_adv``,
    ``target_kl``).

    ``anneal_lr`` / ``anneal_clip`` decay the learning rate / the clip range linearly to 0 over training (the RL Zoo
    anneals both for CartPole). ``clip_eps = inf`` switches the ratio clipping off (then PPO is a many-epoch vanilla
    policy gradient with importance weights, the "unclipped" arm of the book's why-PPO experiment).
    """

    total_steps: int = param(100_000, low=1, help="environment steps in all (whole iterations of batch_size)")
    n_envs: int = param(8, low=1, help="parallel environments")
    n_steps: int = param(32, low=1, help="steps per environment per iteration")
    n_epochs: int = param(20, low=1, help="passes over each iteration's batch")
    n_minibatches: int = param(1, low=1, help="minibatches per epoch (at most n_envs * n_steps)")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam learning rate")
    anneal_lr: bool = param(True, help="decay the learning rate linearly to 0 over training")
    anneal_clip: bool = param(False, help="decay clip_eps linearly to 0 over training")
    gamma: float = param(0.98, low=0.0, high=1.0, help="discount factor")
    gae_lambda: float = param(0.8, low=0.0, high=1.0, help="GAE's lambda (0: one-step TD, 1: Monte Carlo)")
    clip_eps: float = param(0.2, low=0.0, allow_inf=True, help="clip range of the ratio; inf: no clipping")
    clip_value: bool = param(False, help="clip the value prediction around the old one by clip_eps")
    vf_coef: float = param(0.5, low=0.0, help="weight of the value loss")
    ent_coef: float = param(0.0, low=0.0, help="weight of the entropy bonus")
    max_grad_norm: float = param(0.5, low=0.0, low_inclusive=False, help="global gradient-norm clip")
    norm_adv: bool = param(True, help="normalise advantages per minibatch")
    target_kl: float | None = param(
        None,
        low=0.0,
        low_inclusive=False,
        allow_none=True,
        help="stop an iteration's epochs once approx-KL exceeds it; None: never",
    )
    hidden: int = param(64, low=1, help="hidden units of the actor-critic")
    seed: int = param(0, low=0, help="random seed")
    torch_threads: int = param(1, low=1, help="torch CPU threads")

    def __post_init__(self) -> None:
        validate(self)
        if self.n_minibatches > self.n_envs * self.n_steps:
            raise ValueError(
                f"n_minibatches must be in [1, n_envs * n_steps = {self.n_envs * self.n_steps}], "
                f"got {self.n_minibatches}"
            )

    @property
    def batch_size(self) -> int:
        """Transitions per iteration, ``n_envs * n_steps``."""
        return self.n_envs * self.n_steps

    @property
    def iterations(self) -> int:
        """Collect/update rounds, ``total_steps // batch_size`` (at least 1)."""
        return max(1, self.total_steps // self.batch_size)


#: PPO settings for the token-level MDP (sections 1.5 and 1.6): 8 envs x 64 steps per batch, 4 epochs of 4
#: minibatches, no discount (the reward is a score of the whole sequence), lambda = 0.95, an entropy bonus of 0.03
#: (the best of {0, 0.01, 0.03, 0.05} on the 96-token why-PPO task: smaller ones let the policy collapse early).
TOKEN_PPO_SETTINGS: dict[str, Any] = dict(
    n_envs=8, n_steps=64, n_epochs=4, n_minibatches=4, lr=3e-3, gamma=1.0, gae_lambda=0.95, ent_coef=0.03
)


def token_ppo_config(**overrides: Any) -> PPOConfig:
    """A :class:`PPOConfig` with the chapter's token-MDP settings (:data:`TOKEN_PPO_SETTINGS`), then ``overrides``."""
    return PPOConfig(**{**TOKEN_PPO_SETTINGS, **overrides})


@dataclass
class PPOResult(TrainResult):
    """What :func:`train_ppo` returns: a :class:`~rl4llm.rl.common.TrainResult` whose ``agent`` is the trained
    :class:`~rl4llm.rl.agent.ActorCritic` and whose ``curves`` hold one row per iteration (``iteration``,
    ``env_steps``, ``mean_return`` of the last 20 episodes, ``episodes``, ``policy_loss``, ``value_loss``,
    ``entropy``, ``approx_kl``, ``clip_frac``)."""


@dataclass
class Rollout:
    """One iteration's transitions, time-major ``[n_steps, n_envs, ...]``.

    ``logp`` is :math:`\\log\\pi_{\\theta_{old}}(a_t|s_t)` of the policy that acted; ``rewards`` the environment's;
    ``valid`` is False on gymnasium's reset steps (not transitions of the MDP: they carry reward 0, count as
    terminated and are left out of the loss).
    """

    obs: torch.Tensor
    next_obs: torch.Tensor
    actions: torch.Tensor
    logp: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``[n_steps, n_envs, ...]`` flattened to ``[M, ...]`` over the valid transitions."""
        return x.reshape((-1,) + tuple(x.shape[2:]))[self.valid.reshape(-1)]


class VecEnvRunner:
    """The vector environment and what carries over from one rollout to the next: the current observations,
    which sub-environments just ended (their next step is a reset), the running episode returns, the step count.

    Gymnasium 1.x vector environments reset *on the next step* (``AutoresetMode.NEXT_STEP``).
    """

    def __init__(self, factory: Callable[[], gymnasium.Env], n_envs: int, seed: int) -> None:
        self.envs = gymnasium.vector.SyncVectorEnv(
            [factory for _ in range(n_envs)], autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP
        )
        self.obs, _ = self.envs.reset(seed=seed)
        self.prev_done = np.zeros(n_envs, dtype=bool)
        self.running_return = np.zeros(n_envs)
        self.env_steps = 0

    def close(self) -> None:
        self.envs.close()


def collect_rollout(
    runner: VecEnvRunner, agent: ActorCritic, n_steps: int, generator: torch.Generator, result: TrainResult
) -> Rollout:
    """Step ``runner``'s environments ``n_steps`` times with actions sampled from ``agent``.

    Finished episodes' true returns (and the step each ended at) are appended to ``result``.
    """
    n = runner.envs.num_envs
    obs_shape = tuple(runner.envs.single_observation_space.shape)
    obs_buf = torch.zeros((n_steps, n) + obs_shape)
    next_obs_buf = torch.zeros((n_steps, n) + obs_shape)
    actions = torch.zeros((n_steps, n), dtype=torch.long)
    logp_old = torch.zeros((n_steps, n))
    env_rewards = torch.zeros((n_steps, n))
    terminated = torch.zeros((n_steps, n))
    truncated = torch.zeros((n_steps, n))
    valid = torch.zeros((n_steps, n), dtype=torch.bool)
    for t in range(n_steps):
        obs_t = torch.as_tensor(runner.obs, dtype=torch.float32)
        with torch.no_grad():
            logits = agent.logits(obs_t)
            probs = torch.softmax(logits, dim=-1)
            action = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            logp = torch.log_softmax(logits, dim=-1).gather(1, action[:, None]).squeeze(1)
        next_np, reward, term, trunc, _ = runner.envs.step(action.numpy())
        obs_buf[t] = obs_t
        next_obs_buf[t] = torch.as_tensor(next_np, dtype=torch.float32)
        actions[t] = action
        logp_old[t] = logp
        is_valid = ~runner.prev_done  # the step after an episode's end is gymnasium's reset step
        valid[t] = torch.as_tensor(is_valid)
        env_rewards[t] = torch.as_tensor(np.where(is_valid, reward, 0.0), dtype=torch.float32)
        terminated[t] = torch.as_tensor(np.where(is_valid, term, True), dtype=torch.float32)
        truncated[t] = torch.as_tensor(np.where(is_valid, trunc, False), dtype=torch.float32)
        runner.running_return += np.where(is_valid, reward, 0.0)
        done = (term | trunc) & is_valid
        runner.env_steps += n
        for i in np.flatnonzero(done):
            result.episode_returns.append(float(runner.running_return[i]))
            result.episode_steps.append(runner.env_steps)
            runner.running_return[i] = 0.0
        runner.prev_done = term | trunc
        runner.obs = next_np
    return Rollout(obs_buf, next_obs_buf, actions, logp_old, env_rewards, terminated, truncated, valid)


def learned_rewards(reward_fn: RewardFn, rollout: Rollout) -> torch.Tensor:
    """Score the rollout's valid transitions with ``reward_fn``; ``[n_steps, n_envs]``, 0 on reset steps."""
    with torch.no_grad():
        learned = reward_fn(rollout.flat(rollout.obs), rollout.flat(rollout.actions), rollout.flat(rollout.next_obs))
    learned = torch.as_tensor(learned, dtype=torch.float32).reshape(-1)
    n_valid = int(rollout.valid.sum())
    if learned.shape[0] != n_valid:
        raise ValueError(
            f"reward_fn must return one reward per transition ({n_valid}), got shape {tuple(learned.shape)}"
        )
    rewards = torch.zeros(rollout.valid.numel())
    rewards[rollout.valid.reshape(-1)] = learned
    return rewards.reshape(rollout.valid.shape)


def compute_advantages(
    agent: ActorCritic, rollout: Rollout, rewards: torch.Tensor, gamma: float, gae_lambda: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GAE advantages of a rollout, the value targets :math:`A_t + V(s_t)`, and :math:`V(s_t)`, all ``[T, N]``.

    The critic scores :math:`s_t` and :math:`s_{t+1}`; :func:`rl4llm.rl.gae` bootstraps from
    :math:`V(s_{t+1})` on a truncation and not on a termination.
    """
    steps, n = rollout.actions.shape
    obs_shape = tuple(rollout.obs.shape[2:])
    with torch.no_grad():
        values = agent.value(rollout.obs.reshape((-1,) + obs_shape)).reshape(steps, n)
        next_values = agent.value(rollout.next_obs.reshape((-1,) + obs_shape)).reshape(steps, n)
    advantages = gae(rewards, values, next_values, rollout.terminated, rollout.truncated, gamma, gae_lambda)
    returns = advantages + values
    return advantages, returns, values


def ppo_update(
    agent: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    config: PPOConfig,
    clip_eps: float,
    generator: torch.Generator,
) -> dict[str, float]:
    """``config.n_epochs`` passes of minibatch steps on the loss
    :math:`-L^{CLIP} + c_V \\mathcal L_V - c_H \\mathcal H`; returns the mean of the logged figures.

    ``batch`` holds flat ``obs``, ``actions``, ``logp`` (old), ``advantages``, ``returns`` and ``values`` (old).
    An epoch stops early once :func:`~rl4llm.rl.losses.approx_kl` exceeds ``config.target_kl``.

    ``batch["logp"] = None`` drops the importance ratio: each minibatch takes :math:`\\log\\pi_{old}` to be its own
    current :math:`\\log\\pi_\\theta` (detached), so :math:`\\rho \\equiv 1` and the policy term's gradient is the
    plain policy gradient :math:`-\\text{mean}(A \\nabla \\log \\pi_\\theta)`, whoever collected the data.
    """
    size = batch["obs"].shape[0]
    mb_size = max(1, math.ceil(size / config.n_minibatches))
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_frac": 0.0}
    n_updates = 0
    for _epoch in range(config.n_epochs):
        perm = torch.randperm(size, generator=generator)
        for start in range(0, size, mb_size):
            idx = perm[start : start + mb_size]
            logits = agent.logits(batch["obs"][idx])
            logp_new = torch.log_softmax(logits, dim=-1).gather(1, batch["actions"][idx, None]).squeeze(1)
            logp_old = batch["logp"][idx] if batch["logp"] is not None else logp_new.detach()
            adv = normalize_advantages(batch["advantages"][idx]) if config.norm_adv else batch["advantages"][idx]
            pg_loss = ppo_clip_loss(logp_new, logp_old, adv, clip_eps)
            new_values = agent.value(batch["obs"][idx])
            v_loss = clipped_value_loss(
                new_values, batch["values"][idx], batch["returns"][idx], clip_eps if config.clip_value else None
            )
            entropy = entropy_bonus(logits)
            loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
            optimizer.step()
            kl = float(approx_kl(logp_new, logp_old))
            stats["policy_loss"] += pg_loss.item()
            stats["value_loss"] += v_loss.item()
            stats["entropy"] += entropy.item()
            stats["approx_kl"] += kl
            stats["clip_frac"] += float(clip_fraction(logp_new, logp_old, clip_eps))
            n_updates += 1
            if config.target_kl is not None and kl > config.target_kl:
                return {k: v / n_updates for k, v in stats.items()}
    return {k: v / max(1, n_updates) for k, v in stats.items()}


def _hook_state(
    iteration: int, runner: VecEnvRunner, agent: ActorCritic, rollout: Rollout, result: PPOResult
) -> dict[str, Any]:
    """What ``on_rollout`` sees: the iteration (0-based), the step count, the agent, the rollout's valid
    transitions (flat) and the episode returns and curves so far."""
    return {
        "iteration": iteration,
        "env_steps": runner.env_steps,
        "agent": agent,
        "obs": rollout.flat(rollout.obs),
        "actions": rollout.flat(rollout.actions),
        "next_obs": rollout.flat(rollout.next_obs),
        "terminated": rollout.flat(rollout.terminated),
        "episode_returns": result.episode_returns,
        "curves": result.curves,
    }


def _checked_batch(replaced: Any, fresh: dict[str, Any]) -> dict[str, Any]:
    """``on_batch``'s answer, checked: a dict with the fresh batch's keys and one row per transition."""
    if not isinstance(replaced, dict) or set(replaced) != set(fresh):
        raise ValueError(f"on_batch must return a dict with keys {sorted(fresh)}, got {replaced!r:.80}")
    size = replaced["obs"].shape[0]
    for key, value in replaced.items():
        if value is None and key == "logp":
            continue
        if not isinstance(value, torch.Tensor) or value.shape[0] != size:
            raise ValueError(f"on_batch's batch[{key!r}] must be a tensor with {size} rows (one per transition)")
    return replaced


def train_ppo(
    make_env: Callable[[], gymnasium.Env] | str,
    config: PPOConfig | None = None,
    reward_fn: RewardFn | None = None,
    callback: Callback | None = None,
    agent: ActorCritic | None = None,
    desc: str = "PPO",
    on_rollout: RolloutHook | None = None,
    on_batch: BatchHook | None = None,
) -> PPOResult:
    """Train a categorical actor-critic with PPO on ``config.n_envs`` copies of ``make_env()``.

    Args:
        make_env: zero-argument factory returning a gymnasium env with a ``Discrete`` action space (or an env id).
        config: hyperparameters (default :class:`PPOConfig`).
        reward_fn: optional learned reward. When given, it REPLACES the environment reward for learning:
            it is called once per iteration on all valid transitions of the rollout as
            ``reward_fn(obs, actions, next_obs)`` with float ``obs``/``next_obs`` of shape ``[M, *obs_shape]`` and
            long ``actions`` of shape ``[M]``, under ``torch.no_grad()``, and must return ``[M]`` rewards.
            ``next_obs`` of a transition that ended an episode is that episode's last observation.
        callback: optional ``callback(iteration, info, agent)`` (the protocol of :mod:`rl4llm.rl.common`), called
            after each iteration's update with the iterations done so far, that iteration's row of ``curves``
            (``env_steps`` = the steps the agent has learned from) and the agent. Returning ``False`` stops.
        agent: optional agent to continue training (default: a fresh one with ``config.hidden`` units).
        desc: progress-bar label.
        on_rollout: optional ``on_rollout(state)`` called once per iteration after the rollout is collected and
            *before* its rewards are computed and the policy updated (so an adversarial-IRL discriminator can be
            trained on the fresh policy samples first). ``state`` has ``iteration`` (0-based), ``env_steps``,
            ``agent``, ``obs``, ``actions``, ``next_obs`` (the valid transitions, as passed to ``reward_fn``),
            ``terminated``, ``episode_returns`` and ``curves``. Returning ``False`` stops training.
        on_batch: optional ``on_batch(iteration, batch, agent)`` called once per iteration with the fresh batch
            (flat ``obs``, ``actions``, ``logp``, ``advantages``, ``returns``, ``values`` of the valid transitions,
            advantages from the critic of the moment) just before the update; it returns the batch the update
            trains on, with the same keys: the fresh one, or for instance the batch of ``k`` iterations ago (stale
            rollouts, section 1.5), with ``logp = None`` to drop the importance ratio (see :func:`ppo_update`).
            Without it (the default) every update trains on its own fresh batch.

    Returns:
        A :class:`PPOResult`.
    """
    config = PPOConfig() if config is None else config
    if not isinstance(config, PPOConfig):
        raise ValueError(f"config must be a PPOConfig, got {type(config).__name__}")
    hooks = (("reward_fn", reward_fn), ("callback", callback), ("on_rollout", on_rollout), ("on_batch", on_batch))
    for name, fn in hooks:
        if fn is not None and not callable(fn):
            raise ValueError(f"{name} must be callable or None")
    factory = make_env_fn(make_env)
    set_torch_threads(config.torch_threads)
    set_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    t_start = time.perf_counter()
    runner = VecEnvRunner(factory, config.n_envs, config.seed)
    if agent is None:
        agent = ActorCritic(runner.envs.single_observation_space, runner.envs.single_action_space, hidden=config.hidden)
    # foreach: the multi-tensor Adam, the same arithmetic per element as the default single-tensor loop (same
    # numbers for a seed) but one kernel per step for all tensors, about 15% faster for these small MLPs on a CPU.
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr, eps=1e-5, foreach=True)
    result = PPOResult(agent=agent)

    for iteration in progress(range(config.iterations), desc=desc):
        frac_left = 1.0 - iteration / config.iterations
        clip_eps = config.clip_eps * frac_left if config.anneal_clip else config.clip_eps
        if config.anneal_lr:
            for group in optimizer.param_groups:
                group["lr"] = config.lr * frac_left

        # 1. collect a rollout with the current (old) policy
        rollout = collect_rollout(runner, agent, config.n_steps, gen, result)
        if on_rollout is not None and on_rollout(_hook_state(iteration, runner, agent, rollout, result)) is False:
            break
        # 2. score it: the environment's reward or a learned one
        rewards = rollout.rewards if reward_fn is None else learned_rewards(reward_fn, rollout)
        # 3. advantages with GAE(gamma, lambda)
        advantages, returns, values = compute_advantages(agent, rollout, rewards, config.gamma, config.gae_lambda)
        # 4. n_epochs of minibatch updates on the valid transitions
        batch = {
            "obs": rollout.flat(rollout.obs),
            "actions": rollout.flat(rollout.actions),
            "logp": rollout.flat(rollout.logp),
            "advantages": rollout.flat(advantages),
            "returns": rollout.flat(returns),
            "values": rollout.flat(values),
        }
        if on_batch is not None:
            batch = _checked_batch(on_batch(iteration, batch, agent), batch)
        stats = ppo_update(agent, optimizer, batch, config, clip_eps, gen)

        row: dict[str, float] = {
            "iteration": iteration + 1,
            "env_steps": runner.env_steps,
            "mean_return": result.final_return(20),
            "episodes": len(result.episode_returns),
        }
        row.update(stats)
        result.curves.append(row)
        if call_back(callback, iteration + 1, row, agent):
            break

    runner.close()
    result.env_steps = runner.env_steps
    result.wall_s = time.perf_counter() - t_start
    return result
