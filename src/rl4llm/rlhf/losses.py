"""Preference losses: the Bradley-Terry reward-model loss and the DPO loss (chapter 5, sections 1 and 5).

Both are pure tensor-in / scalar-out functions on *sequence-level* quantities: a reward model's scalar per
response, or a policy's summed log-probability of a response (``rl4llm.lm.sequence_logprobs``).

Bradley-Terry {Bradley & Terry 1952}: the probability that a person prefers response :math:`y_c` to :math:`y_r` is
:math:`\\sigma(r(y_c) - r(y_r))`, so the reward model maximises the log-likelihood of the observed choices.

DPO {Rafailov et al. 2023}: with the KL-regularised optimum :math:`\\pi^*(y) \\propto \\pi_{ref}(y) e^{r(y)/\\beta}`
the reward is :math:`r(y) = \\beta \\log \\pi^*(y)/\\pi_{ref}(y) + \\text{const}`; substituting it into the
Bradley-Terry likelihood gives a loss on the policy alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rl4llm.utils import check_range

__all__ = ["bradley_terry_loss", "dpo_loss"]


def _check_pair(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"{name_a} and {name_b} must be torch.Tensors")
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.numel() == 0:
        raise ValueError(f"{name_a} must not be empty")


def bradley_terry_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float | None = None
) -> torch.Tensor:
    """Negative Bradley-Terry log-likelihood of the preferences, averaged over pairs.

    .. math:: \\mathcal L(r) = -\\frac1N \\sum_i \\log \\sigma\\big(r(y_c^i) - r(y_r^i) - m_i\\big)

    Args:
        chosen: ``[N]`` rewards of the preferred responses.
        rejected: ``[N]`` rewards of the dispreferred responses.
        margin: optional ``[N]`` (or scalar) margin :math:`m_i \\ge 0` by which the chosen reward must win
            (Llama-2 style); ``None`` means 0.

    Returns:
        A scalar tensor (differentiable). At ``chosen == rejected`` it equals :math:`\\log 2`.
    """
    _check_pair("chosen", chosen, "rejected", rejected)
    if margin is not None and not isinstance(margin, torch.Tensor):
        margin = torch.tensor(check_range("margin", margin, None, None), dtype=chosen.dtype)
    # BEGIN SOLUTION
    diff = chosen - rejected
    if margin is not None:
        diff = diff - margin
    # log sigma(x) computed stably as -softplus(-x)
    return -F.logsigmoid(diff).mean()
    # END SOLUTION


def dpo_loss(
    pi_chosen: torch.Tensor,
    pi_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Direct preference optimisation loss on summed sequence log-probabilities.

    .. math:: \\mathcal L_{DPO}(\\pi) = -\\frac1N \\sum_i \\log \\sigma\\Big(\\beta\\big[(\\log\\pi(y_c^i)
              - \\log\\pi_{ref}(y_c^i)) - (\\log\\pi(y_r^i) - \\log\\pi_{ref}(y_r^i))\\big]\\Big)

    Args:
        pi_chosen, pi_rejected: ``[N]`` summed log-probs of the chosen / rejected responses under the policy.
        ref_chosen, ref_rejected: ``[N]`` the same under the frozen reference (SFT) policy.
        beta: the KL strength :math:`\\beta > 0` (the implicit reward is :math:`\\beta\\log\\pi/\\pi_{ref}`).

    Returns:
        A scalar tensor. When the policy equals the reference it is exactly :math:`\\log 2`.
    """
    _check_pair("pi_chosen", pi_chosen, "pi_rejected", pi_rejected)
    _check_pair("pi_chosen", pi_chosen, "ref_chosen", ref_chosen)
    _check_pair("pi_chosen", pi_chosen, "ref_rejected", ref_rejected)
    beta = check_range("beta", beta, 0.0, None, low_inclusive=False)
    # BEGIN SOLUTION
    chosen_logratio = pi_chosen - ref_chosen
    rejected_logratio = pi_rejected - ref_rejected
    logits = beta * (chosen_logratio - rejected_logratio)
    return -F.logsigmoid(logits).mean()
    # END SOLUTION
