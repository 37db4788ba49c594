"""Log-probabilities and sampling for causal LMs: what every policy-gradient method on text needs.

A causal LM :math:`\\pi_\\theta` factorises the probability of a response :math:`y` to a prompt :math:`x` over its
tokens (the token-level MDP of :mod:`rl4llm.envs.token_mdp`: each token is an action taken in the state "prefix"):

.. math::  \\log \\pi_\\theta(y \\mid x) = \\sum_{t=1}^{|y|} \\log \\pi_\\theta(y_t \\mid x, y_{<t}).

Batches of prompts of different lengths are padded. For generation the padding goes on the **left**, so that
every row's next token is appended at the same column; the position ids then count real tokens only
(:math:`p_t = \\sum_{s \\le t} m_s - 1` for attention mask :math:`m`), so a left-padded row sees exactly the positions
it would see alone. :func:`sample` does this (re-padding any input), with a temperature, a ``torch.Generator``
for reproducibility, a KV cache, and per-row stopping at the end-of-sequence token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rl4llm.utils import check_positive_int, check_range

__all__ = [
    "position_ids_from_mask",
    "token_logprobs",
    "sequence_logprobs",
    "left_pad",
    "Samples",
    "sample",
    "generate_texts",
]


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count real tokens only: ``cumsum(mask) - 1``, clamped at 0 on padding. ``[B, T] -> [B, T]``."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _check_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    if attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
            f"got {tuple(attention_mask.shape)}"
        )


def token_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Per-token log-probabilities :math:`\\log \\pi(x_t \\mid x_{<t})`, ``[B, T]``.

    Column ``t`` scores token ``input_ids[:, t]`` given the tokens before it; each row's first real token
    (nothing to condition on) and padding positions (``attention_mask == 0``) are 0. Works with left or right padding (position ids are
    computed from the mask). Gradients flow (call it under ``torch.no_grad()`` for old / reference log-probs).
    """
    _check_batch(input_ids, attention_mask)
    # BEGIN SOLUTION
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # logits at t predict token t+1
    picked = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    has_context = attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()  # real token after a real token
    picked = torch.where(has_context, picked, torch.zeros_like(picked))
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1)
    # END SOLUTION


