"""Direct preference optimisation: RLHF's objective without a reward model or sampling (chapter 5, section 5).

The KL-regularised RLHF objective
:math:`\\max_\\pi \\mathbb E_\\pi[r] - \\beta\\,\\mathrm{KL}(\\pi\\|\\pi_{ref})` has the
closed-form optimum :math:`\\pi^*(y) = \\pi_{ref}(y)\\,e^{r(y)/\\beta} / Z`. Inverting it, every policy defines an
*implicit reward* :math:`\\hat r(y) = \\beta \\log \\pi(y)/\\pi_{ref}(y)` (up to the constant :math:`\\beta\\log Z`,
which cancels in a Bradley-Terry comparison), so fitting preferences with :func:`rl4llm.rlhf.dpo_loss` trains the
policy directly (Rafailov et al. 2023). The data are the same preference pairs the reward model was fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rl4llm.rlhf.losses import dpo_loss
from rl4llm.rlhf.rollout import SequenceBatch, sequence_logprob
from rl4llm.utils import check_positive_int, check_range, progress

__all__ = ["DPOLog", "train_dpo"]


@dataclass
class DPOLog:
    """Training curve of DPO on the minibatches: loss, implicit-reward accuracy and margin."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    reward_accuracy: list[float] = field(default_factory=list)  # implicit reward ranks chosen above rejected
    margin: list[float] = field(default_factory=list)  # mean implicit reward margin


def train_dpo(
    policy: nn.Module,
    ref_model: nn.Module,
    chosen: SequenceBatch,
    rejected: SequenceBatch,
    *,
    beta: float,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 0,
    log_every: int = 10,
    callback=None,
) -> DPOLog:
    """Train ``policy`` in place with :func:`rl4llm.rlhf.dpo_loss` on preference pairs; the reference stays frozen.

    Each step draws ``batch_size`` pairs and minimises
    :math:`-\\mathrm{mean}\\log\\sigma(\\beta[(\\log\\pi(y_c) - \\log\\pi_{ref}(y_c)) - (\\log\\pi(y_r) -
    \\log\\pi_{ref}(y_r))])` with Adam (gradient norm clipped at 1). The reference log-probs are computed once.
    ``callback(step, policy)`` (optional) runs every ``log_every`` steps.
    """
    beta = check_range("beta", beta, 0.0, None, low_inclusive=False)
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    log_every = check_positive_int("log_every", log_every)
    seed = check_positive_int("seed", seed, 0)
    if len(chosen) != len(rejected) or len(chosen) == 0:
        raise ValueError("chosen and rejected must hold the same, non-zero number of pairs")
    policy.eval()
    ref_model.eval()
    with torch.no_grad():
        ref_c = torch.cat(
            [sequence_logprob(ref_model, chosen.index(slice(i, i + 256))) for i in range(0, len(chosen), 256)]
        )
        ref_r = torch.cat(
            [sequence_logprob(ref_model, rejected.index(slice(i, i + 256))) for i in range(0, len(rejected), 256)]
        )
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    log = DPOLog()
    n = len(chosen)
    batch_size = min(batch_size, n)
    order, pos = rng.permutation(n), 0
    for step in progress(range(1, steps + 1), desc="DPO"):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = torch.as_tensor(order[pos : pos + batch_size])
        pos += batch_size
        pi_c = sequence_logprob(policy, chosen.index(idx))
        pi_r = sequence_logprob(policy, rejected.index(idx))
        loss = dpo_loss(pi_c, pi_r, ref_c[idx], ref_r[idx], beta)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        if step % log_every == 0 or step == steps:
            with torch.no_grad():
                margin = beta * ((pi_c - ref_c[idx]) - (pi_r - ref_r[idx]))
            log.step.append(step)
            log.loss.append(loss.item())
            log.reward_accuracy.append(float((margin > 0).float().mean()))
            log.margin.append(float(margin.mean()))
            if callback is not None:
                callback(step, policy)
    return log
