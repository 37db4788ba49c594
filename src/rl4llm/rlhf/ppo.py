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

Dropout is off (the models stay in ``eval()`` mode), so the importance ratio is exactly 1 at the start of each
update, as PPO assumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rl4llm.rl import clipped_value_loss, gae, ppo_clip_loss
from rl4llm.rlhf.kl import AdaptiveKLController, FixedKLController, kl_k1
from rl4llm.rlhf.reward_model import ValueModel
from rl4llm.rlhf.rollout import SequenceBatch, response_logprobs, sample_prompted_sequences, sample_sequences
from rl4llm.utils import check_positive_int, check_range, progress

__all__ = ["PPORLHFConfig", "PPORLHFHistory", "kl_penalised_rewards", "token_advantages", "token_entropy",
           "train_ppo_rlhf"]


@dataclass
class PPORLHFConfig:
    """Hyperparameters of PPO for language models (defaults: the chapter's runs)."""

    iterations: int = 40
    batch_size: int = 64
    minibatch_size: int = 32
    epochs: int = 2
    lr: float = 1e-3
    critic_lr: float = 1e-3
    clip_eps: float = 0.2
    vf_clip: float | None = 0.2
    kl_coef: float = 0.1
    kl_target: float | None = None  # set (nats per sequence) to use the adaptive controller
    kl_horizon: float = 500.0
    gamma: float = 1.0
    lam: float = 0.95
    vf_coef: float = 0.5
    max_grad_norm: float = 1.0
    max_new_tokens: int = 28
    temperature: float = 1.0
    whiten_advantages: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int("iterations", self.iterations)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("minibatch_size", self.minibatch_size)
        if self.minibatch_size > self.batch_size:
            raise ValueError(f"minibatch_size must be <= batch_size ({self.batch_size}), got {self.minibatch_size}")
        check_positive_int("epochs", self.epochs)
        check_range("lr", self.lr, 0.0, None, low_inclusive=False)
        check_range("critic_lr", self.critic_lr, 0.0, None, low_inclusive=False)
        if not (isinstance(self.clip_eps, float) and math.isinf(self.clip_eps)):
            check_range("clip_eps", self.clip_eps, 0.0, None, low_inclusive=False)
        if self.vf_clip is not None:
            check_range("vf_clip", self.vf_clip, 0.0, None, low_inclusive=False)
        check_range("kl_coef", self.kl_coef, 0.0, None)
        if self.kl_target is not None:
            check_range("kl_target", self.kl_target, 0.0, None, low_inclusive=False)
            if self.kl_coef <= 0:
                raise ValueError("kl_coef must be > 0 when kl_target (adaptive KL) is set")
        check_range("kl_horizon", self.kl_horizon, 0.0, None, low_inclusive=False)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("lam", self.lam, 0.0, 1.0)
        check_range("vf_coef", self.vf_coef, 0.0, None)
        check_range("max_grad_norm", self.max_grad_norm, 0.0, None, low_inclusive=False)
        check_positive_int("max_new_tokens", self.max_new_tokens)
        check_range("temperature", self.temperature, 0.0, None, low_inclusive=False)
        check_positive_int("seed", self.seed, 0)


