"""PPO's losses as pure functions (book section 1.3, "Proximal policy optimisation").

Schulman et al. (2017), eq. 7, the clipped surrogate objective, with the probability ratio
:math:`\\rho_t = \\pi_\\theta(a_t|s_t) / \\pi_{\\theta_{old}}(a_t|s_t) = e^{\\log\\pi_\\theta - \\log\\pi_{old}}`:

.. math:: L^{CLIP}(\\theta) = \\mathbb E_t\\big[\\min(\\rho_t A_t,\\ \\text{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon) A_t)\\big].

We *minimise*, so the loss is :math:`-L^{CLIP}`. The min makes the objective a pessimistic bound: once the ratio
has moved more than :math:`\\epsilon` in the direction that the advantage favours, the gradient is zero, which keeps
each update close to the policy that collected the data. The other terms of PPO's loss (value regression, entropy
bonus, advantage normalisation) live here too, so that the trainer in :mod:`rl4llm.rl.ppo` only composes them.
"""

from __future__ import annotations

import math

import torch

from rl4llm.utils import check_range

__all__ = ["ppo_clip_loss", "clipped_value_loss", "entropy_bonus", "normalize_advantages"]


def _check_same_shape(**tensors: torch.Tensor) -> None:
    items = list(tensors.items())
    for name, t in items:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    name0, t0 = items[0]
    if t0.numel() == 0:
        raise ValueError(f"{name0} must not be empty")
    for name, t in items[1:]:
        if t.shape != t0.shape:
            raise ValueError(f"{name} must have the shape of {name0} {tuple(t0.shape)}, got {tuple(t.shape)}")


def _check_clip(name: str, clip_eps: float) -> float:
    """``clip_eps`` in ``[0, inf]``: ``inf`` switches clipping off (the plain importance-weighted surrogate)."""
    if isinstance(clip_eps, (int, float)) and not isinstance(clip_eps, bool) and math.isinf(clip_eps) and clip_eps > 0:
        return math.inf
    return check_range(name, clip_eps, 0.0, None)


def ppo_clip_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                  clip_eps: float) -> torch.Tensor:
    """The negated clipped surrogate, :math:`-\\text{mean}(\\min(\\rho A, \\text{clip}(\\rho, 1-\\epsilon, 1+\\epsilon) A))`.

    Args:
        logp_new: ``[B]`` log-probabilities of the taken actions under the current policy (differentiable).
        logp_old: ``[B]`` the same under the policy that collected the data (treated as a constant).
        advantages: ``[B]`` advantage estimates (treated as constants).
        clip_eps: the clip range :math:`\\epsilon \\ge 0`; ``float("inf")`` disables clipping.

    Returns:
        A scalar loss. At ``logp_new == logp_old`` it equals ``-advantages.mean()`` and its gradient is the plain
        policy gradient :math:`-\\text{mean}(A \\nabla \\log\\pi)`.
    """
    _check_same_shape(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    clip_eps = _check_clip("clip_eps", clip_eps)
    # BEGIN SOLUTION
    ratio = torch.exp(logp_new - logp_old.detach())
    advantages = advantages.detach()
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -torch.min(unclipped, clipped).mean()
    # END SOLUTION


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       clip_eps: float | None) -> torch.Tensor:
    """PPO's value loss with the value clipped around the old prediction (as in the reference implementation).

    .. math::
       V^{clip} = V_{old} + \\text{clip}(V - V_{old}, -\\epsilon, \\epsilon), \\qquad
       \\mathcal L_V = \\tfrac12\\, \\text{mean}\\big(\\max((V - R)^2, (V^{clip} - R)^2)\\big).

    With ``clip_eps=None`` (or ``inf``) it is the plain regression :math:`\\tfrac12 \\text{mean}((V - R)^2)`.
    """
    _check_same_shape(values=values, old_values=old_values, returns=returns)
    if clip_eps is not None:
        clip_eps = _check_clip("clip_eps", clip_eps)
    # BEGIN SOLUTION
    returns = returns.detach()
    unclipped = (values - returns) ** 2
    if clip_eps is None or math.isinf(clip_eps):
        return 0.5 * unclipped.mean()
    old_values = old_values.detach()
    v_clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    clipped = (v_clipped - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped).mean()
    # END SOLUTION


def entropy_bonus(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy :math:`\\mathcal H = -\\sum_a \\pi(a) \\log \\pi(a)` of categorical policies given ``[B, A]`` logits.

    PPO *adds* ``ent_coef * entropy`` to its objective (subtracts it from the loss) to keep exploring.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must be a non-empty [B, A] tensor, got {getattr(logits, 'shape', logits)!r}")
    # BEGIN SOLUTION
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1).mean()
    # END SOLUTION


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-batch advantage normalisation :math:`(A - \\text{mean}(A)) / (\\text{std}(A) + \\varepsilon)`.

    It fixes the scale of the policy-gradient step whatever the reward scale; a batch of one is only centred.
    """
    if not isinstance(advantages, torch.Tensor) or advantages.numel() == 0:
        raise ValueError("advantages must be a non-empty torch.Tensor")
    eps = check_range("eps", eps, 0.0, None)
    # BEGIN SOLUTION
    centred = advantages - advantages.mean()
    if advantages.numel() < 2:
        return centred
    return centred / (advantages.std() + eps)
    # END SOLUTION
