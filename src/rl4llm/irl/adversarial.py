"""Adversarial inverse RL: GAIL with the package's PPO as the generator (book section 4.2).

Generative adversarial imitation learning (Ho & Ermon 2016) replaces MaxEnt IRL's inner loop ("solve the MDP
for the current reward") by a single policy-improvement step, and the reward by a classifier. A discriminator
:math:`D_\\psi(s, a) = \\sigma(f_\\psi(s, a))` learns to tell the expert's state-action pairs from the current
policy's by minimising the logistic loss (:func:`discriminator_loss`)

.. math::
   \\mathcal L_D(\\psi) = -\\mathbb E_{(s,a) \\sim \\pi_E}[\\log D_\\psi(s,a)]
                         - \\mathbb E_{(s,a) \\sim \\pi_\\theta}[\\log(1 - D_\\psi(s,a))],

and the policy is improved by PPO on a reward made from the discriminator (:func:`adversarial_reward`). At the
optimum of :math:`\\mathcal L_D` the logit is the log density ratio,
:math:`f^*(s,a) = \\log \\rho_E(s,a) / \\rho_\\theta(s,a)`, so the reward says "the expert visits this pair more
often than you do". Two forms are common, and on a task whose episodes can *end* their sign matters:

* ``"gail"``: :math:`r = -\\log(1 - D) = \\mathrm{softplus}(f) > 0` (Ho & Ermon's cost :math:`\\log(1 - D)` with
  the sign flipped). Every step earns something, so living longer pays whatever the discriminator says: a
  *survival bonus*, which on CartPole (where surviving is the task) helps, and on a task that should end (reach
  a goal) hurts (Kostrikov et al. 2019).
* ``"logit"``: :math:`r = \\log D - \\log(1 - D) = f` (AIRL's form, Fu et al. 2018). On the learner's own
  samples its mean is :math:`-\\mathrm{KL}(\\rho_\\theta \\| \\rho_E) \\le 0`, the opposite bias: ending an episode
  early saves negative rewards. With ``absorbing=True`` the discriminator also scores the absorbing state that
  follows a terminal transition, so that how expert-like *ending* is gets learned too (Kostrikov et al. 2019).

:func:`train_gail` alternates the two steps through :func:`rl4llm.rl.train_ppo`'s hooks: its ``on_rollout`` hook runs
after each rollout and trains the discriminator on the fresh policy samples against the demonstrations; its
``reward_fn`` then scores the same rollout with the updated discriminator, before PPO's update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium
import numpy as np
import torch
from torch import nn

from rl4llm.config import ConfigError, param, validate
from rl4llm.rl.agent import ActorCritic, ObsEncoder, mlp
from rl4llm.rl.common import evaluate, make_env_fn
from rl4llm.rl.ppo import PPOConfig, PPOResult, train_ppo
from rl4llm.utils import check_choice, check_positive_int, set_seed

__all__ = ["discriminator_loss", "adversarial_reward", "Discriminator", "GAILConfig", "GAILResult", "train_gail"]


def _check_logits(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 1 or x.numel() == 0:
        raise ValueError(f"{name} must be a non-empty [B] tensor of logits, got shape {tuple(x.shape)}")
    return x


def discriminator_loss(expert_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's logistic loss, with :math:`D = \\sigma(f)` the probability of "expert":

    .. math::  \\mathcal L_D = -\\text{mean}_E \\log\\sigma(f_E) - \\text{mean}_\\pi \\log(1 - \\sigma(f_\\pi))
               = \\text{mean}_E\\, \\mathrm{softplus}(-f_E) + \\text{mean}_\\pi\\, \\mathrm{softplus}(f_\\pi).

    Args:
        expert_logits: ``[B_E]`` logits :math:`f` on the expert's state-action pairs.
        policy_logits: ``[B_\\pi]`` logits on the policy's pairs (the two batches may differ in size).

    Returns:
        A scalar; :math:`2 \\log 2` when every logit is 0 (a discriminator that cannot tell).
    """
    _check_logits("expert_logits", expert_logits)
    _check_logits("policy_logits", policy_logits)
    # BEGIN SOLUTION
    return nn.functional.softplus(-expert_logits).mean() + nn.functional.softplus(policy_logits).mean()
    # END SOLUTION


def adversarial_reward(logits: torch.Tensor, form: str = "gail") -> torch.Tensor:
    """The reward the generator receives for pairs the discriminator scored with ``logits`` :math:`f`.

    * ``"gail"``: :math:`r = -\\log(1 - D) = \\mathrm{softplus}(f) > 0` (GAIL's form: a survival bonus);
    * ``"logit"``: :math:`r = \\log D - \\log(1 - D) = f` (AIRL's form: negative on average on the learner's
      own samples).
    """
    _check_logits("logits", logits)
    check_choice("form", form, ("gail", "logit"))
    # BEGIN SOLUTION
    if form == "gail":
        return nn.functional.softplus(logits)
    return logits.clone()
    # END SOLUTION


