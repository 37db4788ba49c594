"""A group of samples per prompt as the baseline: GRPO, Dr. GRPO and RLOO advantages (chapter 7, section 2).

The verifier pays one reward per completion, at its end. Instead of a learned critic, RL with verifiable rewards
samples a *group* of :math:`G` completions :math:`o_1, \\dots, o_G` of the same prompt and compares each one with
its siblings. With rewards :math:`r_1, \\dots, r_G` of one group:

* ``baseline="mean"``: :math:`A_i = r_i - \\bar r`, :math:`\\bar r = \\frac1G \\sum_j r_j` (GRPO, Shao et al. 2024);
* ``baseline="loo"``: :math:`A_i = r_i - \\frac1{G-1}\\sum_{j\\ne i} r_j`, the leave-one-out baseline of RLOO
  (Kool et al. 2019; Ahmadian et al. 2024), which does not depend on :math:`o_i` and so keeps the gradient
  unbiased; it equals :math:`\\frac{G}{G-1}(r_i - \\bar r)`;
* ``scale="group"``: divide by the group's standard deviation (Bessel-corrected) plus ``eps`` (GRPO);
  ``"batch"``: by the whole batch's; ``"none"``: no division (Dr. GRPO, Liu et al. 2025, and RLOO).

GRPO = ``("mean", "group")``, Dr. GRPO = ``("mean", "none")``, RLOO = ``("loo", "none")``.
"""

from __future__ import annotations

import torch

from rl4llm.utils import check_choice, check_range

__all__ = ["BASELINES", "SCALES", "group_advantages"]

BASELINES = ("mean", "loo")
SCALES = ("group", "batch", "none")


def group_advantages(
    rewards: torch.Tensor, group_size: int, *, baseline: str = "mean", scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """Advantages ``[B]`` of rewards ``[B]`` laid out as ``B / group_size`` consecutive groups of one prompt each.

    .. math:: A_i = \\frac{r_i - b_i}{s + \\varepsilon}, \\quad
              b_i = \\begin{cases} \\bar r_g & \\text{mean} \\\\ \\frac{G \\bar r_g - r_i}{G-1} & \\text{loo}\\end{cases},
              \\quad s = \\begin{cases} \\mathrm{std}_g & \\text{group} \\\\ \\mathrm{std}_{batch} & \\text{batch}
              \\\\ 1 - \\varepsilon & \\text{none}\\end{cases}

    (``"none"`` divides by nothing.) Standard deviations are Bessel-corrected (divide by :math:`n - 1`). A group
    whose rewards are all equal gets advantages 0 whatever the scale.

    Raises ``ValueError`` when ``rewards`` is not 1-D, ``group_size < 2``, ``B`` is not a multiple of
    ``group_size``, or ``eps < 0``.
    """
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    if rewards.ndim != 1 or rewards.numel() == 0:
        raise ValueError(f"rewards must be a non-empty 1-D tensor [B], got shape {tuple(rewards.shape)}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an int >= 2, got {group_size!r}")
    if rewards.numel() % group_size:
        raise ValueError(f"group_size ({group_size}) must divide the number of rewards B = {rewards.numel()}")
    check_choice("baseline", baseline, BASELINES)
    check_choice("scale", scale, SCALES)
    eps = check_range("eps", eps, 0.0, None)
    # BEGIN SOLUTION
    r = rewards.float()
    groups = r.view(-1, group_size)  # [n_groups, G]
    mean = groups.mean(dim=1, keepdim=True)
    if baseline == "mean":
        adv = groups - mean
    else:  # leave one out: the mean of the other G - 1 samples
        adv = groups - (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)
    if scale == "group":
        adv = adv / (groups.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        adv = adv / (r.std() + eps)
    return adv.reshape(-1)
    # END SOLUTION
