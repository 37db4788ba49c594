"""PPO's losses as pure functions (book section 1.3, "Proximal policy optimisation").

Schulman et al. (2017), eq. 7, the clipped surrogate objective, with the probability ratio
:math:`\\rho_t = \\pi_\\theta(a_t|s_t) / \\pi_{\\theta_{old}}(a_t|s_t) = e^{\\log\\pi_\\theta - \\log\\pi_{old}}`:

.. math:: L^{CLIP}(\\theta) = \\mathbb E_t\\big[\\min(\\rho_t A_t,\\ \\text{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon) A_t)\\big].

We *minimise*, so the loss is :math:`-L^{CLIP}`. The min makes the objective a pessimistic bound: once the ratio
has moved more than :math:`\\epsilon` in the direction that the advantage favours, the gradient is zero, which keeps
each update close to the policy that collected the data. The other terms of PPO's loss (value regression, entropy
bonus, advantage normalisation) live here too, so that the trainer in :mod:`rl4llm.rl.ppo` only composes them.

Both PPO loops of the book, chapter 1's :func:`rl4llm.rl.train_ppo` and chapter 5's
:func:`rl4llm.rlhf.ppo.train_ppo_rlhf`, log the same diagnostics from this module: :func:`approx_kl` (how far an
update moved the policy), :func:`clip_fraction` (how often the ratio left the trust region) and the (masked)
entropy :func:`entropy_bonus`; chapter 5 whitens its advantages over the response tokens with
:func:`masked_whiten`. A ``mask`` marks the entries that count (1) and padding (0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from rl4llm.config import is_unbounded
from rl4llm.utils import check_range

__all__ = [
    "ppo_clip_loss",
    "clipped_value_loss",
    "entropy_bonus",
    "normalize_advantages",
    "masked_whiten",
    "approx_kl",
    "clip_fraction",
]


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


def _check_mask(mask: torch.Tensor, shape: tuple[int, ...]) -> None:
    """A 0/1 ``mask`` of the given shape with at least one 1."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {shape}, got {tuple(mask.shape)}")
    if not bool(mask.any()):
        raise ValueError("mask must mark at least one entry (it is all 0)")


def _check_clip(name: str, clip_eps: float) -> float:
    """``clip_eps`` in ``[0, inf]``: ``inf`` switches clipping off (the plain importance-weighted surrogate)."""
    if is_unbounded(clip_eps):
        return math.inf
    return check_range(name, clip_eps, 0.0, None)


def ppo_clip_loss(
    logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, clip_eps: float
) -> torch.Tensor:
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


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_eps: float | None
) -> torch.Tensor:
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
    if clip_eps is None or is_unbounded(clip_eps):
        return 0.5 * unclipped.mean()
    old_values = old_values.detach()
    v_clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    clipped = (v_clipped - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped).mean()
    # END SOLUTION


def entropy_bonus(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean entropy :math:`\\mathcal H = -\\sum_a \\pi(a) \\log \\pi(a)` of categorical policies given ``[..., A]`` logits.

    PPO *adds* ``ent_coef * entropy`` to its objective (subtracts it from the loss) to keep exploring. With a
    ``mask`` of shape ``logits.shape[:-1]`` (1 on the positions that count, 0 on padding) the mean runs over the
    masked positions only, :math:`\\sum_t m_t \\mathcal H_t / \\sum_t m_t` (chapter 5's per-token entropy).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() < 2 or logits.numel() == 0:
        raise ValueError(f"logits must be a non-empty [..., A] tensor, got {getattr(logits, 'shape', logits)!r}")
    if mask is not None:
        _check_mask(mask, tuple(logits.shape[:-1]))
    # BEGIN SOLUTION
    logp = torch.log_softmax(logits, dim=-1)
    per_position = -(logp.exp() * logp).sum(dim=-1)
    if mask is None:
        return per_position.mean()
    return (per_position * mask).sum() / mask.sum()
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


def masked_whiten(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    eps: float = 1e-8,
    total: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Whiten ``x`` over the entries where ``mask`` is 1, :math:`(x - \\mu) / \\sqrt{\\sigma^2 + \\varepsilon}`;
    0 elsewhere.

    .. math:: \\mu = \\frac{\\sum_i m_i x_i}{\\sum_i m_i}, \\qquad
              \\sigma^2 = \\frac{\\sum_i m_i (x_i - \\mu)^2}{\\sum_i m_i}

    (the population variance over the batch's response tokens, as in Ziegler et al.'s and TRL's PPO for
    language models; ``mask=None`` counts every entry). Chapter 1's :func:`normalize_advantages` is the
    per-minibatch form with the sample standard deviation added to :math:`\\varepsilon` outside the root.
    ``total`` (default: none) sums each of the three scalar sums over processes first, so that a batch split
    across processes is whitened with the whole batch's statistics
    (:meth:`rl4llm.distributed.Runtime.sum`).
    """
    if not isinstance(x, torch.Tensor) or x.numel() == 0:
        raise ValueError("x must be a non-empty torch.Tensor")
    if mask is None:
        mask = torch.ones_like(x)
    else:
        _check_mask(mask, tuple(x.shape))
    eps = check_range("eps", eps, 0.0, None)
    if total is not None and not callable(total):
        raise ValueError("total must be callable or None")
    total = total or (lambda t: t)
    n = total(mask.sum()).clamp_min(1.0)
    mean = total((x * mask).sum()) / n
    var = total((((x - mean) * mask) ** 2).sum()) / n
    return (x - mean) * torch.rsqrt(var + eps) * mask


def approx_kl(logp_new: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    """How far an update moved the policy: the k3 estimate of :math:`\\mathrm{KL}(\\pi_{old} \\| \\pi_\\theta)`.

    .. math:: \\widehat{\\mathrm{KL}} = \\text{mean}\\big((\\rho - 1) - \\log \\rho\\big),
              \\qquad \\log\\rho = \\log\\pi_\\theta(a|s) - \\log\\pi_{old}(a|s)

    on actions sampled from :math:`\\pi_{old}` (Schulman 2020, "Approximating KL divergence"): unbiased, and never
    negative since :math:`e^x - 1 \\ge x`. Returns a detached scalar tensor; ``target_kl`` compares against it.
    """
    _check_same_shape(logp_new=logp_new, logp_old=logp_old)
    with torch.no_grad():
        log_ratio = logp_new - logp_old
        return ((log_ratio.exp() - 1.0) - log_ratio).mean()


def clip_fraction(logp_new: torch.Tensor, logp_old: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """The fraction of samples whose ratio :math:`\\rho = \\pi_\\theta/\\pi_{old}` left
    :math:`[1-\\epsilon, 1+\\epsilon]`, i.e. :math:`\\text{mean}(\\mathbb 1[|\\rho - 1| > \\epsilon])`: where the
    clipped surrogate stopped the gradient. 0 when ``clip_eps`` is ``inf`` (no clipping). Returns a detached
    scalar tensor."""
    _check_same_shape(logp_new=logp_new, logp_old=logp_old)
    clip_eps = _check_clip("clip_eps", clip_eps)
    with torch.no_grad():
        log_ratio = logp_new - logp_old
        return ((log_ratio.exp() - 1.0).abs() > clip_eps).float().mean()
