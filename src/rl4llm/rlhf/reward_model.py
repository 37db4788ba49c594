"""The reward model: a GPT-2 backbone with a scalar head, fitted to preferences (chapter 5, section 1).

:math:`r_\\phi(y) = w^\\top h_L(y) + b`, where :math:`h_L(y)` is the backbone's last hidden state at the last
non-padding token of the response (its ``<eos>`` when the response finished), so the score has read the whole
text. It is trained with the Bradley-Terry loss (:func:`rl4llm.rlhf.bradley_terry_loss`) on pairs
(chosen, rejected),

.. math:: \\mathcal L(\\phi) = -\\mathbb E\\,\\log\\sigma\\big(r_\\phi(y_c) - r_\\phi(y_r)\\big),

which identifies only reward *differences*; :meth:`RewardModel.set_normalisation` fixes the offset and the scale
so that the SFT policy's samples score mean 0 and standard deviation 1 ("proxy reward in SFT standard
deviations"). The PPO critic (:class:`ValueModel`) has the same architecture with the head read at every token.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rl4llm.rlhf.losses import bradley_terry_loss
from rl4llm.rlhf.rollout import SequenceBatch
from rl4llm.utils import check_positive_int, check_range, progress

__all__ = ["RewardModel", "ValueModel", "RMTrainLog", "train_reward_model", "preference_accuracy", "last_token_index"]


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last attended position of each right-padded row, ``[B]`` (``ValueError`` if a row is empty)."""
    lengths = attention_mask.sum(1).long()
    if bool((lengths == 0).any()):
        raise ValueError("every row of attention_mask needs at least one real token")
    return lengths - 1


