"""Returns and generalised advantage estimation (book section 1.2, "Policy gradients, baselines and GAE").

Everything here is a pure function on time-major tensors, ``[T]`` (one trajectory segment) or ``[T, N]`` (``N``
parallel environments); nothing touches an environment.

* Discounted return (reward-to-go), Sutton & Barto (2018), eq. 3.9:

  .. math:: G_t = r_t + \\gamma (1 - d_t) G_{t+1}, \\qquad G_T := 0,

  where :math:`d_t = 1` when the episode terminated at step :math:`t` (so the return does not leak into the next
  episode of the same stream).

* GAE(:math:`\\gamma, \\lambda`), Schulman et al. (2016), with gymnasium's distinction between an episode that
  *terminated* (a true end: the value of the next state is 0) and one that was *truncated* (cut by a time limit:
  the next state still has a value, so we bootstrap from it but do not chain advantages across the cut):

  .. math::
     \\delta_t = r_t + \\gamma (1 - \\text{term}_t) V(s_{t+1}) - V(s_t), \\qquad
     A_t = \\delta_t + \\gamma \\lambda (1 - \\text{term}_t)(1 - \\text{trunc}_t) A_{t+1}, \\qquad A_T := 0.

  ``next_values[t]`` is :math:`V(s_{t+1})`, the value of the observation that *followed* step ``t`` (for a
  truncated step, the final observation of the cut episode). :math:`\\lambda = 0` gives the one-step TD error,
  :math:`\\lambda = 1` the Monte-Carlo return minus the value.
"""

from __future__ import annotations

import torch

from rl4llm.utils import check_range

__all__ = ["discounted_returns", "gae"]


def _as_float_tensor(name: str, x, like: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as err:  # noqa: BLE001 - re-raised with the parameter's name
            raise TypeError(f"{name} must be a tensor or array, got {type(x).__name__}") from err
    dtype = like.dtype if like is not None else (x.dtype if x.is_floating_point() else torch.float32)
    return x.to(dtype)


def _check_shapes(names_tensors: list[tuple[str, torch.Tensor]]) -> None:
    first_name, first = names_tensors[0]
    if first.dim() not in (1, 2):
        raise ValueError(f"{first_name} must be [T] or [T, N] (time-major), got shape {tuple(first.shape)}")
    if first.shape[0] == 0:
        raise ValueError(f"{first_name} must have at least one time step")
    for name, t in names_tensors[1:]:
        if t.shape != first.shape:
            raise ValueError(f"{name} must have the shape of {first_name} {tuple(first.shape)}, got {tuple(t.shape)}")


def discounted_returns(rewards: torch.Tensor, terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reward-to-go :math:`G_t = r_t + \\gamma (1 - d_t) G_{t+1}` with :math:`G_T = 0`.

    Args:
        rewards: ``[T]`` or ``[T, N]`` rewards, time-major.
        terminated: same shape, 1 (or True) where the episode ended at that step.
        gamma: discount factor in ``[0, 1]``.

    Returns:
        A tensor of the shape of ``rewards``. A segment that ends without ``terminated`` is treated as ending
        there (no bootstrap); use :func:`gae` with a value function to bootstrap.
    """
    rewards = _as_float_tensor("rewards", rewards)
    terminated = _as_float_tensor("terminated", terminated, rewards)
    _check_shapes([("rewards", rewards), ("terminated", terminated)])
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    # BEGIN SOLUTION
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * (1.0 - terminated[t]) * running
        returns[t] = running
    return returns
    # END SOLUTION


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimates (Schulman et al. 2016), time-major.

    .. math::
       \\delta_t = r_t + \\gamma (1 - \\text{term}_t) V(s_{t+1}) - V(s_t), \\quad
       A_t = \\delta_t + \\gamma \\lambda (1 - \\text{term}_t)(1 - \\text{trunc}_t) A_{t+1}, \\quad A_T = 0.

    Args:
        rewards: ``[T]`` or ``[T, N]`` rewards :math:`r_t`.
        values: same shape, :math:`V(s_t)`.
        next_values: same shape, :math:`V(s_{t+1})` (the observation after step ``t``; for a truncated step the
            final observation of the cut episode).
        terminated: same shape, 1 where the episode truly ended at step ``t`` (no bootstrap).
        truncated: same shape, 1 where the episode was cut at step ``t`` (bootstrap, but no chaining).
        gamma: discount in ``[0, 1]``.
        lam: GAE :math:`\\lambda` in ``[0, 1]``.

    Returns:
        Advantages :math:`A_t`, the shape of ``rewards``. Value targets are ``advantages + values``.
    """
    rewards = _as_float_tensor("rewards", rewards)
    values = _as_float_tensor("values", values, rewards)
    next_values = _as_float_tensor("next_values", next_values, rewards)
    terminated = _as_float_tensor("terminated", terminated, rewards)
    truncated = _as_float_tensor("truncated", truncated, rewards)
    _check_shapes(
        [
            ("rewards", rewards),
            ("values", values),
            ("next_values", next_values),
            ("terminated", terminated),
            ("truncated", truncated),
        ]
    )
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    lam = check_range("lam", lam, 0.0, 1.0)
    # BEGIN SOLUTION
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        not_terminated = 1.0 - terminated[t]
        delta = rewards[t] + gamma * not_terminated * next_values[t] - values[t]
        next_advantage = delta + gamma * lam * not_terminated * (1.0 - truncated[t]) * next_advantage
        advantages[t] = next_advantage
    return advantages
    # END SOLUTION
