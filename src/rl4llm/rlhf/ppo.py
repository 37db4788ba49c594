"""Step 3 of InstructGPT: PPO against the reward model with a per-token KL penalty (chapter 5, sections 2-3).

The language model is the policy of the token MDP (state = prefix, action = next token, transition = append).
One PPO iteration:

1. **Roll out** ``batch_size`` responses from the current policy :math:`\\pi_\\theta` (from ``<bos>``).
2. **Reward** each token: the KL penalty :math:`-\\beta\\,(\\log\\pi_\\theta(y_t|y_{<t}) - \\log\\pi_{ref}(y_t|y_{<t}))`
   at every step, plus the reward model's score :math:`r_\\phi(y)` at the last token only
   (Ziegler et al. 2019; Stiennon et al. 2020; Ouyang et al. 2022):

   .. math:: r_t = -\\beta\\, k_1(t) + \\mathbb 1[t = T]\\, r_\\phi(y).

   Summed over the sequence this is :math:`r_\\phi(y) - \\beta \\log \\pi_\\theta(y)/\\pi_{ref}(y)`, whose
   expectation is the KL-regularised objective
   :math:`\\mathbb E[r_\\phi] - \\beta\\,\\mathrm{KL}(\\pi_\\theta\\|\\pi_{ref})`.
3. **Advantages** by GAE (:func:`rl4llm.rl.gae`) with :math:`\\gamma = 1` (the episode is short and the reward comes
   at the end), then whitened over the batch's tokens.
4. **Update** for a few epochs over minibatches: the clipped surrogate (:func:`rl4llm.rl.ppo_clip_loss`) for the
   policy, the clipped value loss for the critic (a separate GPT-2 with a scalar head, initialised from the
   reward model as in InstructGPT), gradient-norm clipping.
5. **Adapt** :math:`\\beta` (:class:`rl4llm.rlhf.AdaptiveKLController`) if a KL target is given.

Steps 1-4 are :func:`collect_lm_rollout`, :func:`lm_advantages` (with :func:`kl_penalised_rewards` and
:func:`token_advantages`) and :func:`lm_ppo_update`; :func:`train_ppo_rlhf` is the loop over them, shaped like
chapter 1's :func:`rl4llm.rl.train_ppo` and configured with the same knob names (:class:`PPORLHFConfig`).

Dropout is off (the models stay in ``eval()`` mode), so the importance ratio is exactly 1 at the start of each
update, as PPO assumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rl4llm.config import param, validate
from rl4llm.rl import approx_kl, clip_fraction, clipped_value_loss, entropy_bonus, gae, masked_whiten, ppo_clip_loss
from rl4llm.rl.common import Callback, call_back
from rl4llm.rlhf.kl import AdaptiveKLController, FixedKLController, kl_k1
from rl4llm.rlhf.reward_model import ValueModel
from rl4llm.rlhf.rollout import SequenceBatch, response_logprobs, sample_prompted_sequences, sample_sequences
from rl4llm.utils import check_range, progress

if TYPE_CHECKING:
    from rl4llm.distributed import Runtime

__all__ = [
    "PPORLHFConfig",
    "PPORLHFHistory",
    "LMRollout",
    "collect_lm_rollout",
    "lm_advantages",
    "lm_ppo_update",
    "kl_penalised_rewards",
    "token_advantages",
    "token_entropy",
    "train_ppo_rlhf",
]


@dataclass
class PPORLHFConfig:
    """Hyperparameters of PPO for language models (defaults: the chapter's runs).

    The knobs it shares with chapter 1's :class:`rl4llm.rl.PPOConfig` have the same names (``lr``, ``n_epochs``,
    ``n_minibatches``, ``gamma``, ``gae_lambda``, ``clip_eps``, ``clip_value``, ``vf_coef``, ``max_grad_norm``,
    ``norm_adv``). ``iterations`` counts collect/update rounds (one batch of ``batch_size`` responses each), the
    same word as :attr:`rl4llm.rl.PPOConfig.iterations`. One difference: here the critic is its own model, so
    ``clip_value`` is its own clip range (a number, ``None`` for none) instead of a switch that reuses
    ``clip_eps``.
    """

    iterations: int = param(40, low=1, help="collect/update rounds, one batch of responses each")
    batch_size: int = param(64, low=1, help="responses sampled per iteration")
    n_minibatches: int = param(2, low=1, help="minibatches of responses per epoch (at most batch_size)")
    n_epochs: int = param(2, low=1, help="passes over each iteration's batch")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam learning rate of the policy")
    critic_lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam learning rate of the critic")
    clip_eps: float = param(
        0.2, low=0.0, low_inclusive=False, allow_inf=True, help="clip range of the ratio; inf: no clipping"
    )
    clip_value: float | None = param(
        0.2,
        low=0.0,
        low_inclusive=False,
        allow_inf=True,
        allow_none=True,
        help="clip range of the value around the old prediction; None or inf: none",
    )
    kl_coef: float = param(0.1, low=0.0, help="initial KL coefficient beta of the per-token penalty")
    kl_target: float | None = param(
        None,
        low=0.0,
        low_inclusive=False,
        allow_none=True,
        help="KL target (nats per sequence) of the adaptive controller; None: fixed",
    )
    kl_horizon: float = param(500.0, low=0.0, low_inclusive=False, help="horizon of the adaptive KL controller")
    gamma: float = param(1.0, low=0.0, high=1.0, help="discount factor over the tokens")
    gae_lambda: float = param(0.95, low=0.0, high=1.0, help="GAE's lambda")
    vf_coef: float = param(0.5, low=0.0, help="weight of the value loss")
    max_grad_norm: float = param(1.0, low=0.0, low_inclusive=False, help="global gradient-norm clip")
    max_new_tokens: int = param(28, low=1, help="longest response, in tokens")
    temperature: float = param(1.0, low=0.0, low_inclusive=False, help="sampling temperature of the rollouts")
    norm_adv: bool = param(True, help="whiten the advantages over the batch's response tokens")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)
        if self.n_minibatches > self.batch_size:
            raise ValueError(f"n_minibatches must be in [1, batch_size = {self.batch_size}], got {self.n_minibatches}")
        if self.kl_target is not None and self.kl_coef <= 0:
            raise ValueError("kl_coef must be > 0 when kl_target (adaptive KL) is set")

    @property
    def minibatch_size(self) -> int:
        """Responses per minibatch, ``ceil(batch_size / n_minibatches)``."""
        return -(-self.batch_size // self.n_minibatches)


@dataclass
class PPORLHFHistory:
    """Per-iteration logs, measured on each iteration's own rollouts (on-policy samples)."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def column(self, key: str) -> np.ndarray:
        return np.array([r[key] for r in self.rows], dtype=float)


