"""KL control for RLHF: Schulman's per-token KL estimators and the adaptive KL coefficient (chapter 5, section 3).

The RLHF objective penalises the policy's divergence from the frozen reference (SFT) model,

.. math:: \\max_\\pi \\; \\mathbb E_{y\\sim\\pi}[r(y)] - \\beta\\, \\mathrm{KL}(\\pi \\,\\|\\, \\pi_{ref}),

and the KL is estimated from the policy's own samples. With :math:`x = \\log\\pi_{ref}(a) - \\log\\pi(a)` on a token
:math:`a \\sim \\pi` (Schulman 2020, "Approximating KL divergence"):

* ``k1`` :math:`= -x` (unbiased, high variance, can be negative),
* ``k2`` :math:`= x^2/2` (biased, low variance, always :math:`\\ge 0`),
* ``k3`` :math:`= (e^x - 1) - x` (unbiased, low variance, always :math:`\\ge 0`).

The adaptive controller of Ziegler et al. (2019) steers the measured KL towards a target by a proportional rule.
"""

from __future__ import annotations

import torch

from rl4llm.utils import check_positive_int, check_range

__all__ = ["kl_k1", "kl_k2", "kl_k3", "AdaptiveKLController", "FixedKLController"]


def _check(logp: torch.Tensor, ref_logp: torch.Tensor) -> None:
    if not isinstance(logp, torch.Tensor) or not isinstance(ref_logp, torch.Tensor):
        raise TypeError("logp and ref_logp must be torch.Tensors")
    if logp.shape != ref_logp.shape:
        raise ValueError(
            f"logp and ref_logp must have the same shape, got {tuple(logp.shape)} and {tuple(ref_logp.shape)}"
        )


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k1 estimator of KL(π‖π_ref) on samples from π: :math:`k_1 = \\log\\pi(a) - \\log\\pi_{ref}(a)`."""
    _check(logp, ref_logp)
    # BEGIN SOLUTION
    return logp - ref_logp
    # END SOLUTION


def kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k2 estimator: :math:`k_2 = \\tfrac12(\\log\\pi(a) - \\log\\pi_{ref}(a))^2`."""
    _check(logp, ref_logp)
    # BEGIN SOLUTION
    return 0.5 * (logp - ref_logp) ** 2
    # END SOLUTION


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator: :math:`k_3 = (e^{x} - 1) - x` with :math:`x = \\log\\pi_{ref}(a) - \\log\\pi(a)`."""
    _check(logp, ref_logp)
    # BEGIN SOLUTION
    log_ratio = ref_logp - logp
    return torch.expm1(log_ratio) - log_ratio
    # END SOLUTION


class AdaptiveKLController:
    """Adaptive KL coefficient of Ziegler et al. (2019), a proportional controller on the measured KL.

    .. math:: e_t = \\mathrm{clip}\\Big(\\frac{\\mathrm{KL}_t}{\\mathrm{KL}_{target}} - 1, -0.2, 0.2\\Big), \\qquad
              \\beta_{t+1} = \\beta_t\\,\\Big(1 + e_t\\,\\frac{n_{steps}}{\\text{horizon}}\\Big)

    Too much KL (above target) raises :math:`\\beta`; too little lowers it. ``n_steps`` is the number of samples
    (episodes) in the batch that produced ``current_kl``; ``horizon`` sets how fast :math:`\\beta` moves.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int | float) -> None:
        self.value = check_range("init_kl_coef", init_kl_coef, 0.0, None, low_inclusive=False)
        self.target = check_range("target", target, 0.0, None, low_inclusive=False)
        self.horizon = check_range("horizon", horizon, 0.0, None, low_inclusive=False)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Move the coefficient towards the target KL; return the new value."""
        current_kl = check_range("current_kl", float(current_kl), None, None)
        n_steps = check_positive_int("n_steps", n_steps)
        # BEGIN SOLUTION
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        mult = 1.0 + proportional_error * n_steps / self.horizon
        self.value = self.value * mult
        # END SOLUTION
        return self.value

    def __repr__(self) -> str:
        return f"AdaptiveKLController(value={self.value:.4g}, target={self.target:g}, horizon={self.horizon:g})"


class FixedKLController:
    """A constant KL coefficient with the same interface as :class:`AdaptiveKLController` (``update`` is a no-op)."""

    def __init__(self, kl_coef: float) -> None:
        self.value = check_range("kl_coef", kl_coef, 0.0, None)

    def update(self, current_kl: float, n_steps: int) -> float:  # noqa: ARG002 - same interface
        return self.value

    def __repr__(self) -> str:
        return f"FixedKLController(value={self.value:g})"