def sequence_logprobs(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """Summed log-probabilities of the response tokens, ``[B]``.

    .. math::  \\log \\pi(y \\mid x) = \\sum_t \\text{response\\_mask}_t \\, \\log \\pi(\\text{input\\_ids}_t \\mid
               \\text{input\\_ids}_{<t})

    ``input_ids`` holds prompt + response (any padding), ``attention_mask`` marks real tokens and
    ``response_mask`` (same shape) the tokens to score, usually the generated ones including ``<eos>``. The first
    column cannot be scored (no context), so ``response_mask[:, 0]`` must be 0. Used by DPO (chosen / rejected
    log-probs) and by PPO for language models.
    """
    _check_batch(input_ids, attention_mask)
    if response_mask.shape != input_ids.shape:
        raise ValueError(
            f"response_mask must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(response_mask.shape)}"
        )
    if bool(response_mask[:, 0].any()):
        raise ValueError("response_mask[:, 0] must be 0: the first token has no context to be scored in")
    # BEGIN SOLUTION
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    keep = response_mask[:, 1:].bool() & attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()
    return torch.where(keep, picked, torch.zeros_like(picked)).sum(-1)
    # END SOLUTION


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad lists of token ids into ``(input_ids, attention_mask)``, both ``[B, max_len]`` (int64)."""
    if len(sequences) == 0:
        raise ValueError("sequences must not be empty")
    if any(len(s) == 0 for s in sequences):
        raise ValueError("every sequence needs at least one token (e.g. <bos>)")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), int(pad_token_id), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, width - len(s) :] = 1
    return ids, mask


@dataclass
class Samples:
    """A batch of prompts and sampled responses, ready for :func:`sequence_logprobs`.

    Attributes:
        input_ids: ``[B, P + N]``: left-padded prompts (width ``P``), then the responses, padded on the right
            after their end-of-sequence token.
        attention_mask: ``[B, P + N]``: 1 on real tokens (prompt and response).
        response_mask: ``[B, P + N]``: 1 on generated tokens (the end-of-sequence token included).
        prompt_length: ``P``, the padded prompt width; responses are ``input_ids[:, P:]``.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    prompt_length: int

    @property
    def responses(self) -> list[list[int]]:
        """The generated token ids of each row (without padding)."""
        out = []
        for ids, m in zip(self.input_ids[:, self.prompt_length :], self.response_mask[:, self.prompt_length :]):
            out.append(ids[m.bool()].tolist())
        return out


def _config_id(model, name: str) -> int | None:
    value = getattr(model.config, name, None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value


def _multinomial(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``probs`` ``[B, V]``, drawn with ``generator`` on the generator's own device (torch
    requires the two on one device), returned on ``probs``' device."""
    if generator is None or generator.device == probs.device:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return torch.multinomial(probs.to(generator.device), 1, generator=generator).squeeze(-1).to(probs.device)


@torch.no_grad()
def sample(
    model,
    input_ids: torch.Tensor | Sequence[Sequence[int]],
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    top_k: int | None = None,
) -> Samples:
    """Sample responses to a batch of prompts, token by token, with a KV cache.

    At each step the next token of every unfinished row is drawn from
    :math:`\\mathrm{softmax}(z / \\tau)` (logits :math:`z`, temperature :math:`\\tau`; :math:`\\tau = 0` is greedy, and
    ``top_k`` keeps only the ``k`` largest logits); a row stops after emitting ``eos_token_id`` (default: the
    model config's), and generation stops when every row has stopped or after ``max_new_tokens``.

    Args:
        model: a causal LM (e.g. ``GPT2LMHeadModel``); put it in eval mode for deterministic sampling.
        input_ids: prompts as a ``[B, T]`` tensor (with ``attention_mask``, left or right padded) or a list of
            token-id lists. Prompts are re-padded on the left.
        generator: a ``torch.Generator`` (seeded) for reproducible samples; ``None`` uses the global generator.
            A generator on another device than the model (a CPU generator with a model on a GPU) draws the tokens
            on its own device, from the same probabilities moved there.
    """
    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens, 1)
    temperature = check_range("temperature", temperature, 0.0, None)
    if top_k is not None:
        top_k = check_positive_int("top_k", top_k, 1)
    eos = _config_id(model, "eos_token_id") if eos_token_id is None else int(eos_token_id)
    pad = pad_token_id if pad_token_id is not None else _config_id(model, "pad_token_id")
    pad = eos if pad is None else int(pad)
    if pad is None:
        raise ValueError("pad_token_id is needed (the model config has no pad or eos token id)")
    device = next(model.parameters()).device
    if isinstance(input_ids, torch.Tensor):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        _check_batch(input_ids, attention_mask)
        rows = [ids[m.bool()].tolist() for ids, m in zip(input_ids.cpu(), attention_mask.cpu())]
    else:
        rows = [list(map(int, r)) for r in input_ids]
    ids, mask = left_pad(rows, pad)
    ids, mask = ids.to(device), mask.to(device)
    batch, prompt_len = ids.shape
    positions = position_ids_from_mask(mask)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    new_tokens, new_real = [], []
    past = None
    step_ids, step_pos = ids, positions
    for _ in range(max_new_tokens):
        out = model(
            input_ids=step_ids, attention_mask=mask, position_ids=step_pos, past_key_values=past, use_cache=True
        )
        past = out.past_key_values
        logits = out.logits[:, -1, :].float()
        if top_k is not None and top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if temperature == 0.0:
            token = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            token = _multinomial(probs, generator)
        token = torch.where(done, torch.full_like(token, pad), token)
        new_tokens.append(token)
        new_real.append(~done)
        if eos is not None:
            done = done | (token == eos)
        mask = torch.cat([mask, new_real[-1].long().unsqueeze(-1)], dim=1)  # the new token is real if the row ran
        step_ids = token.unsqueeze(-1)
        step_pos = step_pos[:, -1:] + 1
        if bool(done.all()):
            break
    gen = torch.stack(new_tokens, dim=1)
    real = torch.stack(new_real, dim=1).long()
    input_ids_out = torch.cat([ids, gen], dim=1)
    attention_out = torch.cat([mask[:, :prompt_len], real], dim=1)
    response_mask = torch.cat([torch.zeros_like(ids), real], dim=1)
    return Samples(
        input_ids=input_ids_out, attention_mask=attention_out, response_mask=response_mask, prompt_length=prompt_len
    )


def generate_texts(
    model,
    tokenizer,
    n: int,
    prompt: str = "",
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
) -> list[str]:
    """``n`` sampled continuations of ``prompt`` (the generated words only), decoded with ``<eos>`` kept.

    Reproducible: the samples come from a ``torch.Generator`` seeded with ``seed``.
    """
    n = check_positive_int("n", n, 1)
    batch_size = check_positive_int("batch_size", batch_size, 1)
    prompt_ids = tokenizer(prompt)["input_ids"]
    gen = torch.Generator().manual_seed(check_positive_int("seed", seed, 0))
    texts: list[str] = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        s = sample(
            model,
            [prompt_ids] * b,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            generator=gen,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        for r in s.responses:
            words = [
                w for w in tokenizer.convert_ids_to_tokens(r) if w not in (tokenizer.bos_token, tokenizer.pad_token)
            ]
            texts.append(" ".join(words))
    return texts