def kl_penalised_rewards(
    score: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, response_mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards of the token MDP with the KL penalty folded in, ``[B, T]``.

    .. math:: r_t = -\\beta\\,\\big(\\log\\pi(y_t \\mid y_{<t}) - \\log\\pi_{ref}(y_t \\mid y_{<t})\\big)
              + \\mathbb 1[t = T]\\; r_\\phi(y)

    Args:
        score: ``[B]`` the reward model's score of each whole response, paid at its last token :math:`T`.
        logp, ref_logp: ``[B, T]`` per-token log-probs of the sampled tokens under the policy and the reference.
        response_mask: ``[B, T]`` 1 on response tokens, 0 on padding (every row has at least one token).
        kl_coef: :math:`\\beta \\ge 0`.

    Returns:
        ``(rewards, kl)``: the rewards and the per-token :math:`k_1 = \\log\\pi - \\log\\pi_{ref}`, both 0 on padding.
    """
    kl_coef = check_range("kl_coef", kl_coef, 0.0, None)
    if logp.shape != ref_logp.shape or logp.shape != response_mask.shape or logp.ndim != 2:
        raise ValueError(
            f"logp, ref_logp and response_mask must all be [B, T], got {tuple(logp.shape)}, "
            f"{tuple(ref_logp.shape)} and {tuple(response_mask.shape)}"
        )
    if score.shape != (logp.shape[0],):
        raise ValueError(f"score must be [B] = [{logp.shape[0]}], got {tuple(score.shape)}")
    if bool((response_mask.sum(1) == 0).any()):
        raise ValueError("every response needs at least one token (a row of response_mask is all 0)")
    # BEGIN SOLUTION
    kl = kl_k1(logp, ref_logp) * response_mask
    rewards = -kl_coef * kl
    last = response_mask.sum(1).long() - 1
    rewards[torch.arange(rewards.shape[0]), last] += score
    return rewards * response_mask, kl
    # END SOLUTION


def token_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    response_mask: torch.Tensor,
    gamma: float = 1.0,
    gae_lambda: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the tokens of right-padded responses, each ending (terminated) at its last token.

    With :math:`V(s_{T+1}) = 0` after the last token, :func:`rl4llm.rl.gae` gives

    .. math:: \\delta_t = r_t + \\gamma V(s_{t+1}) - V(s_t), \\qquad A_t = \\delta_t + \\gamma\\lambda A_{t+1},

    and the value targets are :math:`A_t + V(s_t)`. Inputs are batch-major ``[B, T]`` (``values[:, t]`` is
    :math:`V(s_t)`); returns ``(advantages, returns)``, both 0 on padding.
    """
    if rewards.shape != values.shape or rewards.shape != response_mask.shape or rewards.ndim != 2:
        raise ValueError(
            f"rewards, values and response_mask must all be [B, T], got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)} and {tuple(response_mask.shape)}"
        )
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    gae_lambda = check_range("gae_lambda", gae_lambda, 0.0, 1.0)
    # BEGIN SOLUTION
    mask = response_mask.to(rewards.dtype)
    values = values * mask
    last = mask.sum(1).long() - 1
    terminated = torch.zeros_like(mask)
    terminated[torch.arange(mask.shape[0]), last] = 1.0
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    adv = gae(rewards.T, values.T, next_values.T, terminated.T, torch.zeros_like(mask).T, gamma, gae_lambda).T * mask
    return adv, (adv + values) * mask
    # END SOLUTION


def _next_token_logits(model: nn.Module, batch: SequenceBatch) -> torch.Tensor:
    """``[B, T, V]`` logits of the policy at every response position (float32)."""
    from rl4llm.lm.generation import position_ids_from_mask

    return (
        model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=position_ids_from_mask(batch.attention_mask),
        )
        .logits[:, :-1]
        .float()
    )