class Discriminator(nn.Module):
    """:math:`f_\\psi(s, a)`: an MLP on the encoded observation, the one-hot action and an *absorbing* flag.

    The flag marks the absorbing state that follows a terminal transition (Kostrikov et al. 2019): its input is
    zeros except the flag, so the discriminator can learn how expert-like *ending an episode* is.
    """

    def __init__(self, observation_space: gymnasium.Space, action_space: gymnasium.Space, hidden: int = 64) -> None:
        super().__init__()
        if not isinstance(action_space, gymnasium.spaces.Discrete):
            raise ValueError(f"action space must be Discrete, got {action_space}")
        hidden = check_positive_int("hidden", hidden)
        self.encoder = ObsEncoder(observation_space)
        self.n_actions = int(action_space.n)
        self.net = mlp(self.encoder.features + self.n_actions + 1, 1, hidden, out_gain=1.0)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[B]`` logits of "this pair comes from the expert"."""
        a = nn.functional.one_hot(actions.long(), self.n_actions).float()
        x = torch.cat([self.encoder(obs), a, torch.zeros(obs.shape[0], 1)], dim=-1)
        return self.net(x).squeeze(-1)

    def absorbing(self, n: int = 1) -> torch.Tensor:
        """``[n]`` logits of the absorbing state (all ``n`` equal)."""
        x = torch.zeros(n, self.encoder.features + self.n_actions + 1)
        x[:, -1] = 1.0
        return self.net(x).squeeze(-1)


@dataclass
class GAILConfig:
    """GAIL's own settings; the generator's are a :class:`~rl4llm.rl.PPOConfig` (``ppo``).

    ``disc_steps = 0`` leaves the discriminator at its random initialisation, a control that shows what the *form*
    of the reward does without any learning. ``absorbing`` learns a reward for the absorbing state after a
    terminal transition and adds its discounted value :math:`\\gamma\\, r_{abs} / (1 - \\gamma)` to the reward of
    terminal transitions.
    """

    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(total_steps=60_000))
    disc_hidden: int = param(32, low=1, help="width of the discriminator's two hidden layers")
    disc_lr: float = param(3e-4, low=0.0, low_inclusive=False, help="Adam step size of the discriminator")
    disc_steps: int = param(
        2,
        low=0,
        help="discriminator updates per PPO iteration, each on the whole rollout "
        "against a resample of the demonstrations (0: a random, fixed reward)",
    )
    disc_weight_decay: float = param(
        1e-3,
        low=0.0,
        help="L2 penalty on the discriminator's weights (it sees few "
        "expert pairs and would otherwise separate them perfectly)",
    )
    anneal_disc_lr: bool = param(
        True,
        help="decay the discriminator's step size linearly to 0, as PPO's is, so "
        "the last PPO updates optimise a nearly fixed reward",
    )
    reward_form: str = param("gail", choices=("gail", "logit"), help="the reward of adversarial_reward")
    absorbing: bool = param(False, help="learn a reward for the absorbing state after a terminal transition")
    eval_episodes: int = param(10, low=1, help="episodes of the final deterministic evaluation (true reward)")

    def __post_init__(self) -> None:
        if not isinstance(self.ppo, PPOConfig):
            raise ConfigError("ppo", f"ppo must be a PPOConfig, got {type(self.ppo).__name__}")
        validate(self)
        if self.absorbing and self.ppo.gamma >= 1.0:
            raise ConfigError(
                "absorbing", "absorbing=True needs ppo.gamma < 1 (the absorbing state's value is r / (1 - gamma))"
            )


@dataclass
class GAILResult:
    """What :func:`train_gail` returns: the PPO run (``ppo.agent`` is the imitator), the discriminator, one row
    per iteration in ``curves`` (the PPO curves plus the discriminator's loss, its accuracies on expert and
    policy pairs and its logit of the absorbing state) and the final evaluation returns under the true reward."""

    ppo: PPOResult
    discriminator: Discriminator
    curves: list[dict[str, float]]
    eval_returns: np.ndarray
    wall_s: float = 0.0


def train_gail(
    make_env: Callable[[], gymnasium.Env] | str,
    expert_obs,
    expert_actions,
    config: GAILConfig | None = None,
    expert_terminations: int = 0,
    agent: ActorCritic | None = None,
    desc: str = "GAIL",
) -> GAILResult:
    """GAIL: PPO on the reward of a discriminator trained online against the demonstrations.

    Each PPO iteration, :func:`rl4llm.rl.train_ppo` calls its ``on_rollout`` hook after collecting its rollout;
    the hook takes
    ``disc_steps`` Adam steps on :func:`discriminator_loss` (the rollout's pairs against as many demonstrated
    pairs, resampled), and the rollout is then scored with :func:`adversarial_reward` of the updated
    discriminator (plus, with ``absorbing``, the absorbing state's value on terminal transitions) before
    PPO's update.

    Args:
        make_env: env factory or id (the generator's environment; its own reward is only logged, never learned
            from).
        expert_obs: ``[N, *obs_shape]`` demonstrated observations.
        expert_actions: ``[N]`` demonstrated actions.
        config: :class:`GAILConfig`.
        expert_terminations: how many demonstrated episodes ended in a terminal state (each contributes an
            absorbing state to the expert's data; a CartPole expert that never falls has 0).
        agent: optional initial generator (e.g. the behaviour-cloned policy, as RLHF starts RL from the SFT
            model); default: a fresh :class:`~rl4llm.rl.ActorCritic`.
    """
    config = GAILConfig() if config is None else config
    if not isinstance(config, GAILConfig):
        raise ValueError(f"config must be a GAILConfig, got {type(config).__name__}")
    factory = make_env_fn(make_env)
    e_obs = torch.as_tensor(np.asarray(expert_obs), dtype=torch.float32)
    e_act = torch.as_tensor(np.asarray(expert_actions), dtype=torch.long)
    if e_obs.shape[0] == 0 or e_act.shape != (e_obs.shape[0],):
        raise ValueError(
            f"expert_obs [N, ...] and expert_actions [N] must be non-empty and agree in N, got "
            f"{tuple(e_obs.shape)} and {tuple(e_act.shape)}"
        )
    expert_terminations = check_positive_int("expert_terminations", expert_terminations, 0)
    t0 = time.perf_counter()
    set_seed(config.ppo.seed)
    env = factory()
    disc = Discriminator(env.observation_space, env.action_space, hidden=config.disc_hidden)
    env.close()
    opt = torch.optim.Adam(disc.parameters(), lr=config.disc_lr, weight_decay=config.disc_weight_decay)
    gen = torch.Generator().manual_seed(config.ppo.seed + 1)
    # the expert's data: N pairs and, with `absorbing`, one absorbing state per terminated demonstration
    n_expert = e_obs.shape[0] + (expert_terminations if config.absorbing else 0)
    disc_log: list[dict[str, float]] = []
    rollout: dict[str, torch.Tensor] = {}
    gamma = config.ppo.gamma

    def logits_of(obs: torch.Tensor, actions: torch.Tensor, n_absorbing: int) -> torch.Tensor:
        parts = [disc(obs, actions)] if obs.shape[0] else []
        if n_absorbing:
            parts.append(disc.absorbing(n_absorbing))
        return torch.cat(parts)

    # -- the two hooks of train_ppo --
    def train_discriminator(state: dict) -> None:
        rollout["terminated"] = state["terminated"].clone()
        p_obs, p_act = state["obs"], state["actions"]
        p_abs = int(state["terminated"].sum()) if config.absorbing else 0
        n_batch = p_obs.shape[0] + p_abs
        if config.anneal_disc_lr:
            for group in opt.param_groups:
                group["lr"] = config.disc_lr * (1.0 - state["iteration"] / config.ppo.iterations)
        stats = {"disc_loss": 0.0, "disc_expert_acc": 0.0, "disc_policy_acc": 0.0}
        steps = max(1, config.disc_steps)
        for _ in range(steps):
            idx = torch.randint(0, n_expert, (n_batch,), generator=gen)
            pairs = idx[idx < e_obs.shape[0]]
            f_e = logits_of(e_obs[pairs], e_act[pairs], int((idx >= e_obs.shape[0]).sum()))
            f_p = logits_of(p_obs, p_act, p_abs)
            loss = discriminator_loss(f_e, f_p)
            stats["disc_loss"] += loss.item() / steps
            stats["disc_expert_acc"] += float((f_e > 0).float().mean()) / steps
            stats["disc_policy_acc"] += float((f_p < 0).float().mean()) / steps
            if config.disc_steps == 0:  # the control: measure, never train
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            stats["absorbing_logit"] = float(disc.absorbing(1)[0])
        disc_log.append(stats)

    def reward_fn(obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        reward = adversarial_reward(disc(obs, actions), config.reward_form)
        if config.absorbing:
            terminated = rollout["terminated"]
            if terminated.shape != reward.shape:  # the hook saw a different batch: a misuse of the hooks
                raise RuntimeError("reward_fn must score the transitions on_rollout just received")
            r_abs = adversarial_reward(disc.absorbing(1), config.reward_form)[0]
            reward = reward + terminated * gamma / (1.0 - gamma) * r_abs
        return reward

    # -- end of the hooks --

    ppo_result = train_ppo(
        factory, config.ppo, reward_fn=reward_fn, on_rollout=train_discriminator, agent=agent, desc=desc
    )
    curves = [{**row, **d} for row, d in zip(ppo_result.curves, disc_log)]
    eval_returns = evaluate(ppo_result.agent, factory, n_episodes=config.eval_episodes, seed=10_000)
    return GAILResult(
        ppo=ppo_result, discriminator=disc, curves=curves, eval_returns=eval_returns, wall_s=time.perf_counter() - t0
    )
