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

Across processes (a :class:`rl4llm.distributed.Runtime`): every rank draws the same problems, the
``prompts_per_iter`` problems are cut into ``runtime.shards`` shards of whole groups, each sampled with its own
generator (:meth:`~rl4llm.distributed.Runtime.shard_plan`), and a rank samples only its shards, so the global
batch does not depend on the number of processes. Group advantages need nothing from the other ranks (a group
lives on one rank); ``scale="batch"`` uses the global batch's std. Each backward pass is this rank's share of the
global minibatch's loss under ``loss_agg`` (:func:`loss_share`) and the gradients are summed over ranks.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rl4llm.config import param, validate
from rl4llm.lm.generation import Samples
from rl4llm.prompting.tokenizer import CharTokenizer
from rl4llm.rlvr.advantages import BASELINES, SCALES, group_advantages
from rl4llm.rlvr.evaluation import MAX_NEW_TOKENS, Completions, completion_logprobs, sample_completions
from rl4llm.rlvr.losses import LOSS_AGGREGATIONS, grpo_loss
from rl4llm.rlvr.task import VERIFIERS, train_problems, verify
from rl4llm.utils import progress

__all__ = ["GRPOConfig", "GRPOHistory", "METHODS", "train_grpo", "cat_completions", "loss_share"]

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


def cat_completions(parts: list[Completions], pad_id: int) -> Completions:
    """The rows of ``parts`` in one :class:`~rl4llm.rlvr.evaluation.Completions`, re-padded to common widths.

    Prompts are left-padded to the widest prompt, completions right-padded to the longest completion, with
    ``pad_id`` (attention and response masks 0 there). Log-probs do not change: positions come from the mask.
    """
    if not parts:
        raise ValueError("parts must not be empty")
    if len(parts) == 1:
        return parts[0]
    p_max = max(c.samples.prompt_length for c in parts)
    r_max = max(c.samples.input_ids.shape[1] - c.samples.prompt_length for c in parts)

    def pad(x: torch.Tensor, p: int, value: int) -> torch.Tensor:
        r = x.shape[1] - p
        return torch.nn.functional.pad(x, (p_max - p, r_max - r), value=value)

    fields = [
        [pad(getattr(c.samples, f), c.samples.prompt_length, v) for c in parts]
        for f, v in (("input_ids", pad_id), ("attention_mask", 0), ("response_mask", 0))
    ]
    samples = Samples(*(torch.cat(f) for f in fields), p_max)
    return Completions([q for c in parts for q in c.problems], samples, [t for c in parts for t in c.texts])


def loss_share(loss_agg: str, mask: torch.Tensor, runtime: Any, max_len: int | None = None) -> float:
    """The weight of this rank's minibatch loss in the global minibatch's loss under ``loss_agg``.

    With ``B_r`` rows, ``N_r`` tokens and padded width ``T_r`` on rank ``r`` (sums and max over the ranks without
    the index): ``seq-mean-token-mean`` weighs a rank's mean over rows by :math:`B_r / B`, ``token-mean`` its
    token mean by :math:`N_r / N`, and ``seq-mean-token-sum-norm`` (token sum over :math:`B_r T_r`) by
    :math:`B_r T_r / (B\\,T)` with :math:`T = \\max_r T_r` (``max_len``, when given, replaces both widths).
    The weights sum to 1 over the ranks, so the summed gradients are those of the global minibatch.
    """
    if loss_agg not in LOSS_AGGREGATIONS:
        raise ValueError(f"loss_agg must be one of {', '.join(LOSS_AGGREGATIONS)}; got {loss_agg!r}")
    rows = float(mask.shape[0])
    if loss_agg == "token-mean":
        return runtime.token_share(mask.sum())
    if loss_agg == "seq-mean-token-mean":
        return runtime.token_share(rows)
    width = float(mask.shape[1] if max_len is None else max_len)
    t_max = width if max_len is not None else float(runtime.max(torch.tensor(width, dtype=torch.float64)))
    return runtime.token_share(rows) * width / t_max


