"""Conservative Q-learning (Kumar et al. 2020): the penalty that keeps offline Q-values honest (book section 2.3).

Fitted Q-iteration regresses :math:`Q_\\theta(s, a)` on Bellman targets that take a max over *all* actions of the
next state, including actions the dataset never tried; nothing in the loss pins those values down, so their errors
are free to be positive, and the max picks exactly the positive ones. CQL(:math:`\\mathcal H`) adds a term that
pushes *every* action's value down (a soft maximum) and pulls the *logged* actions' values back up:

.. math::
   \\mathcal L(\\theta) = \\alpha\\, \\mathbb E_{s \\sim \\mathcal D}\\Big[\\log \\sum_a e^{Q_\\theta(s, a)}
   - \\mathbb E_{a \\sim \\mathcal D(\\cdot \\mid s)} Q_\\theta(s, a)\\Big]
   + \\tfrac12\\, \\mathbb E_{(s, a, r, s') \\sim \\mathcal D}\\Big[\\big(Q_\\theta(s, a) - y\\big)^2\\Big],
   \\qquad y = r + \\gamma (1 - \\text{term}) \\max_{a'} Q_{\\bar\\theta}(s', a').

(Kumar et al. 2020, eq. 4.) Actions the data supports are lifted by the second term as much as they are lowered by
the first; actions it does not support are only lowered. At the fixed point the learned values are a lower bound
on the true ones for large enough :math:`\\alpha`, and a greedy policy prefers what the data has seen. With
:math:`\\alpha = 0` the loss is plain fitted Q-iteration (:mod:`rl4llm.offline.fqi`).
"""

from __future__ import annotations

import torch

from rl4llm.utils import check_range

__all__ = ["cql_penalty", "bellman_loss", "cql_loss"]


def _check(q_values: torch.Tensor, actions: torch.Tensor) -> None:
    if not isinstance(q_values, torch.Tensor) or q_values.ndim != 2:
        raise ValueError(f"q_values must be a [B, A] tensor, got {getattr(q_values, 'shape', type(q_values))}")
    if not isinstance(actions, torch.Tensor) or tuple(actions.shape) != (q_values.shape[0],):
        raise ValueError(
            f"actions must be a [B] = [{q_values.shape[0]}] tensor of action indices, "
            f"got {getattr(actions, 'shape', type(actions))}"
        )


def cql_penalty(q_values: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """CQL's conservative penalty :math:`\\frac1B \\sum_i \\big[\\log \\sum_a e^{Q(s_i, a)} - Q(s_i, a_i)\\big]`.

    Args:
        q_values: ``[B, A]`` :math:`Q_\\theta(s_i, \\cdot)` for the dataset states.
        actions: ``[B]`` the logged actions :math:`a_i`.
    Returns:
        a scalar tensor, always :math:`\\ge 0` (a log-sum-exp is at least its largest term), and equal to
        :math:`\\log A` when all actions have the same value.
    """
    _check(q_values, actions)
    # BEGIN SOLUTION
    soft_max = torch.logsumexp(q_values, dim=1)
    logged = q_values.gather(1, actions.long()[:, None]).squeeze(1)
    return (soft_max - logged).mean()
    # END SOLUTION


def bellman_loss(q_values: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fitted Q-iteration's regression loss :math:`\\frac1{2B} \\sum_i (Q(s_i, a_i) - y_i)^2`; ``targets`` ``[B]``."""
    _check(q_values, actions)
    if tuple(targets.shape) != (q_values.shape[0],):
        raise ValueError(f"targets must be [B] = [{q_values.shape[0]}], got {tuple(targets.shape)}")
    logged = q_values.gather(1, actions.long()[:, None]).squeeze(1)
    return 0.5 * ((logged - targets.detach()) ** 2).mean()


def cql_loss(
    q_values: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """The CQL(:math:`\\mathcal H`) objective :math:`\\alpha \\cdot` :func:`cql_penalty` + :func:`bellman_loss`.

    Returns the scalar loss and its two parts (as floats, for logging). ``alpha = 0`` gives fitted Q-iteration.
    """
    alpha = check_range("alpha", alpha, 0.0, None)
    bellman = bellman_loss(q_values, actions, targets)
    penalty = cql_penalty(q_values, actions)
    loss = bellman + alpha * penalty if alpha > 0 else bellman
    return loss, {"bellman_loss": bellman.item(), "cql_penalty": penalty.item()}