@dataclass
class PPORLHFHistory:
    """Per-iteration logs, measured on each iteration's own rollouts (on-policy samples)."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def column(self, key: str) -> np.ndarray:
        return np.array([r[key] for r in self.rows], dtype=float)


def kl_penalised_rewards(score: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                         response_mask: torch.Tensor, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
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
        raise ValueError(f"logp, ref_logp and response_mask must all be [B, T], got {tuple(logp.shape)}, "
                         f"{tuple(ref_logp.shape)} and {tuple(response_mask.shape)}")
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


def token_advantages(rewards: torch.Tensor, values: torch.Tensor, response_mask: torch.Tensor, gamma: float = 1.0,
                     lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the tokens of right-padded responses, each ending (terminated) at its last token.

    With :math:`V(s_{T+1}) = 0` after the last token, :func:`rl4llm.rl.gae` gives

    .. math:: \\delta_t = r_t + \\gamma V(s_{t+1}) - V(s_t), \\qquad A_t = \\delta_t + \\gamma\\lambda A_{t+1},

    and the value targets are :math:`A_t + V(s_t)`. Inputs are batch-major ``[B, T]`` (``values[:, t]`` is
    :math:`V(s_t)`); returns ``(advantages, returns)``, both 0 on padding.
    """
    if rewards.shape != values.shape or rewards.shape != response_mask.shape or rewards.ndim != 2:
        raise ValueError(f"rewards, values and response_mask must all be [B, T], got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)} and {tuple(response_mask.shape)}")
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    lam = check_range("lam", lam, 0.0, 1.0)
    # BEGIN SOLUTION
    mask = response_mask.to(rewards.dtype)
    values = values * mask
    last = mask.sum(1).long() - 1
    terminated = torch.zeros_like(mask)
    terminated[torch.arange(mask.shape[0]), last] = 1.0
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    adv = gae(rewards.T, values.T, next_values.T, terminated.T, torch.zeros_like(mask).T, gamma, lam).T * mask
    return adv, (adv + values) * mask
    # END SOLUTION


@torch.no_grad()
def token_entropy(model: nn.Module, batch: SequenceBatch) -> torch.Tensor:
    """The policy's entropy :math:`-\\sum_a \\pi(a \\mid s_t) \\log \\pi(a \\mid s_t)` at every state, ``[B, T]`` (0 on
    padding): how many of the vocabulary's actions it still spreads its probability over."""
    from rl4llm.lm.generation import position_ids_from_mask

    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=position_ids_from_mask(batch.attention_mask)).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1) * batch.response_mask


def _masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    n = mask.sum().clamp_min(1.0)
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / n
    return (x - mean) * torch.rsqrt(var + eps) * mask


