"""GRPO and its variants on the reasoning task: a group of completions per prompt replaces the critic (chapter 7).

One iteration (Shao et al. 2024, Algorithm 1, with the reward of an exact verifier instead of a reward model):

1. **Sample** ``prompts_per_iter`` training problems and ``group_size`` completions of each from
   :math:`\\pi_{old} = \\pi_\\theta` (:func:`rl4llm.rlvr.evaluation.sample_completions`, chapter 5's sampler).
2. **Verify** each completion: :math:`r_i \\in \\{0, 1\\}` (:func:`rl4llm.rlvr.task.verify`).
3. **Advantages** from the group (:func:`rl4llm.rlvr.group_advantages`): GRPO, Dr. GRPO or RLOO; with
   ``baseline="none"`` the raw reward, i.e. REINFORCE without a baseline (Williams 1992).
4. **Update** ``n_epochs`` times over ``n_minibatches`` minibatches with :func:`rl4llm.rlvr.grpo_loss` (clipped
   surrogate + :math:`\\beta\\,k_3` against the frozen reference, aggregated by ``loss_agg``), Adam, gradient-norm
   clipping.

No value model is trained or even held in memory: that is the time and memory GRPO saves over PPO.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rl4llm.config import param, validate
from rl4llm.prompting.tokenizer import CharTokenizer
from rl4llm.rlvr.advantages import BASELINES, SCALES, group_advantages
from rl4llm.rlvr.evaluation import MAX_NEW_TOKENS, completion_logprobs, sample_completions
from rl4llm.rlvr.losses import LOSS_AGGREGATIONS, grpo_loss
from rl4llm.rlvr.task import VERIFIERS, train_problems, verify
from rl4llm.utils import progress

__all__ = ["GRPOConfig", "GRPOHistory", "METHODS", "train_grpo"]

#: The named variants: (baseline, scale, loss aggregation).
METHODS: dict[str, tuple[str, str, str]] = {
    "grpo": ("mean", "group", "seq-mean-token-mean"),
    "dr-grpo": ("mean", "none", "seq-mean-token-sum-norm"),
    "rloo": ("loo", "none", "token-mean"),
    "reinforce": ("none", "none", "token-mean"),
}


@dataclass
class GRPOConfig:
    """Hyperparameters of GRPO-style training with a verifier (defaults: the chapter's GRPO runs)."""

    group_size: int = param(8, low=2, help="completions sampled per prompt (G)")
    prompts_per_iter: int = param(8, low=1, help="distinct training problems per iteration")
    iterations: int = param(40, low=1, help="collect / update rounds")
    lr: float = param(3e-4, low=0.0, low_inclusive=False, help="Adam learning rate")
    clip_eps: float = param(
        0.2,
        low=0.0,
        low_inclusive=False,
        allow_inf=True,
        help="PPO clip range ε of the ratio; inf switches clipping off",
    )
    kl_coef: float = param(0.0, low=0.0, help="β, weight of the per-token k3 KL to the reference in the loss")
    n_epochs: int = param(1, low=1, help="passes over each iteration's completions")
    n_minibatches: int = param(2, low=1, help="minibatches per pass (must divide the completions)")
    baseline: str = param(
        "mean",
        choices=BASELINES + ("none",),
        help="group baseline: mean (GRPO), loo (RLOO), none (REINFORCE, raw reward)",
    )
    scale: str = param("group", choices=SCALES, help="divide advantages by the group's / batch's std, or not")
    loss_agg: str = param("seq-mean-token-mean", choices=LOSS_AGGREGATIONS, help="how per-token losses average")
    max_grad_norm: float = param(1.0, low=0.0, low_inclusive=False, help="gradient-norm clipping threshold")
    max_new_tokens: int = param(MAX_NEW_TOKENS, low=1, help="longest completion (tokens)")
    temperature: float = param(1.0, low=0.0, low_inclusive=False, help="sampling temperature of the rollouts")
    verifier: str = param("exact", choices=tuple(VERIFIERS), help="the reward: exact, or a flawed verifier")
    seed: int = param(0, low=0, help="seed of the problems, the samples and the minibatch order")

    def __post_init__(self) -> None:
        validate(self)
        n = self.group_size * self.prompts_per_iter
        if n % self.n_minibatches:
            raise ValueError(f"n_minibatches must divide group_size * prompts_per_iter = {n}, got {self.n_minibatches}")

    @classmethod
    def for_method(cls, method: str, **overrides) -> GRPOConfig:
        """The config of a named variant (:data:`METHODS`), with ``overrides``."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        baseline, scale, agg = METHODS[method]
        return cls(**{"baseline": baseline, "scale": scale, "loss_agg": agg, **overrides})


@dataclass
class GRPOHistory:
    """Per-iteration logs measured on each iteration's own completions (training problems)."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def column(self, key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in self.rows], dtype=float)


def _advantages(rewards: torch.Tensor, config: GRPOConfig) -> torch.Tensor:
    if config.baseline == "none":
        if config.scale == "batch":
            return rewards / (rewards.std() + 1e-4)
        return rewards.clone()
    return group_advantages(rewards, config.group_size, baseline=config.baseline, scale=config.scale)


def train_grpo(
    policy: nn.Module,
    ref_model: nn.Module | None,
    tokenizer: CharTokenizer,
    config: GRPOConfig,
    *,
    callback: Callable[[int, nn.Module, float], dict[str, float] | None] | None = None,
) -> GRPOHistory:
    """Optimise ``policy`` in place with the group-baseline policy gradient of ``config``.

    ``ref_model`` is the frozen reference of the KL term (needed only when ``kl_coef > 0``). ``callback(it,
    policy, wall_s)`` runs after every iteration; a dict it returns is merged into that iteration's row (e.g.
    held-out pass@1); its own time is not counted in ``wall_s``. Each row holds ``reward`` (mean verifier
    reward), ``zero_adv_frac`` (share of groups whose rewards are all equal), ``length``, ``length_correct``,
    ``length_wrong``, ``loss``, ``clip_frac``, ``kl`` (mean k3 per token), ``wall_s`` (training time so far), and
    with a flawed verifier ``exact_reward`` (the exact verifier's mean on the same completions).
    """
    if config.kl_coef > 0 and ref_model is None:
        raise ValueError("ref_model is needed when kl_coef > 0")
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    policy.eval()  # no dropout: the ratio is exactly 1 at the start of each update
    opt = torch.optim.Adam(policy.parameters(), lr=config.lr, eps=1e-5)
    history = GRPOHistory()
    n = config.group_size * config.prompts_per_iter
    mb_size = n // config.n_minibatches
    wall = 0.0
    for it in progress(range(1, config.iterations + 1), desc="GRPO"):
        t0 = time.perf_counter()
        # 1. a group of completions per problem (groups are consecutive rows)
        problems = train_problems(config.prompts_per_iter, rng)
        flat = [q for q in problems for _ in range(config.group_size)]
        comp = sample_completions(
            policy, tokenizer, flat, temperature=config.temperature, max_new_tokens=config.max_new_tokens, generator=gen
        )
        # 2. the verifier's rewards, 3. the group advantages
        rewards = torch.as_tensor(verify(flat, comp.texts, config.verifier), dtype=torch.float32)
        adv = _advantages(rewards, config)
        mask = comp.mask
        with torch.no_grad():
            old_logp = completion_logprobs(policy, comp)
            ref_logp = completion_logprobs(ref_model, comp) if config.kl_coef > 0 else old_logp
        # 4. clipped updates over minibatches of completions
        losses, clip_fracs, kls = [], [], []
        for _ in range(config.n_epochs):
            order = torch.as_tensor(rng.permutation(n))
            for start in range(0, n, mb_size):
                idx = order[start : start + mb_size]
                logp = completion_logprobs(policy, comp.index(idx))
                loss, stats = grpo_loss(
                    logp,
                    old_logp[idx],
                    ref_logp[idx],
                    adv[idx],
                    mask[idx],
                    clip_eps=config.clip_eps,
                    kl_coef=config.kl_coef,
                    loss_agg=config.loss_agg,
                )
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"GRPO loss is {float(loss)} at iteration {it}; lower lr ({config.lr})")
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
                opt.step()
                losses.append(float(loss.detach()))
                clip_fracs.append(0.0 if math.isinf(config.clip_eps) else stats["clip_frac"])
                kls.append(stats["kl"])
        wall += time.perf_counter() - t0
        lengths = comp.lengths
        good = rewards.numpy() > 0.5
        groups = rewards.view(-1, config.group_size)
        row = {
            "iteration": it,
            "reward": float(rewards.mean()),
            "zero_adv_frac": float((groups.max(1).values == groups.min(1).values).float().mean()),
            "length": float(lengths.mean()),
            "length_correct": float(lengths[good].mean()) if good.any() else float("nan"),
            "length_wrong": float(lengths[~good].mean()) if (~good).any() else float("nan"),
            "loss": float(np.mean(losses)),
            "clip_frac": float(np.mean(clip_fracs)),
            "kl": float(np.mean(kls)),
            "wall_s": wall,
        }
        if config.verifier != "exact":
            row["exact_reward"] = float(verify(flat, comp.texts, "exact").mean())
        if callback is not None:
            extra = callback(it, policy, wall)
            if extra:
                row.update(extra)
        history.rows.append(row)
    return history
