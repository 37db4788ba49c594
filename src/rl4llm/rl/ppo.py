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

Gymnasium 1.x vector environments reset *on the next step*: after an episode ends at step ``t``, the call at
``t + 1`` ignores the action, resets that sub-environment and returns its first observation with reward 0. That
step is not a transition of the MDP, so it is masked out of the loss (``valid = False``). The upside is that
the observation returned at ``t`` is the true last observation, which GAE bootstraps from on truncation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
import torch

from rl4llm.rl.agent import ActorCritic
from rl4llm.rl.losses import clipped_value_loss, entropy_bonus, normalize_advantages, ppo_clip_loss
from rl4llm.rl.returns import gae
from rl4llm.utils import check_positive_int, check_range, progress, set_seed, set_torch_threads

__all__ = ["PPOConfig", "PPOResult", "train_ppo", "evaluate", "make_env_fn", "token_ppo_config", "RewardFn",
           "Callback"]

#: ``reward_fn(obs [M, *obs_shape] float, actions [M] long, next_obs [M, *obs_shape] float) -> [M]``
RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
#: ``callback(state: dict) -> bool | None``; returning ``False`` stops training (see :func:`train_ppo`).
Callback = Callable[[dict[str, Any]], Any]


@dataclass
class PPOConfig:
    """PPO hyperparameters. Defaults solve CartPole-v1 (return 500) in about 100k steps.

    ``anneal_lr`` / ``anneal_clip`` decay the learning rate / the clip range linearly to 0 over training (the RL Zoo
    anneals both for CartPole). ``clip_eps = inf`` switches the ratio clipping off (then PPO is a many-epoch vanilla
    policy gradient with
    importance weights, the "unclipped" arm of the book's why-PPO experiment).
    """

    total_steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 32
    n_epochs: int = 20
    n_minibatches: int = 1
    lr: float = 1e-3
    anneal_lr: bool = True
    anneal_clip: bool = False
    gamma: float = 0.98
    gae_lambda: float = 0.8
    clip_eps: float = 0.2
    clip_value: bool = False
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    target_kl: float | None = None
    hidden: int = 64
    seed: int = 0
    torch_threads: int = 1

    def __post_init__(self) -> None:
        check_positive_int("total_steps", self.total_steps)
        check_positive_int("n_envs", self.n_envs)
        check_positive_int("n_steps", self.n_steps)
        check_positive_int("n_epochs", self.n_epochs)
        check_positive_int("n_minibatches", self.n_minibatches)
        if self.n_minibatches > self.n_envs * self.n_steps:
            raise ValueError(f"n_minibatches must be in [1, n_envs * n_steps = {self.n_envs * self.n_steps}], "
                             f"got {self.n_minibatches}")
        check_range("lr", self.lr, 0.0, None, low_inclusive=False)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        if not (isinstance(self.clip_eps, (int, float)) and math.isinf(self.clip_eps) and self.clip_eps > 0):
            check_range("clip_eps", self.clip_eps, 0.0, None)
        check_range("vf_coef", self.vf_coef, 0.0, None)
        check_range("ent_coef", self.ent_coef, 0.0, None)
        check_range("max_grad_norm", self.max_grad_norm, 0.0, None, low_inclusive=False)
        if self.target_kl is not None:
            check_range("target_kl", self.target_kl, 0.0, None, low_inclusive=False)
        check_positive_int("hidden", self.hidden)
        check_positive_int("seed", self.seed, 0)
        check_positive_int("torch_threads", self.torch_threads)
        for flag in ("anneal_lr", "anneal_clip", "clip_value", "norm_adv"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be a bool, got {getattr(self, flag)!r}")

    @property
    def batch_size(self) -> int:
        return self.n_envs * self.n_steps

    @property
    def n_iterations(self) -> int:
        return max(1, self.total_steps // self.batch_size)


#: PPO settings for the token-level MDP (sections 1.5 and 1.6): 8 envs x 64 steps per batch, 4 epochs of 4
#: minibatches, no discount (the reward is a score of the whole sequence), lambda = 0.95, an entropy bonus of 0.03
#: (the best of {0, 0.01, 0.03, 0.05} on the 96-token why-PPO task: smaller ones let the policy collapse early).
TOKEN_PPO_SETTINGS: dict[str, Any] = dict(n_envs=8, n_steps=64, n_epochs=4, n_minibatches=4, lr=3e-3, gamma=1.0,
                                          gae_lambda=0.95, ent_coef=0.03)


def token_ppo_config(**overrides: Any) -> PPOConfig:
    """A :class:`PPOConfig` with the chapter's token-MDP settings (:data:`TOKEN_PPO_SETTINGS`), then ``overrides``."""
    return PPOConfig(**{**TOKEN_PPO_SETTINGS, **overrides})


@dataclass
class PPOResult:
    """What :func:`train_ppo` returns.

    Attributes:
        agent: the trained :class:`~rl4llm.rl.agent.ActorCritic` (``agent.act(obs, deterministic=...)``).
        episode_returns: true environment return of every finished training episode, in order.
        episode_steps: the global environment step at which each of those episodes ended.
        curves: one dict per iteration (``env_steps``, ``mean_return`` of the last 20 episodes, losses, ``approx_kl``,
            ``clip_frac``, ``entropy``).
        env_steps: environment steps taken in total.
        wall_s: seconds of training.
    """

    agent: ActorCritic
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


def train_ppo(make_env: Callable[[], gymnasium.Env] | str, config: PPOConfig | None = None,
              reward_fn: RewardFn | None = None, callback: Callback | None = None,
              agent: ActorCritic | None = None, desc: str = "PPO") -> PPOResult:
    """Train a categorical actor-critic with PPO on ``config.n_envs`` copies of ``make_env()``.

    Args:
        make_env: zero-argument factory returning a gymnasium env with a ``Discrete`` action space (or an env id).
        config: hyperparameters (default :class:`PPOConfig`).
        reward_fn: optional learned reward. When given, it REPLACES the environment reward for learning:
            it is called once per iteration on all valid transitions of the rollout as
            ``reward_fn(obs, actions, next_obs)`` with float ``obs``/``next_obs`` of shape ``[M, *obs_shape]`` and
            long ``actions`` of shape ``[M]``, under ``torch.no_grad()``, and must return ``[M]`` rewards.
            ``next_obs`` of a transition that ended an episode is that episode's last observation.
        callback: optional ``callback(state)`` called once per iteration, after the rollout is collected and
            *before* the rewards are computed and the policy updated (so an adversarial-IRL discriminator can be
            trained on the fresh policy samples first). ``state`` has ``iteration``, ``env_steps``, ``agent``,
            ``obs``, ``actions``, ``next_obs`` (the valid transitions, as passed to ``reward_fn``), ``terminated``,
            ``episode_returns`` and ``curves``. Returning ``False`` stops training.
        agent: optional agent to continue training (default: a fresh one with ``config.hidden`` units).
        desc: progress-bar label.

    Returns:
        A :class:`PPOResult`.
    """
    config = PPOConfig() if config is None else config
    if not isinstance(config, PPOConfig):
        raise ValueError(f"config must be a PPOConfig, got {type(config).__name__}")
    if reward_fn is not None and not callable(reward_fn):
        raise ValueError("reward_fn must be callable or None")
    if callback is not None and not callable(callback):
        raise ValueError("callback must be callable or None")
    factory = make_env_fn(make_env)
    set_torch_threads(config.torch_threads)
    set_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    t_start = time.perf_counter()

    envs = gymnasium.vector.SyncVectorEnv([factory for _ in range(config.n_envs)],
                                          autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if agent is None:
        agent = ActorCritic(obs_space, act_space, hidden=config.hidden)
    # foreach: the multi-tensor Adam, the same arithmetic per element as the default single-tensor loop (same
    # numbers for a seed) but one kernel per step for all tensors, about 15% faster for these small MLPs on a CPU.
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr, eps=1e-5, foreach=True)

    n, steps = config.n_envs, config.n_steps
    obs_shape = tuple(obs_space.shape)
    obs_np, _ = envs.reset(seed=config.seed)
    prev_done = np.zeros(n, dtype=bool)
    running_return = np.zeros(n)
    result = PPOResult(agent=agent)
    env_steps = 0

    for iteration in progress(range(config.n_iterations), desc=desc):
        frac_left = 1.0 - iteration / config.n_iterations
        clip_eps = config.clip_eps * frac_left if config.anneal_clip else config.clip_eps
        if config.anneal_lr:
            for group in optimizer.param_groups:
                group["lr"] = config.lr * (1.0 - iteration / config.n_iterations)

        # ---- 1. collect a rollout with the current (old) policy ------------------------------------------
        obs_buf = torch.zeros((steps, n) + obs_shape)
        next_obs_buf = torch.zeros((steps, n) + obs_shape)
        actions = torch.zeros((steps, n), dtype=torch.long)
        logp_old = torch.zeros((steps, n))
        env_rewards = torch.zeros((steps, n))
        terminated = torch.zeros((steps, n))
        truncated = torch.zeros((steps, n))
        valid = torch.zeros((steps, n), dtype=torch.bool)
        for t in range(steps):
            obs_t = torch.as_tensor(obs_np, dtype=torch.float32)
            with torch.no_grad():
                logits = agent.logits(obs_t)
                probs = torch.softmax(logits, dim=-1)
                action = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
                logp = torch.log_softmax(logits, dim=-1).gather(1, action[:, None]).squeeze(1)
            next_np, reward, term, trunc, _ = envs.step(action.numpy())
            obs_buf[t] = obs_t
            next_obs_buf[t] = torch.as_tensor(next_np, dtype=torch.float32)
            actions[t] = action
            logp_old[t] = logp
            is_valid = ~prev_done  # the step after an episode's end is gymnasium's reset step, not a transition
            valid[t] = torch.as_tensor(is_valid)
            env_rewards[t] = torch.as_tensor(np.where(is_valid, reward, 0.0), dtype=torch.float32)
            terminated[t] = torch.as_tensor(np.where(is_valid, term, True), dtype=torch.float32)
            truncated[t] = torch.as_tensor(np.where(is_valid, trunc, False), dtype=torch.float32)
            running_return += np.where(is_valid, reward, 0.0)
            done = (term | trunc) & is_valid
            env_steps += n
            for i in np.flatnonzero(done):
                result.episode_returns.append(float(running_return[i]))
                result.episode_steps.append(env_steps)
                running_return[i] = 0.0
            prev_done = term | trunc
            obs_np = next_np

        flat_valid = valid.reshape(-1)
        if callback is not None:
            state = {"iteration": iteration, "env_steps": env_steps, "agent": agent,
                     "obs": obs_buf.reshape((-1,) + obs_shape)[flat_valid],
                     "actions": actions.reshape(-1)[flat_valid],
                     "next_obs": next_obs_buf.reshape((-1,) + obs_shape)[flat_valid],
                     "terminated": terminated.reshape(-1)[flat_valid],
                     "episode_returns": result.episode_returns, "curves": result.curves}
            if callback(state) is False:
                break

        # ---- 2. score: environment reward or a learned reward --------------------------------------------
        rewards = env_rewards
        if reward_fn is not None:
            with torch.no_grad():
                learned = reward_fn(obs_buf.reshape((-1,) + obs_shape)[flat_valid], actions.reshape(-1)[flat_valid],
                                    next_obs_buf.reshape((-1,) + obs_shape)[flat_valid])
            learned = torch.as_tensor(learned, dtype=torch.float32).reshape(-1)
            if learned.shape[0] != int(flat_valid.sum()):
                raise ValueError(f"reward_fn must return one reward per transition ({int(flat_valid.sum())}), "
                                 f"got shape {tuple(learned.shape)}")
            rewards = torch.zeros(steps * n)
            rewards[flat_valid] = learned
            rewards = rewards.reshape(steps, n)

        # ---- 3. advantages with GAE ------------------------------------------------------------------------
        with torch.no_grad():
            values = agent.value(obs_buf.reshape((-1,) + obs_shape)).reshape(steps, n)
            next_values = agent.value(next_obs_buf.reshape((-1,) + obs_shape)).reshape(steps, n)
        advantages = gae(rewards, values, next_values, terminated, truncated, config.gamma, config.gae_lambda)
        returns = advantages + values

        # ---- 4. several epochs of minibatch updates on the valid transitions ------------------------------
        b_obs = obs_buf.reshape((-1,) + obs_shape)[flat_valid]
        b_actions = actions.reshape(-1)[flat_valid]
        b_logp = logp_old.reshape(-1)[flat_valid]
        b_adv = advantages.reshape(-1)[flat_valid]
        b_ret = returns.reshape(-1)[flat_valid]
        b_val = values.reshape(-1)[flat_valid]
        size = b_obs.shape[0]
        mb_size = max(1, math.ceil(size / config.n_minibatches))
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_frac": 0.0}
        n_updates = 0
        stop = False
        for _epoch in range(config.n_epochs):
            perm = torch.randperm(size, generator=gen)
            for start in range(0, size, mb_size):
                idx = perm[start:start + mb_size]
                logits = agent.logits(b_obs[idx])
                logp_all = torch.log_softmax(logits, dim=-1)
                logp_new = logp_all.gather(1, b_actions[idx, None]).squeeze(1)
                adv = normalize_advantages(b_adv[idx]) if config.norm_adv else b_adv[idx]
                pg_loss = ppo_clip_loss(logp_new, b_logp[idx], adv, clip_eps)
                new_values = agent.value(b_obs[idx])
                v_loss = clipped_value_loss(new_values, b_val[idx], b_ret[idx],
                                            clip_eps if config.clip_value else None)
                entropy = entropy_bonus(logits)
                loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
                optimizer.step()
                with torch.no_grad():
                    log_ratio = logp_new - b_logp[idx]
                    approx_kl = float(((log_ratio.exp() - 1.0) - log_ratio).mean())
                    clip_frac = float(((log_ratio.exp() - 1.0).abs() > clip_eps).float().mean())
                stats["policy_loss"] += pg_loss.item()
                stats["value_loss"] += v_loss.item()
                stats["entropy"] += entropy.item()
                stats["approx_kl"] += approx_kl
                stats["clip_frac"] += clip_frac
                n_updates += 1
                if config.target_kl is not None and approx_kl > config.target_kl:
                    stop = True
                    break
            if stop:
                break

        row: dict[str, float] = {"iteration": iteration + 1, "env_steps": env_steps,
                                 "mean_return": result.final_return(20), "episodes": len(result.episode_returns)}
        row.update({k: v / max(1, n_updates) for k, v in stats.items()})
        result.curves.append(row)

    envs.close()
    result.env_steps = env_steps
    result.wall_s = time.perf_counter() - t_start
    return result


def evaluate(agent: ActorCritic, make_env: Callable[[], gymnasium.Env] | str, n_episodes: int = 10,
             seed: int = 0, deterministic: bool = True, max_steps: int = 100_000) -> np.ndarray:
    """Run ``n_episodes`` full episodes of ``agent`` in fresh copies of the env; return their true returns.

    Episode ``i`` is reset with seed ``seed + i``; stochastic actions draw from a generator seeded with ``seed``.
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
