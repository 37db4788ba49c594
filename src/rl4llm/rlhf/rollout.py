"""Responses of the tiny LM as RL episodes: a thin adapter over :mod:`rl4llm.lm.generation` (chapter 5).

In this chapter every response is generated from the ``<bos>`` token alone (the review language has no prompts),
so a batch needs no left padding: :func:`rl4llm.lm.sample` with one-token prompts returns right-padded rows, and
this module only re-slices them so that per-token quantities line up with the *actions* of the token MDP:

* ``input_ids[:, 0]`` is ``<bos>``; columns ``1..T`` hold the response, ending with ``<eos>`` if it stopped;
* ``attention_mask`` is 1 up to and including the last response token, 0 on padding;
* ``response_mask`` is ``attention_mask[:, 1:]``: one column per action.

Per-token quantities (log-probs, values, rewards, advantages) are ``[B, T]``: column ``t`` is about token
``input_ids[:, t + 1]`` given the prefix ``input_ids[:, :t + 1]``. Summing a policy's per-token log-probs over
``response_mask`` gives :math:`\\log\\pi(y) = \\sum_t \\log\\pi(y_t \\mid y_{<t})`, the number
:func:`rl4llm.lm.sequence_logprobs` returns.

Decoding keeps ``<eos>``: the gold reward reads it (a text without it is unfinished and pays the penalty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rl4llm.lm.generation import sample as lm_sample
from rl4llm.lm.generation import sequence_logprobs as lm_sequence_logprobs
from rl4llm.lm.generation import token_logprobs as lm_token_logprobs
from rl4llm.lm.policies import from_model_text, to_model_text
from rl4llm.utils import check_positive_int, check_range

__all__ = [
    "SequenceBatch",
    "sample_sequences",
    "sample_prompted_sequences",
    "response_logprobs",
    "sequence_logprob",
    "encode_texts",
    "decode_texts",
    "special_ids",
]


@dataclass
class SequenceBatch:
    """A right-padded batch of ``<bos>`` + response sequences (see the module docstring)."""

    input_ids: torch.Tensor  # [B, T + 1] int64
    attention_mask: torch.Tensor  # [B, T + 1] int64
    response_mask: torch.Tensor  # [B, T] float (1 on the response tokens)

    def __post_init__(self) -> None:
        if self.input_ids.ndim != 2 or self.attention_mask.shape != self.input_ids.shape:
            raise ValueError(
                f"input_ids and attention_mask must both be [B, T + 1], got "
                f"{tuple(self.input_ids.shape)} and {tuple(self.attention_mask.shape)}"
            )
        if self.response_mask.shape != (self.input_ids.shape[0], self.input_ids.shape[1] - 1):
            raise ValueError(
                f"response_mask must be [B, T] = {(self.input_ids.shape[0], self.input_ids.shape[1] - 1)}"
                f", got {tuple(self.response_mask.shape)}"
            )

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def lengths(self) -> torch.Tensor:
        """Number of response tokens of each sequence, ``[B]``."""
        return self.response_mask.sum(1).long()

    def to(self, device: torch.device | str) -> SequenceBatch:
        """The batch on ``device`` (the same object when it is there already)."""
        if self.input_ids.device == torch.device(device):
            return self
        return SequenceBatch(self.input_ids.to(device), self.attention_mask.to(device), self.response_mask.to(device))

    def index(self, idx: torch.Tensor | slice) -> SequenceBatch:
        """The sub-batch ``idx`` (rows)."""
        return SequenceBatch(self.input_ids[idx], self.attention_mask[idx], self.response_mask[idx])

    @staticmethod
    def cat(batches: Sequence[SequenceBatch], pad_id: int) -> SequenceBatch:
        """Concatenate batches along rows, right-padding to the longest."""
        if len(batches) == 0:
            raise ValueError("batches must not be empty")
        width = max(b.input_ids.shape[1] for b in batches)
        ids, att = [], []
        for b in batches:
            extra = width - b.input_ids.shape[1]
            ids.append(F.pad(b.input_ids, (0, extra), value=pad_id))
            att.append(F.pad(b.attention_mask, (0, extra), value=0))
        input_ids, attention_mask = torch.cat(ids), torch.cat(att)
        return SequenceBatch(input_ids, attention_mask, attention_mask[:, 1:].float())

    @staticmethod
    def select(take_a: torch.Tensor, a: SequenceBatch, b: SequenceBatch, pad_id: int) -> SequenceBatch:
        """Row ``i`` from ``a`` where ``take_a[i]`` else from ``b`` (padded to a common width)."""
        if len(a) != len(b) or take_a.shape != (len(a),):
            raise ValueError("take_a, a and b must have the same number of rows")
        both = SequenceBatch.cat([a, b], pad_id)
        a, b = both.index(slice(0, len(take_a))), both.index(slice(len(take_a), None))
        t = take_a.bool()[:, None]
        return SequenceBatch(
            torch.where(t, a.input_ids, b.input_ids),
            torch.where(t, a.attention_mask, b.attention_mask),
            torch.where(t, a.response_mask, b.response_mask),
        )


def special_ids(tokenizer) -> tuple[int, int, int]:
    """``(bos, eos, pad)`` token ids of a tokenizer (``ValueError`` if one is missing)."""
    out = []
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        v = getattr(tokenizer, name, None)
        if v is None:
            raise ValueError(f"the tokenizer needs a {name.replace('_id', '')}")
        out.append(int(v))
    return out[0], out[1], out[2]


def sample_sequences(
    model,
    n: int,
    max_new_tokens: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> SequenceBatch:
    """Sample ``n`` responses from ``<bos>`` with :func:`rl4llm.lm.sample` (ancestral sampling, KV cache).

    :math:`y_t \\sim \\mathrm{softmax}(z_t / \\tau)`; a response stops after ``<eos>`` (later columns are padding)
    or after ``max_new_tokens`` tokens (then it is unfinished).
    """
    n = check_positive_int("n", n)
    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    temperature = check_range("temperature", temperature, 0.0, None, low_inclusive=False)
    s = lm_sample(
        model,
        [[int(bos_id)]] * n,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        generator=generator,
        eos_token_id=int(eos_id),
        pad_token_id=int(pad_id),
    )
    # one-token prompts: no left padding, so the rows are <bos> + response, right-padded
    return SequenceBatch(s.input_ids, s.attention_mask, s.response_mask[:, 1:].float())


def sample_prompted_sequences(
    model,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> tuple[SequenceBatch, int]:
    """Sample one response per prompt (token-id lists starting with ``<bos>``); return ``(batch, start)``.

    :func:`rl4llm.lm.sample` left-pads the prompts to a common width ``P``, so every response starts at column
    ``P`` of ``input_ids`` and at column ``start = P - 1`` of the per-action tensors (``response_mask`` and the
    log-probs of :func:`response_logprobs`), which are 0 on the prompt's columns.
    """
    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    temperature = check_range("temperature", temperature, 0.0, None, low_inclusive=False)
    if len(prompts) == 0:
        raise ValueError("prompts must not be empty")
    s = lm_sample(
        model,
        [list(p) for p in prompts],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        generator=generator,
        eos_token_id=int(eos_id),
        pad_token_id=int(pad_id),
    )
    return SequenceBatch(s.input_ids, s.attention_mask, s.response_mask[:, 1:].float()), s.prompt_length - 1


def response_logprobs(model, batch: SequenceBatch) -> torch.Tensor:
    """Per-action log-probs ``[B, T]``: column ``t`` is :math:`\\log\\pi(y_{t+1} \\mid y_{\\le t})`, 0 on padding.

    :func:`rl4llm.lm.token_logprobs` without its first (unscorable ``<bos>``) column. Gradients flow.
    """
    return lm_token_logprobs(model, batch.input_ids, batch.attention_mask)[:, 1:] * batch.response_mask


def sequence_logprob(model, batch: SequenceBatch) -> torch.Tensor:
    """:math:`\\log\\pi(y) = \\sum_t \\log\\pi(y_t\\mid y_{<t})` of each response, ``[B]`` (gradients flow)."""
    response_mask = F.pad(batch.response_mask, (1, 0), value=0.0)
    return lm_sequence_logprobs(model, batch.input_ids, batch.attention_mask, response_mask)


def encode_texts(tokenizer, texts: Sequence[str], max_new_tokens: int) -> SequenceBatch:
    """Encode texts as ``<bos>`` + their words, truncated to ``max_new_tokens`` response tokens.

    Texts of the language end with the word ``<eos>``, which is kept (as the tokenizer's end-of-sequence token,
    :func:`rl4llm.lm.policies.to_model_text`); no ``<eos>`` is added to a text without one (it stays unfinished, as
    the gold reward would judge it).
    """
    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    if len(texts) == 0:
        raise ValueError("texts must not be empty")
    bos, eos, pad = special_ids(tokenizer)
    drop = {bos, pad} - {eos}  # GPT-2: bos = pad = eos, and the eos ends the response
    rows = []
    for text in texts:
        words = tokenizer(to_model_text(tokenizer, text), add_special_tokens=False)["input_ids"]
        words = [w for w in words if w not in drop]
        if not words:
            raise ValueError(f"cannot encode an empty response: {text!r}")
        rows.append([bos] + words[:max_new_tokens])
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        att[i, : len(r)] = 1
    return SequenceBatch(ids, att, att[:, 1:].float())


def decode_texts(tokenizer, batch: SequenceBatch) -> list[str]:
    """The responses as text, one word per token, **with** ``<eos>`` (padding and ``<bos>`` dropped).

    ``gold_reward(decode_texts(tok, batch)[i])`` is then the true score of response ``i``: the gold reward needs
    the ``<eos>`` to know that a review is finished. With a BPE tokenizer (GPT-2's) the text is decoded bytes and
    the tokenizer's end-of-sequence token reads as ``<eos>`` (:func:`rl4llm.lm.policies.from_model_text`): the gold
    reward only ever sees text.
    """
    out = []
    for ids, mask in zip(batch.input_ids[:, 1:], batch.response_mask, strict=True):
        text = tokenizer.decode(ids[mask.bool()].tolist(), skip_special_tokens=False)
        out.append(from_model_text(tokenizer, text))
    return out
