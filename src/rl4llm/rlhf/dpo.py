"""Direct preference optimisation: RLHF's objective without a reward model or sampling (chapter 5, section 5).

The KL-regularised RLHF objective
:math:`\\max_\\pi \\mathbb E_\\pi[r] - \\beta\\,\\mathrm{KL}(\\pi\\|\\pi_{ref})` has the
closed-form optimum :math:`\\pi^*(y) = \\pi_{ref}(y)\\,e^{r(y)/\\beta} / Z`. Inverting it, every policy defines an
*implicit reward* :math:`\\hat r(y) = \\beta \\log \\pi(y)/\\pi_{ref}(y)` (up to the constant :math:`\\beta\\log Z`,
which cancels in a Bradley-Terry comparison), so fitting preferences with :func:`rl4llm.rlhf.dpo_loss` trains the
policy directly (Rafailov et al. 2023). The data are the same preference pairs the reward model was fitted to.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

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
    runtime: Any = None,
) -> DPOLog:
    """Train ``policy`` in place with :func:`rl4llm.rlhf.dpo_loss` on preference pairs; the reference stays frozen.

    Each step draws ``batch_size`` pairs and minimises
    :math:`-\\mathrm{mean}\\log\\sigma(\\beta[(\\log\\pi(y_c) - \\log\\pi_{ref}(y_c)) - (\\log\\pi(y_r) -
    \\log\\pi_{ref}(y_r))])` with Adam (gradient norm clipped at 1). The reference log-probs are computed once.
    ``callback(step, policy)`` (optional) runs every ``log_every`` steps.

    ``runtime`` (:func:`rl4llm.distributed.make_runtime`; ``None``: one CPU process, float32) runs forward passes
    under its autocast and, across ``W`` processes, splits each step's pairs: every rank draws the same
    ``batch_size`` indices and scores its block of ``batch_size / W`` of them (:meth:`Runtime.local_rows`), weighs
    its mean loss by ``1 / W`` and sums the gradients over ranks, so the step is the one-process step on all
    ``batch_size`` pairs; the logged loss, accuracy and margin are those of all of them. The pairs and both
    models must be on ``runtime.device``; every rank holds all pairs.
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
    autocast = contextlib.nullcontext if runtime is None else runtime.autocast
    with torch.no_grad(), autocast():
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
    mine = slice(None) if runtime is None else runtime.local_rows(batch_size)
    order, pos = rng.permutation(n), 0
    for step in progress(range(1, steps + 1), desc="DPO"):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = torch.as_tensor(order[pos : pos + batch_size])
        pos += batch_size
        idx = idx[mine]  # this rank's block of the step's pairs (all of them on one process)
        with autocast():
            pi_c = sequence_logprob(policy, chosen.index(idx))
            pi_r = sequence_logprob(policy, rejected.index(idx))
        loss = dpo_loss(pi_c, pi_r, ref_c[idx], ref_r[idx], beta)
        opt.zero_grad()
        if runtime is None:
            loss.backward()
        else:  # each rank's mean over its pairs weighs 1 / W in the mean over all pairs
            runtime.backward(loss * runtime.token_share(len(idx)), policy)
        nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        if step % log_every == 0 or step == steps:
            with torch.no_grad():
                margin = beta * ((pi_c - ref_c[idx]) - (pi_r - ref_r[idx]))
            log.step.append(step)
            if runtime is None:
                log.loss.append(loss.item())
                log.reward_accuracy.append(float((margin > 0).float().mean()))
                log.margin.append(float(margin.mean()))
            else:  # over all ranks' pairs
                sums = torch.stack(
                    [loss.detach().double() * len(idx), (margin > 0).double().sum(), margin.double().sum()]
                )
                total_loss, n_right, margin_sum = (float(v) / batch_size for v in runtime.sum(sums))
                log.loss.append(total_loss)
                log.reward_accuracy.append(n_right)
                log.margin.append(margin_sum)
            if callback is not None:
                callback(step, policy)
    return log