class RewardModel(nn.Module):
    """GPT-2 backbone (a ``GPT2Model``) + a linear scalar head read at the last non-padding token.

    ``forward`` returns normalised scores :math:`(r_\\phi(y) - \\text{offset}) / \\text{scale}`; ``raw`` the head's
    output before normalisation (what the Bradley-Terry loss trains).
    """

    def __init__(self, backbone: nn.Module, hidden_size: int) -> None:
        super().__init__()
        hidden_size = check_positive_int("hidden_size", hidden_size)
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, 1)
        nn.init.normal_(self.head.weight, std=1.0 / (hidden_size + 1) ** 0.5)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("offset", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    @classmethod
    def from_lm(cls, lm_model: nn.Module) -> RewardModel:
        """A reward model whose backbone is a copy of a causal LM's transformer (its LM head is dropped).

        The copy is trainable whatever the source's ``requires_grad`` flags were.
        """
        backbone = copy.deepcopy(lm_model.transformer)
        for p in backbone.parameters():
            p.requires_grad_(True)
        return cls(backbone, lm_model.config.n_embd)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The backbone's last hidden states ``[B, T, H]`` (right-padded rows, so default positions are right)."""
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def raw(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores ``[B]``: the head at each row's last real token."""
        hidden = self.hidden(input_ids, attention_mask)
        idx = last_token_index(attention_mask)
        last = hidden[torch.arange(hidden.shape[0]), idx]
        return self.head(last).squeeze(-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Normalised scores ``[B]``: :math:`(r_\\phi - \\text{offset}) / \\text{scale}`."""
        return (self.raw(input_ids, attention_mask) - self.offset) / self.scale

    @torch.no_grad()
    def score(self, batch: SequenceBatch, batch_size: int = 256) -> torch.Tensor:
        """Normalised scores of a :class:`SequenceBatch`, without gradients, in chunks of ``batch_size``."""
        batch_size = check_positive_int("batch_size", batch_size)
        return torch.cat(
            [
                self(b.input_ids, b.attention_mask)
                for b in (batch.index(slice(i, i + batch_size)) for i in range(0, len(batch), batch_size))
            ]
        )

    @torch.no_grad()
    def set_normalisation(self, batch: SequenceBatch) -> None:
        """Set offset and scale so that the scores of ``batch`` (e.g. SFT samples) have mean 0 and std 1."""
        if len(batch) < 2:
            raise ValueError(f"need at least 2 sequences to normalise, got {len(batch)}")
        self.offset.zero_()
        self.scale.fill_(1.0)
        s = self.score(batch)
        self.offset.fill_(float(s.mean()))
        self.scale.fill_(max(float(s.std()), 1e-6))


class ValueModel(RewardModel):
    """The PPO critic: the reward model's architecture with the head read at every state.

    ``values(batch)[:, t]`` estimates :math:`V(s_t)`, the value of the prefix ``input_ids[:, :t + 1]`` *before*
    action ``t`` (aligned with the actions, ``[B, T]``; 0 on padding).
    """

    @classmethod
    def from_reward_model(cls, rm: RewardModel) -> ValueModel:
        """A critic initialised from a reward model (as in InstructGPT), with its normalisation folded in.

        At initialisation :math:`V(s_t)` is then the reward model's normalised score of the prefix, a sensible
        first guess of the final reward.
        """
        critic = cls(copy.deepcopy(rm.backbone), rm.head.in_features)
        with torch.no_grad():
            critic.head.weight.copy_(rm.head.weight / rm.scale)
            critic.head.bias.copy_((rm.head.bias - rm.offset) / rm.scale)
        for p in critic.parameters():
            p.requires_grad_(True)
        return critic

    def values(self, batch: SequenceBatch) -> torch.Tensor:
        hidden = self.hidden(batch.input_ids, batch.attention_mask)
        return self.head(hidden[:, :-1, :]).squeeze(-1) * batch.response_mask


@dataclass
class RMTrainLog:
    """Training curve of the reward model: loss and accuracy on the training minibatches."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)


def preference_accuracy(rm: RewardModel, chosen: SequenceBatch, rejected: SequenceBatch) -> float:
    """Fraction of pairs in which the reward model scores the chosen response strictly higher."""
    if len(chosen) != len(rejected) or len(chosen) == 0:
        raise ValueError("chosen and rejected must hold the same, non-zero number of pairs")
    return float((rm.score(chosen) > rm.score(rejected)).float().mean())


def train_reward_model(
    rm: RewardModel,
    chosen: SequenceBatch,
    rejected: SequenceBatch,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-4,
    weight_decay: float = 0.0,
    seed: int = 0,
    log_every: int = 10,
) -> RMTrainLog:
    """Fit ``rm`` in place with the Bradley-Terry loss on minibatches of preference pairs (AdamW).

    Each step draws ``batch_size`` pairs (epochs over a fixed permutation per ``seed``) and minimises
    :math:`-\\mathrm{mean}\\log\\sigma(r_\\phi(y_c) - r_\\phi(y_r))` on the raw scores.
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    weight_decay = check_range("weight_decay", weight_decay, 0.0, None)
    log_every = check_positive_int("log_every", log_every)
    if len(chosen) != len(rejected) or len(chosen) == 0:
        raise ValueError("chosen and rejected must hold the same, non-zero number of pairs")
    rng = np.random.default_rng(check_positive_int("seed", seed, 0))
    opt = torch.optim.AdamW(rm.parameters(), lr=lr, weight_decay=weight_decay)
    log = RMTrainLog()
    n = len(chosen)
    batch_size = min(batch_size, n)
    order, pos = rng.permutation(n), 0
    for step in progress(range(1, steps + 1), desc="reward model"):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = torch.as_tensor(order[pos : pos + batch_size])
        pos += batch_size
        c, r = chosen.index(idx), rejected.index(idx)
        rc = rm.raw(c.input_ids, c.attention_mask)
        rr = rm.raw(r.input_ids, r.attention_mask)
        loss = bradley_terry_loss(rc, rr)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(rm.parameters(), 1.0)
        opt.step()
        if step % log_every == 0 or step == steps:
            log.step.append(step)
            log.loss.append(loss.item())
            log.train_accuracy.append(float((rc > rr).float().mean()))
    return log
