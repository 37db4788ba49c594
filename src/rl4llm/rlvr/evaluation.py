"""Sampling completions of the reasoning task's prompts and scoring them: pass@1, pass@k, lengths (chapter 7).

Every prompt has the same length (:func:`rl4llm.rlvr.task.prompt_text`), so a batch of prompts needs no padding;
:func:`rl4llm.lm.sample` appends the completions (right-padded after ``<eos>``) and :func:`completion_logprobs`
scores them with :func:`rl4llm.lm.token_logprobs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rl4llm.lm.generation import Samples, sample, token_logprobs
from rl4llm.prompting.task import Query
from rl4llm.prompting.tokenizer import CharTokenizer
from rl4llm.rlvr.metrics import pass_at_k
from rl4llm.rlvr.task import held_out_problems, prompt_text, verify
from rl4llm.utils import check_positive_int, check_range

__all__ = ["MAX_NEW_TOKENS", "Completions", "sample_completions", "completion_logprobs", "evaluate_pass_at_k"]

#: Enough for the longest worked solution (restated problem, two steps, answer) and ``<eos>``, with room to ramble.
MAX_NEW_TOKENS = 32


@dataclass
class Completions:
    """Sampled completions of a list of problems (row ``i`` answers ``problems[i]``).

    ``samples.input_ids[:, :prompt_length]`` are the prompts; ``logp_mask`` ``[B, N]`` marks the completion tokens
    (``<eos>`` included) in the columns ``prompt_length ..``; ``texts`` are the decoded completions.
    """

    problems: list[Query]
    samples: Samples
    texts: list[str]

    @property
    def mask(self) -> torch.Tensor:
        """``[B, N]`` float: 1 on completion tokens (columns after the prompt)."""
        return self.samples.response_mask[:, self.samples.prompt_length :].float()

    def index(self, idx: torch.Tensor) -> "Completions":
        """The completions of rows ``idx`` (a 1-D tensor of row numbers)."""
        s = self.samples
        rows = [int(i) for i in idx]
        return Completions(
            [self.problems[i] for i in rows],
            Samples(s.input_ids[idx], s.attention_mask[idx], s.response_mask[idx], s.prompt_length),
            [self.texts[i] for i in rows],
        )

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per completion, ``<eos>`` included."""
        return self.mask.sum(1).cpu().numpy()


def sample_completions(
    model,
    tokenizer: CharTokenizer,
    problems: Sequence[Query],
    *,
    temperature: float = 1.0,
    max_new_tokens: int = MAX_NEW_TOKENS,
    generator: torch.Generator | None = None,
) -> Completions:
    """One completion per entry of ``problems`` (repeat a problem to sample a group), in one batch."""
    if len(problems) == 0:
        raise ValueError("problems must not be empty")
    check_range("temperature", temperature, 0.0, None)
    check_positive_int("max_new_tokens", max_new_tokens)
    prompts = [tokenizer.encode(prompt_text(q)) for q in problems]
    s = sample(
        model,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        generator=generator,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Completions(list(problems), s, [tokenizer.decode(r) for r in s.responses])


def completion_logprobs(model, completions: Completions) -> torch.Tensor:
    """Per-token log-probs ``[B, N]`` of the completion tokens under ``model`` (0 off the mask; gradients flow)."""
    s = completions.samples
    return token_logprobs(model, s.input_ids, s.attention_mask)[:, s.prompt_length :] * completions.mask


@torch.no_grad()
def evaluate_pass_at_k(
    model,
    tokenizer: CharTokenizer,
    *,
    n_problems: int = 500,
    n_samples: int = 16,
    ks: Sequence[int] = (1,),
    seed: int = 0,
    temperature: float = 1.0,
    verifier: str = "exact",
    batch_size: int = 1024,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> dict:
    """pass@k on ``n_problems`` held-out problems from ``n_samples`` samples each (:func:`pass_at_k`).

    Returns ``{"pass_at_k": {k: mean over problems}, "correct": [n_problems] counts, "length_correct",
    "length_wrong" (mean tokens of correct and of wrong completions, NaN if none)}``.
    """
    n_problems = check_positive_int("n_problems", n_problems)
    n_samples = check_positive_int("n_samples", n_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    for k in ks:
        if not 1 <= int(k) <= n_samples:
            raise ValueError(f"ks must lie in [1, n_samples={n_samples}], got {k}")
    problems = held_out_problems(n_problems, seed=0)
    flat = [q for q in problems for _ in range(n_samples)]
    gen = torch.Generator().manual_seed(check_positive_int("seed", seed, 0))
    rewards, lengths = [], []
    for start in range(0, len(flat), batch_size):
        c = sample_completions(
            model,
            tokenizer,
            flat[start : start + batch_size],
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            generator=gen,
        )
        rewards.append(verify(c.problems, c.texts, verifier))
        lengths.append(c.lengths)
    r = np.concatenate(rewards).reshape(n_problems, n_samples)
    lens = np.concatenate(lengths).reshape(n_problems, n_samples)
    correct = r.sum(1).astype(int)
    out = {k: float(np.mean([pass_at_k(n_samples, int(c), int(k)) for c in correct])) for k in ks}
    good = r > 0.5
    return {
        "pass_at_k": out,
        "correct": correct,
        "length_correct": float(lens[good].mean()) if good.any() else float("nan"),
        "length_wrong": float(lens[~good].mean()) if (~good).any() else float("nan"),
    }