@torch.no_grad()
def token_entropy(model: nn.Module, batch: SequenceBatch) -> torch.Tensor:
    """The policy's entropy :math:`-\\sum_a \\pi(a \\mid s_t) \\log \\pi(a \\mid s_t)` at every state, ``[B, T]`` (0 on
    padding): how many of the vocabulary's actions it still spreads its probability over."""
    logp = torch.log_softmax(_next_token_logits(model, batch), dim=-1)
    return -(logp.exp() * logp).sum(-1) * batch.response_mask


@dataclass
class LMRollout:
    """One iteration's responses and what PPO needs of them, all ``[B, T]`` over the response tokens.

    ``old_logp`` / ``ref_logp``: per-token log-probs under the policy that sampled and the reference;
    ``old_values``: the critic's :math:`V(s_t)`; ``score``: ``[B]`` the reward model's score of each response;
    ``entropy``: the policy's mean per-token entropy (nats), a diagnostic; ``start``: the column where every
    response starts (0 without prompts, the prompts' length with them).
    """

    batch: SequenceBatch
    old_logp: torch.Tensor
    ref_logp: torch.Tensor
    old_values: torch.Tensor
    score: torch.Tensor
    entropy: float
    start: int = 0


@torch.no_grad()
def collect_lm_rollout(
    policy: nn.Module,
    ref_model: nn.Module,
    critic: ValueModel,
    reward_fn: Callable[[SequenceBatch], torch.Tensor],
    config: PPORLHFConfig,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator,
    prompts: list[list[int]] | None = None,
    runtime: Runtime | None = None,
    iteration: int = 1,
) -> LMRollout:
    """Sample ``config.batch_size`` responses from ``policy`` and score them (no gradients).

    With ``prompts`` (token-id lists of one length, each starting with ``<bos>``; chapter 7) the responses continue
    them. With a ``runtime`` (:mod:`rl4llm.distributed`) this process samples only its shards of the global batch
    (:meth:`~rl4llm.distributed.Runtime.shard_plan` for ``iteration``, each shard with its own generator instead
    of ``generator``), under the runtime's autocast; a policy sharded by FSDP has its weights gathered for the
    block (:meth:`~rl4llm.distributed.Runtime.gathered`), since ranks sample different numbers of steps. Prompts
    are sampled in one process only: prompts together with a runtime across several processes raise
    ``ValueError``.
    """
    if prompts is not None and runtime is not None and runtime.distributed:
        raise ValueError("prompts must be None when the runtime spans several processes (world_size > 1)")
    start = 0
    with (
        contextlib.nullcontext() if runtime is None else runtime.autocast(),
        contextlib.nullcontext() if runtime is None else runtime.gathered(policy),
    ):
        if prompts is not None:
            batch, start = sample_prompted_sequences(
                policy,
                prompts,
                config.max_new_tokens,
                eos_id,
                pad_id,
                generator=generator,
                temperature=config.temperature,
            )
        elif runtime is None:
            batch = sample_sequences(
                policy,
                config.batch_size,
                config.max_new_tokens,
                bos_id,
                eos_id,
                pad_id,
                generator=generator,
                temperature=config.temperature,
            )
        else:  # this rank's shards of the global batch
            batch = SequenceBatch.cat(
                [
                    sample_sequences(
                        policy,
                        rows,
                        config.max_new_tokens,
                        bos_id,
                        eos_id,
                        pad_id,
                        generator=g,
                        temperature=config.temperature,
                    )
                    for rows, g in runtime.shard_plan(config.batch_size, config.seed, iteration)
                ],
                pad_id,
            )
        old_logp = response_logprobs(policy, batch)
        entropy = float(entropy_bonus(_next_token_logits(policy, batch), batch.response_mask))
        ref_logp = response_logprobs(ref_model, batch)
        old_values = critic.values(batch)
        score = reward_fn(batch).float()
    return LMRollout(batch, old_logp, ref_logp, old_values, score, entropy, start)


