"""GRPO's loss: PPO's clipped surrogate per token, a k3 KL penalty, and three ways to average (chapter 7, 2-3).

Each completion :math:`o_i` carries one advantage :math:`A_i` (:func:`rl4llm.rlvr.group_advantages`), copied onto all
its tokens. Per token, with :math:`\\rho_{i,t} = \\pi_\\theta(o_{i,t} \\mid q, o_{i,<t}) / \\pi_{old}(\\cdot)`:

.. math:: \\ell_{i,t} = -\\min\\big(\\rho_{i,t} A_i,\\ \\mathrm{clip}(\\rho_{i,t}, 1-\\epsilon, 1+\\epsilon) A_i\\big)
          + \\beta\\, k_3(i,t), \\qquad k_3 = e^{\\log\\pi_{ref} - \\log\\pi_\\theta}
          - (\\log\\pi_{ref} - \\log\\pi_\\theta) - 1

(DeepSeekMath puts the KL in the loss with Schulman's k3 estimator, instead of in the reward as in RLHF). How the
:math:`\\ell_{i,t}` are averaged is not a detail (:func:`aggregate_token_loss`): dividing each sequence's sum by its
own length :math:`|o_i|` (GRPO) weights the tokens of short completions more than those of long ones.
"""

from __future__ import annotations

import torch

from rl4llm.rl.losses import _check_clip
from rl4llm.rlhf.kl import kl_k3

__all__ = ["LOSS_AGGREGATIONS", "aggregate_token_loss", "grpo_loss"]

LOSS_AGGREGATIONS = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")


def _check_2d(**tensors: torch.Tensor) -> torch.Size:
    shape = None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 2 or t.numel() == 0:
            raise ValueError(f"{name} must be a non-empty [B, T] tensor, got shape {tuple(t.shape)}")
        if shape is None:
            shape = t.shape
        elif t.shape != shape:
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return shape


def aggregate_token_loss(
    per_token: torch.Tensor, mask: torch.Tensor, mode: str, *, max_len: int | None = None
) -> torch.Tensor:
    """Reduce a per-token loss ``[B, T]`` over the tokens where ``mask`` is 1 to a scalar.

    .. math::
       \\text{seq-mean-token-mean}: \\frac1B \\sum_i \\frac1{|o_i|} \\sum_t \\ell_{i,t} \\quad
       \\text{token-mean}: \\frac{\\sum_{i,t} \\ell_{i,t}}{\\sum_i |o_i|} \\quad
       \\text{seq-mean-token-sum-norm}: \\frac{\\sum_{i,t} \\ell_{i,t}}{B \\cdot L_{max}}

    (DeepSeekMath's GRPO, DAPO, and Dr. GRPO respectively; :math:`L_{max}` = ``max_len``, default ``T``).
    Every row of ``mask`` must hold at least one token.
    """
    _check_2d(per_token=per_token, mask=mask)
    if mode not in LOSS_AGGREGATIONS:
        raise ValueError(f"mode must be one of {', '.join(LOSS_AGGREGATIONS)}; got {mode!r}")
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
        raise ValueError(f"max_len must be an int >= 1 or None, got {max_len!r}")
    lengths = mask.sum(dim=1)
    if bool((lengths <= 0).any()):
        raise ValueError("mask must hold at least one token in every row")
    # BEGIN SOLUTION
    m = mask.to(per_token.dtype)
    if mode == "seq-mean-token-mean":
        return ((per_token * m).sum(dim=1) / m.sum(dim=1)).mean()
    if mode == "token-mean":
        return (per_token * m).sum() / m.sum()
    length = per_token.shape[1] if max_len is None else max_len
    return (per_token * m).sum() / (per_token.shape[0] * length)
    # END SOLUTION


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,
    loss_agg: str = "seq-mean-token-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO's loss and its statistics.

    Args:
        logp: ``[B, T]`` per-token log-probs of the sampled tokens under the current policy (differentiable).
        old_logp: ``[B, T]`` the same under the policy that sampled them (a constant).
        ref_logp: ``[B, T]`` the same under the frozen reference policy (a constant).
        advantages: ``[B]`` one advantage per completion, applied to each of its tokens.
        mask: ``[B, T]`` 1 on completion tokens, 0 on padding.
        clip_eps: PPO's clip range :math:`\\epsilon \\ge 0` (``inf``: no clipping).
        kl_coef: :math:`\\beta \\ge 0`, the weight of the per-token k3 penalty.
        loss_agg: how per-token losses are averaged (:func:`aggregate_token_loss`).

    Returns:
        ``(loss, stats)`` with ``stats["clip_frac"]`` (share of tokens whose ratio left :math:`[1-\\epsilon,
        1+\\epsilon]`) and ``stats["kl"]`` (mean k3 per token).
    """
    shape = _check_2d(logp=logp, old_logp=old_logp, ref_logp=ref_logp, mask=mask)
    if not isinstance(advantages, torch.Tensor) or advantages.shape != (shape[0],):
        raise ValueError(
            f"advantages must be a [B] = [{shape[0]}] tensor, got {tuple(getattr(advantages, 'shape', ()))}"
        )
    clip_eps = _check_clip("clip_eps", clip_eps)
    if (
        isinstance(kl_coef, bool)
        or not isinstance(kl_coef, (int, float))
        or not kl_coef >= 0.0
        or kl_coef == float("inf")
    ):
        raise ValueError(f"kl_coef must be a finite float >= 0, got {kl_coef!r}")
    if loss_agg not in LOSS_AGGREGATIONS:
        raise ValueError(f"loss_agg must be one of {', '.join(LOSS_AGGREGATIONS)}; got {loss_agg!r}")
    # BEGIN SOLUTION
    m = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp.detach())
    adv = advantages.detach().to(logp.dtype)[:, None]
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)
    k3 = kl_k3(logp, ref_logp.detach())
    per_token = -surrogate + kl_coef * k3
    loss = aggregate_token_loss(per_token, mask, loss_agg)
    with torch.no_grad():
        clipped = ((ratio - 1.0).abs() > clip_eps).to(logp.dtype)
        stats = {"clip_frac": float((clipped * m).sum() / m.sum()), "kl": float((k3 * m).sum() / m.sum())}
    return loss, stats
    # END SOLUTION
