"""Step 1 of InstructGPT: supervised fine-tuning on demonstrations (chapter 5, section 1).

Behaviour cloning of the demonstrator at the token level: maximise the log-likelihood of the demonstrations,

.. math::
    \\mathcal L_{SFT}(\\theta) = -\\frac{1}{\\sum_i |y^i|} \\sum_i \\sum_t \\log\\pi_\\theta(y^i_t \\mid y^i_{<t}),

i.e. next-token cross-entropy on the demonstrators' own prefixes. The learner never sees its own mistakes (the
compounding-error story of chapter 3). In the book the demonstrations are sampled from the grammar at a raised
``positivity``: a "preferred" distribution standing in for the answers that labellers write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rl4llm.rlhf.rollout import SequenceBatch, response_logprobs
from rl4llm.utils import check_positive_int, check_range, progress

__all__ = ["SFTLog", "sft_loss", "train_sft"]


@dataclass
class SFTLog:
    """Training curve of SFT: mean next-token loss of each logged minibatch."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)


def sft_loss(model: nn.Module, batch: SequenceBatch) -> torch.Tensor:
    """Mean negative log-likelihood per response token (the formula in the module docstring)."""
    logp = response_logprobs(model, batch)
    return -(logp.sum() / batch.response_mask.sum().clamp_min(1.0))


def train_sft(
    model: nn.Module,
    demos: SequenceBatch,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-4,
    seed: int = 0,
    log_every: int = 10,
    callback=None,
) -> SFTLog:
    """Fine-tune ``model`` in place on the demonstrations with AdamW; return the loss curve.

    Minibatches of ``batch_size`` demonstrations are drawn in epochs over a permutation fixed by ``seed``.
    ``callback(step, model)`` (optional) runs every ``log_every`` steps, e.g. to evaluate the policy.
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    log_every = check_positive_int("log_every", log_every)
    if len(demos) == 0:
        raise ValueError("demos must hold at least one demonstration")
    rng = np.random.default_rng(check_positive_int("seed", seed, 0))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    log = SFTLog()
    n = len(demos)
    batch_size = min(batch_size, n)
    order, pos = rng.permutation(n), 0
    for step in progress(range(1, steps + 1), desc="SFT"):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        batch = demos.index(torch.as_tensor(order[pos : pos + batch_size]))
        pos += batch_size
        loss = sft_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % log_every == 0 or step == steps:
            log.step.append(step)
            log.loss.append(loss.item())
            if callback is not None:
                callback(step, model)
    return log