@torch.no_grad()
def lm_advantages(
    rollout: LMRollout, kl_coef: float, config: PPORLHFConfig, runtime: Runtime | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token KL-penalised rewards, GAE advantages (whitened over the batch's tokens when ``config.norm_adv``)
    and value targets; returns ``(advantages, returns, kl)``, each ``[B, T]`` and 0 on padding. With a
    ``runtime`` across processes, the whitening statistics are those of the global batch (sums all-reduced)."""
    mask, t0 = rollout.batch.response_mask, rollout.start  # every response starts at column t0
    rewards, kl = kl_penalised_rewards(
        rollout.score, rollout.old_logp[:, t0:], rollout.ref_logp[:, t0:], mask[:, t0:], kl_coef
    )
    adv, returns = token_advantages(rewards, rollout.old_values[:, t0:], mask[:, t0:], config.gamma, config.gae_lambda)
    adv, returns, kl = F.pad(adv, (t0, 0)), F.pad(returns, (t0, 0)), F.pad(kl, (t0, 0))
    if config.norm_adv:
        adv = masked_whiten(adv, mask, total=None if runtime is None else runtime.sum)
    return adv, returns, kl


def lm_ppo_update(
    policy: nn.Module,
    critic: ValueModel,
    opt: torch.optim.Optimizer,
    critic_opt: torch.optim.Optimizer,
    rollout: LMRollout,
    adv: torch.Tensor,
    returns: torch.Tensor,
    config: PPORLHFConfig,
    rng: np.random.Generator,
    iteration: int = 0,
    runtime: Runtime | None = None,
) -> dict[str, float]:
    """``config.n_epochs`` passes over minibatches of responses: a clipped-surrogate step of the policy, then a
    clipped-value step of the critic, each with its gradient norm clipped. Returns the mean ``policy_loss``,
    ``value_loss``, ``clip_frac`` and ``approx_kl`` over the minibatches (per token).

    With a ``runtime`` across ``W`` processes, each process's minibatches hold ``minibatch_size / W`` of its own
    responses, and each backward pass is this rank's token share of the global minibatch's loss with the
    gradients summed over ranks by the runtime's engine (:func:`_backward`): the step is the one-process step on
    the global minibatch, with the models whole on every rank or sharded by FSDP.
    """
    if runtime is not None and config.minibatch_size % runtime.world_size:
        raise ValueError(
            f"minibatch_size must be a multiple of the number of processes ({runtime.world_size}), "
            f"got {config.minibatch_size}"
        )
    local_mb = config.minibatch_size if runtime is None else config.minibatch_size // runtime.world_size
    autocast = contextlib.nullcontext if runtime is None else runtime.autocast
    batch, old_logp, old_values = rollout.batch, rollout.old_logp, rollout.old_values
    stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "clip_frac": [], "approx_kl": []}
    for _ in range(config.n_epochs):
        order = rng.permutation(len(batch))
        for start in range(0, len(batch), local_mb):
            idx = torch.as_tensor(order[start : start + local_mb])
            mb = batch.index(idx)
            m = mb.response_mask.bool()
            with autocast():
                new_logp = response_logprobs(policy, mb)
            pg_loss = ppo_clip_loss(new_logp[m], old_logp[idx][m], adv[idx][m], config.clip_eps)
            if not torch.isfinite(pg_loss):
                raise FloatingPointError(
                    f"PPO policy loss is {float(pg_loss)} at iteration {iteration}; lower lr "
                    f"({config.lr}) or clip_eps ({config.clip_eps})"
                )
            opt.zero_grad()
            _backward(pg_loss, m.sum(), policy, runtime)
            nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            opt.step()
            with autocast():
                values = critic.values(mb)
            v_loss = config.vf_coef * clipped_value_loss(
                values[m], old_values[idx][m], returns[idx][m], config.clip_value
            )
            critic_opt.zero_grad()
            _backward(v_loss, m.sum(), critic, runtime)
            nn.utils.clip_grad_norm_(critic.parameters(), config.max_grad_norm)
            critic_opt.step()
            stats["policy_loss"].append(pg_loss.item())
            stats["value_loss"].append(v_loss.item())
            stats["clip_frac"].append(float(clip_fraction(new_logp[m], old_logp[idx][m], config.clip_eps)))
            stats["approx_kl"].append(float(approx_kl(new_logp[m], old_logp[idx][m])))
    return {k: float(np.mean(v)) for k, v in stats.items()}


def _backward(loss: torch.Tensor, n_tokens: torch.Tensor, model: nn.Module, runtime: Runtime | None) -> None:
    """``loss.backward()``; across processes, this rank's share of the global token mean, back-propagated by
    :meth:`~rl4llm.distributed.Runtime.backward` (gradients summed over ranks, or reduce-scattered under FSDP)."""
    if runtime is None:
        loss.backward()
        return
    runtime.backward(loss * runtime.token_share(n_tokens), model)


def _check_prepared(runtime: Runtime | None, **models: nn.Module) -> None:
    """Under the sharded engine, every trained model must have been sharded by ``runtime.prepare`` (its
    gradients are then reduced by FSDP; an unsharded one would be left with this rank's share only)."""
    if runtime is None or not runtime.sharded:
        return
    from torch.distributed.fsdp import FSDPModule

    for name, model in models.items():
        if not isinstance(model, FSDPModule):
            raise ValueError(
                f"{name} must be sharded by runtime.prepare before training under the FSDP engine "
                "(the critic with forward_methods=('values',))"
            )


def train_ppo_rlhf(
    policy: nn.Module,
    ref_model: nn.Module,
    critic: ValueModel,
    reward_fn: Callable[[SequenceBatch], torch.Tensor],
    config: PPORLHFConfig,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    gold_fn: Callable[[SequenceBatch], np.ndarray] | None = None,
    callback: Callback | None = None,
    prompt_fn: Callable[[int, np.random.Generator], list[list[int]]] | None = None,
    runtime: Runtime | None = None,
) -> PPORLHFHistory:
    """Optimise ``policy`` in place against ``reward_fn`` (a proxy reward per sequence) with KL-penalised PPO.

    ``gold_fn`` (optional) scores each rollout with the gold reward for logging only. ``callback(iteration, info,
    policy)`` follows chapter 1's protocol (:mod:`rl4llm.rl.common`): it runs after every iteration's update
    (and the KL-coefficient update) with the iterations done so far, that iteration's row of the history and the
    policy; returning ``False`` stops training. Returns the per-iteration history with ``proxy`` (mean score),
    ``gold``, ``kl`` (mean :math:`\\sum_t k_1` per sequence, nats), ``kl_coef``, ``length``, ``entropy`` (mean
    per-token entropy of the policy, nats), ``policy_loss``, ``value_loss``, ``clip_frac`` (fraction of tokens whose
    ratio left :math:`[1-\\epsilon, 1+\\epsilon]`) and ``approx_kl`` (the k3 estimate of how far each update moved
    the policy, per token), the diagnostics of :mod:`rl4llm.rl.losses` that chapter 1's PPO logs too. Raises
    ``FloatingPointError`` instead of training on a non-finite loss.

    ``runtime`` (:func:`rl4llm.distributed.make_runtime`; ``None``: one CPU process, float32) runs the loop on its
    device and precision and, across processes, splits the rollouts by rank (each process samples its shards of
    the global batch of ``batch_size``), all-reduces the gradients and the whitening statistics, and averages the
    logged metrics over ranks. The models must already be on ``runtime.device``; under the FSDP engine the policy
    and the critic must be sharded (:meth:`~rl4llm.distributed.Runtime.prepare`, the critic with
    ``forward_methods=("values",)``; :func:`rl4llm.rlhf.ppo_run.run_ppo` does it), the reference stays whole.

    ``prompt_fn(n, rng)`` (optional, chapter 7) returns ``n`` prompts as token-id lists (each starting with
    ``<bos>``); the responses then continue them (:func:`rl4llm.rlhf.rollout.sample_prompted_sequences`) and
    ``reward_fn`` reads prompt and response from the batch. The critic reads default positions, so prompts of
    one length (no left padding) keep its values exact. Without it, responses start from ``<bos>`` (chapter 5).
    """
    if not isinstance(config, PPORLHFConfig):
        raise ValueError(f"config must be a PPORLHFConfig, got {type(config).__name__}")
    if callback is not None and not callable(callback):
        raise ValueError("callback must be callable or None")
    _check_prepared(runtime, policy=policy, critic=critic)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    ctl = (
        AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon)
        if config.kl_target is not None
        else FixedKLController(config.kl_coef)
    )
    policy.eval()
    ref_model.eval()
    critic.eval()
    opt = torch.optim.Adam(policy.parameters(), lr=config.lr, eps=1e-5)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=config.critic_lr, eps=1e-5)
    history = PPORLHFHistory()
    for it in progress(range(1, config.iterations + 1), desc="PPO-RLHF"):
        # 1. collect responses and score them (reward model, reference, critic)
        prompts = None if prompt_fn is None else prompt_fn(config.batch_size, rng)
        rollout = collect_lm_rollout(
            policy,
            ref_model,
            critic,
            reward_fn,
            config,
            bos_id=bos_id,
            eos_id=eos_id,
            pad_id=pad_id,
            generator=gen,
            prompts=prompts,
            runtime=runtime,
            iteration=it,
        )
        # 2-3. per-token KL-penalised rewards, GAE over the tokens, whitening
        adv, returns, kl = lm_advantages(rollout, ctl.value, config, runtime)
        # 4. PPO epochs over minibatches of responses
        stats = lm_ppo_update(policy, critic, opt, critic_opt, rollout, adv, returns, config, rng, it, runtime)

        mask = rollout.batch.response_mask
        kl_seq = float(kl.sum(1).mean())
        row = {
            "iteration": it,
            "proxy": float(rollout.score.mean()),
            "kl": kl_seq,
            "kl_coef": float(ctl.value),
            "length": float(mask.sum(1).mean()),
            "entropy": rollout.entropy,
            **stats,
        }
        if gold_fn is not None:
            row["gold"] = float(np.mean(gold_fn(rollout.batch)))
        if runtime is not None:  # every rank logs the average over the ranks' rollouts
            row = runtime.mean_over_ranks(row)
        history.rows.append(row)
        # 5. adaptive KL coefficient (Ziegler et al. 2019), on the global batch's KL
        ctl.update(row["kl"], config.batch_size)
        if call_back(callback, it, row, policy):
            break
    return history