def train_ppo_rlhf(policy: nn.Module, ref_model: nn.Module, critic: ValueModel,
                   reward_fn: Callable[[SequenceBatch], torch.Tensor], config: PPORLHFConfig, *, bos_id: int,
                   eos_id: int, pad_id: int, gold_fn: Callable[[SequenceBatch], np.ndarray] | None = None,
                   callback: Callable[[int, nn.Module], None] | None = None,
                   prompt_fn: Callable[[int, np.random.Generator], list[list[int]]] | None = None,
                   ) -> PPORLHFHistory:
    """Optimise ``policy`` in place against ``reward_fn`` (a proxy reward per sequence) with KL-penalised PPO.

    ``gold_fn`` (optional) scores each rollout with the gold reward for logging only; ``callback(it, policy)``
    runs after every iteration (e.g. to snapshot or evaluate). Returns the per-iteration history with
    ``proxy`` (mean score), ``gold``, ``kl`` (mean :math:`\\sum_t k_1` per sequence, nats), ``kl_coef``,
    ``length``, ``entropy`` (mean per-token entropy of the policy, nats), ``policy_loss``, ``value_loss``,
    ``clip_frac`` (fraction of tokens whose ratio left :math:`[1-\\epsilon, 1+\\epsilon]`) and ``approx_kl``
    (the k3 estimate of how far each update moved the policy, per token). Raises ``FloatingPointError`` instead of
    training on a non-finite loss.

    ``prompt_fn(n, rng)`` (optional, chapter 7) returns ``n`` prompts as token-id lists (each starting with
    ``<bos>``); the responses then continue them (:func:`rl4llm.rlhf.rollout.sample_prompted_sequences`) and
    ``reward_fn`` reads prompt and response from the batch. The critic reads default positions, so prompts of
    one length (no left padding) keep its values exact. Without it, responses start from ``<bos>`` (chapter 5).
    """
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    ctl = (AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon)
           if config.kl_target is not None else FixedKLController(config.kl_coef))
    policy.eval()
    ref_model.eval()
    critic.eval()
    opt = torch.optim.Adam(policy.parameters(), lr=config.lr, eps=1e-5)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=config.critic_lr, eps=1e-5)
    history = PPORLHFHistory()
    for it in progress(range(1, config.iterations + 1), desc="PPO-RLHF"):
        # 1. rollouts and everything computed on them without gradients
        if prompt_fn is None:
            batch = sample_sequences(policy, config.batch_size, config.max_new_tokens, bos_id, eos_id, pad_id,
                                     generator=gen, temperature=config.temperature)
            start = 0
        else:
            batch, start = sample_prompted_sequences(policy, prompt_fn(config.batch_size, rng),
                                                     config.max_new_tokens, eos_id, pad_id, generator=gen,
                                                     temperature=config.temperature)
        mask = batch.response_mask
        with torch.no_grad():
            old_logp = response_logprobs(policy, batch)
            entropy = token_entropy(policy, batch)
            ref_logp = response_logprobs(ref_model, batch)
            old_values = critic.values(batch)
            score = reward_fn(batch).float()
            # 2. per-token KL-penalised rewards (on the response columns: every response starts at ``start``)
            rewards, kl = kl_penalised_rewards(score, old_logp[:, start:], ref_logp[:, start:], mask[:, start:],
                                               ctl.value)
            # 3. GAE over the tokens (gamma = 1: nothing is discounted inside a short text)
            adv, returns = token_advantages(rewards, old_values[:, start:], mask[:, start:], config.gamma,
                                            config.lam)
            adv, returns = F.pad(adv, (start, 0)), F.pad(returns, (start, 0))
            if config.whiten_advantages:
                adv = _masked_whiten(adv, mask)
        # 4. PPO epochs over minibatches of sequences
        stats = {"policy_loss": [], "value_loss": [], "clip_frac": [], "approx_kl": []}
        for _ in range(config.epochs):
            order = rng.permutation(len(batch))
            for start in range(0, len(batch), config.minibatch_size):
                idx = torch.as_tensor(order[start: start + config.minibatch_size])
                mb = batch.index(idx)
                m = mb.response_mask.bool()
                new_logp = response_logprobs(policy, mb)
                pg_loss = ppo_clip_loss(new_logp[m], old_logp[idx][m], adv[idx][m], config.clip_eps)
                if not torch.isfinite(pg_loss):
                    raise FloatingPointError(f"PPO policy loss is {float(pg_loss)} at iteration {it}; lower lr "
                                             f"({config.lr}) or clip_eps ({config.clip_eps})")
                opt.zero_grad()
                pg_loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
                opt.step()
                values = critic.values(mb)
                v_loss = config.vf_coef * clipped_value_loss(values[m], old_values[idx][m], returns[idx][m],
                                                             config.vf_clip)
                critic_opt.zero_grad()
                v_loss.backward()
                nn.utils.clip_grad_norm_(critic.parameters(), config.max_grad_norm)
                critic_opt.step()
                with torch.no_grad():
                    log_ratio = new_logp[m] - old_logp[idx][m]
                    stats["policy_loss"].append(float(pg_loss))
                    stats["value_loss"].append(float(v_loss))
                    if math.isinf(config.clip_eps):
                        stats["clip_frac"].append(0.0)
                    else:
                        stats["clip_frac"].append(float(((log_ratio.exp() - 1).abs() > config.clip_eps).float().mean()))
                    stats["approx_kl"].append(float(((log_ratio.exp() - 1) - log_ratio).mean()))
        kl_seq = float(kl.sum(1).mean())
        row = {
            "iteration": it,
            "proxy": float(score.mean()),
            "kl": kl_seq,
            "kl_coef": float(ctl.value),
            "length": float(mask.sum(1).mean()),
            "entropy": float((entropy * mask).sum() / mask.sum()),
            "policy_loss": float(np.mean(stats["policy_loss"])),
            "value_loss": float(np.mean(stats["value_loss"])),
            "clip_frac": float(np.mean(stats["clip_frac"])),
            "approx_kl": float(np.mean(stats["approx_kl"])),
        }
        if gold_fn is not None:
            row["gold"] = float(np.mean(gold_fn(batch)))
        history.rows.append(row)
        # 5. adaptive KL coefficient (Ziegler et al. 2019)
        ctl.update(kl_seq, len(batch))
        if callback is not None:
            callback(it, policy)
    return history