def _sample_shards(policy, tokenizer, problems, config: GRPOConfig, runtime, it: int) -> Completions:
    """This rank's shards of the iteration's groups (whole groups; one generator per shard)."""
    per_shard = config.prompts_per_iter // runtime.shards
    parts = []
    for s, (rows, g) in zip(runtime.shard_indices, runtime.shard_plan(config.prompts_per_iter, config.seed, it)):
        flat = [q for q in problems[s * per_shard : s * per_shard + rows] for _ in range(config.group_size)]
        parts.append(
            sample_completions(
                policy,
                tokenizer,
                flat,
                temperature=config.temperature,
                max_new_tokens=config.max_new_tokens,
                generator=g,
            )
        )
    return cat_completions(parts, tokenizer.pad_token_id)


def _global_advantages(rewards: torch.Tensor, config: GRPOConfig, runtime) -> torch.Tensor:
    """:func:`_advantages` with the batch std (``scale="batch"``) taken over every rank's rewards."""
    if config.scale != "batch":
        return _advantages(rewards, config)
    if config.baseline == "none":
        adv = rewards.clone()
    else:
        adv = group_advantages(rewards, config.group_size, baseline=config.baseline, scale="none")
    r = rewards.double()
    n, s1, s2 = runtime.sum(torch.stack([torch.tensor(float(r.numel()), dtype=torch.float64), r.sum(), (r * r).sum()]))
    var = (s2 - s1 * s1 / n) / (n - 1)
    return adv / (float(var.clamp(min=0).sqrt()) + 1e-4)


def _global_row(rewards: torch.Tensor, lengths: np.ndarray, group_size: int, runtime) -> dict[str, float]:
    """Reward, zero-advantage share and lengths over every rank's completions (sums all-reduced)."""
    good = rewards.numpy() > 0.5
    groups = rewards.view(-1, group_size)
    flat = (groups.max(1).values == groups.min(1).values).double().sum()
    ln = torch.as_tensor(lengths, dtype=torch.float64)
    g = torch.as_tensor(good)
    local = torch.stack(
        [
            torch.tensor(float(rewards.numel()), dtype=torch.float64),
            rewards.double().sum(),
            torch.tensor(float(groups.shape[0]), dtype=torch.float64),
            flat,
            ln.sum(),
            ln[g].sum(),
            g.double().sum(),
            ln[~g].sum(),
        ]
    )
    n, r_sum, n_groups, n_flat, len_sum, len_good, n_good, len_bad = (float(v) for v in runtime.sum(local))
    return {
        "reward": r_sum / n,
        "zero_adv_frac": n_flat / n_groups,
        "length": len_sum / n,
        "length_correct": len_good / n_good if n_good else float("nan"),
        "length_wrong": len_bad / (n - n_good) if n > n_good else float("nan"),
    }


def train_grpo(
    policy: nn.Module,
    ref_model: nn.Module | None,
    tokenizer: CharTokenizer,
    config: GRPOConfig,
    *,
    callback: Callable[[int, nn.Module, float], dict[str, float] | None] | None = None,
    runtime: Any = None,
) -> GRPOHistory:
    """Optimise ``policy`` in place with the group-baseline policy gradient of ``config``.

    ``ref_model`` is the frozen reference of the KL term (needed only when ``kl_coef > 0``). ``callback(it,
    policy, wall_s)`` runs after every iteration; a dict it returns is merged into that iteration's row (e.g.
    held-out pass@1); its own time is not counted in ``wall_s``. Each row holds ``reward`` (mean verifier
    reward), ``zero_adv_frac`` (share of groups whose rewards are all equal), ``length``, ``length_correct``,
    ``length_wrong``, ``loss``, ``clip_frac``, ``kl`` (mean k3 per token), ``wall_s`` (training time so far), and
    with a flawed verifier ``exact_reward`` (the exact verifier's mean on the same completions).

    ``runtime`` (:func:`rl4llm.distributed.make_runtime`; ``None``: one CPU process, float32, the book's path)
    samples this rank's shards of the groups on ``runtime.device`` under its autocast, sums the gradients over
    ranks (see the module docstring) and logs statistics of the global batch; the models must already be on
    ``runtime.device``. ``runtime.shards`` must divide ``prompts_per_iter``, and the number of processes
    ``W`` must divide each minibatch (``group_size * prompts_per_iter / n_minibatches``).
    """
    if config.kl_coef > 0 and ref_model is None:
        raise ValueError("ref_model is needed when kl_coef > 0")
    if runtime is not None:
        if config.prompts_per_iter % runtime.shards:
            raise ValueError(
                f"prompts_per_iter must be a multiple of the rollout shards ({runtime.shards}), "
                f"got {config.prompts_per_iter}"
            )
        runtime.local_rows(config.group_size * config.prompts_per_iter // config.n_minibatches, "minibatch size")
    autocast = contextlib.nullcontext if runtime is None else runtime.autocast
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
        if runtime is None:
            flat = [q for q in problems for _ in range(config.group_size)]
            comp = sample_completions(
                policy,
                tokenizer,
                flat,
                temperature=config.temperature,
                max_new_tokens=config.max_new_tokens,
                generator=gen,
            )
        else:  # this rank's shards of the groups
            with autocast(), torch.no_grad(), runtime.gathered(policy):  # FSDP: whole weights for sampling
                comp = _sample_shards(policy, tokenizer, problems, config, runtime, it)
            flat = comp.problems
        # 2. the verifier's rewards, 3. the group advantages
        rewards = torch.as_tensor(verify(flat, comp.texts, config.verifier), dtype=torch.float32)
        adv = _advantages(rewards, config) if runtime is None else _global_advantages(rewards, config, runtime)
        mask = comp.mask
        if runtime is not None:
            adv, mask = adv.to(mask.device), mask.to(comp.samples.input_ids.device)
        with torch.no_grad(), autocast():
            old_logp = completion_logprobs(policy, comp)
            ref_logp = completion_logprobs(ref_model, comp) if config.kl_coef > 0 else old_logp
        # 4. clipped updates over minibatches of completions
        losses, clip_fracs, kls = [], [], []
        n_local = len(flat)
        local_mb = mb_size if runtime is None else mb_size // runtime.world_size
        for _ in range(config.n_epochs):
            order = torch.as_tensor(rng.permutation(n_local))
            for start in range(0, n_local, local_mb):
                idx = order[start : start + local_mb]
                with autocast():
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
                if runtime is None:
                    loss.backward()
                else:  # this rank's share of the global minibatch's loss; gradients summed over ranks
                    share = loss_share(config.loss_agg, mask[idx], runtime)
                    runtime.backward(loss * share, policy)
                    loss = runtime.sum(loss.detach() * share)
                nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
                opt.step()
                losses.append(float(loss.detach()))
                clip_fracs.append(0.0 if math.isinf(config.clip_eps) else stats["clip_frac"])
                kls.append(stats["kl"])
        wall += time.perf_counter() - t0
        lengths = comp.lengths if runtime is None else comp.mask.sum(1).cpu().numpy()
        if runtime is None:
            good = rewards.numpy() > 0.5
            groups = rewards.view(-1, config.group_size)
            rollout_stats = {
                "reward": float(rewards.mean()),
                "zero_adv_frac": float((groups.max(1).values == groups.min(1).values).float().mean()),
                "length": float(lengths.mean()),
                "length_correct": float(lengths[good].mean()) if good.any() else float("nan"),
                "length_wrong": float(lengths[~good].mean()) if (~good).any() else float("nan"),
            }
            update_stats = {"clip_frac": float(np.mean(clip_fracs)), "kl": float(np.mean(kls))}
        else:
            rollout_stats = _global_row(rewards, lengths, config.group_size, runtime)
            update_stats = runtime.mean_over_ranks({"clip_frac": float(np.mean(clip_fracs)), "kl": float(np.mean(kls))})
        row = {
            "iteration": it,
            **rollout_stats,
            "loss": float(np.mean(losses)),
            **update_stats,
            "wall_s": wall,
        }
        if config.verifier != "exact":
            exact = verify(flat, comp.texts, "exact")
            row["exact_reward"] = (
                float(exact.mean())
                if runtime is None
                else float(runtime.sum(torch.tensor(float(np.sum(exact)), dtype=torch.float64)))
                / (config.group_size * config.prompts_per_iter)
            )
        if callback is not None:
            extra = callback(it, policy, wall)
            if extra:
                row.update(extra)
        history.rows.append(row)
    return history
