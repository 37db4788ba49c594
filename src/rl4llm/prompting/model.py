"""The arithmetic LM: a tiny ``transformers.GPT2LMHeadModel`` over :class:`~rl4llm.prompting.tokenizer.CharTokenizer`.

* :func:`load_arithmetic_lm` loads the shipped checkpoint (``prompting/checkpoints/arith-gpt2``) after checking
  the SHA-256 of every file against ``SHA256SUMS.txt`` (the substrate's :func:`rl4llm.lm.model.verify_checksums`),
  offline and deterministic.
* :func:`answer` runs the LM greedily on (query, prompt) pairs: this is the *expensive* call that Prompt-OIRL
  tries to avoid. It returns the answers and the LM's confidence (mean log-probability of its answer tokens).
* :func:`prompt_features` embeds prompt texts with the LM's own hidden state at the last prompt character, so
  that a prompt never tried on any query still has features.

Generation and padding are the substrate's (:func:`rl4llm.lm.generation.sample`, :func:`~rl4llm.lm.generation.left_pad`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rl4llm.lm.generation import left_pad, position_ids_from_mask, sample, token_logprobs
from rl4llm.lm.model import quiet_loading, verify_checksums
from rl4llm.prompting.task import Prompt, Query, model_input
from rl4llm.prompting.tokenizer import CharTokenizer
from rl4llm.utils import check_positive_int, progress

__all__ = [
    "CHECKPOINT_DIR",
    "MAX_ANSWER_TOKENS",
    "load_arithmetic_lm",
    "answer",
    "prompt_features",
    "principal_components",
]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints" / "arith-gpt2"
#: Longest answer is ``"1 9 8"`` (5 characters), then ``<eos>``.
MAX_ANSWER_TOKENS = 6


def load_arithmetic_lm(directory: str | Path | None = None):
    """Load ``(model, tokenizer)`` from ``directory`` (default: the shipped checkpoint), verifying checksums.

    Raises :class:`rl4llm.lm.CheckpointError` when ``SHA256SUMS.txt`` is missing or a file does not match it.
    """
    from transformers import GPT2LMHeadModel

    directory = Path(directory) if directory is not None else CHECKPOINT_DIR
    verify_checksums(directory)
    tokenizer = CharTokenizer.load(directory / "tokenizer.json")
    with quiet_loading():
        model = GPT2LMHeadModel.from_pretrained(str(directory))
    model.eval()
    return model, tokenizer


@torch.no_grad()
def answer(
    model,
    tokenizer: CharTokenizer,
    pairs: list[tuple[Query, Prompt]],
    batch_size: int = 512,
) -> tuple[list[str], np.ndarray]:
    """Greedy answers of the LM to ``(query, prompt)`` pairs, and its confidence in each.

    The confidence is the mean log-probability of the generated tokens (``<eos>`` included),
    :math:`\\frac1{|y|}\\sum_t \\log \\pi(y_t \\mid x, y_{<t})`. One pair is one LM call.
    """
    check_positive_int("batch_size", batch_size)
    answers: list[str] = []
    confidences: list[float] = []
    for start in progress(range(0, len(pairs), batch_size), desc="LM answers"):
        chunk = pairs[start : start + batch_size]
        out = sample(
            model,
            [tokenizer.encode(model_input(q, p)) for q, p in chunk],
            max_new_tokens=MAX_ANSWER_TOKENS,
            temperature=0.0,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        logp = token_logprobs(model, out.input_ids, out.attention_mask)
        resp = out.response_mask.float()
        confidences.extend(((logp * resp).sum(-1) / resp.sum(-1).clamp(min=1)).tolist())
        answers.extend(tokenizer.decode(r) for r in out.responses)
    return answers, np.asarray(confidences, dtype=np.float64)


@torch.no_grad()
def prompt_features(model, tokenizer: CharTokenizer, texts: list[str]) -> np.ndarray:
    """``[n, d]``: the LM's last-layer hidden state at the end of
    ``"<bos><prompt text> "``, one row per prompt.

    The LM reads only the instruction (no query), so this costs one forward pass per
    *prompt*, not per (query, prompt) pair, and works for prompts never logged.
    """
    ids, mask = left_pad([tokenizer.encode(t + " ") for t in texts], tokenizer.pad_token_id)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), output_hidden_states=True
    )
    return out.hidden_states[-1][:, -1, :].float().numpy().astype(np.float32)


def principal_components(features: np.ndarray, n_components: int = 2, fit_rows: np.ndarray | None = None) -> np.ndarray:
    """Project rows of ``features`` ``[n, d]`` on their top ``n_components`` principal directions ``[n, r]``.

    With :math:`X_c = X - \\bar x` and the SVD :math:`X_c = U S V^\\top`, the result is :math:`X_c V_{:r}`.
    ``fit_rows`` (a boolean mask or indices) computes the mean and the directions from those rows only and
    projects every row with them: fitted on the logged prompts alone, the features of a held-out prompt use
    nothing but its own text (by default all rows are used, which is *transductive* for held-out rows).
    Twelve prompts give twelve points in a 64-dimensional space: a reward model trained on eight of them can
    separate them along directions that mean nothing for an unseen prompt. Keeping the few directions along which
    the candidate prompts vary most (computed from the prompt texts alone, no labels) is what lets it generalise
    to held-out paraphrases. Signs are fixed so that each direction's largest coordinate is positive.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array, got shape {x.shape}")
    if (
        isinstance(n_components, bool)
        or not isinstance(n_components, (int, np.integer))
        or not (1 <= n_components <= min(x.shape))
    ):
        raise ValueError(f"n_components must be an int in [1, {min(x.shape)}], got {n_components!r}")
    fit = x
    if fit_rows is not None:
        fit = x[np.asarray(fit_rows)]
        if fit.ndim != 2 or fit.shape[0] < n_components:
            raise ValueError(f"fit_rows must select at least n_components = {n_components} rows, got {fit.shape[0]}")
    mean = fit.mean(axis=0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    basis = vt[:n_components]
    basis = basis * np.sign(basis[np.arange(n_components), np.abs(basis).argmax(axis=1)])[:, None]
    return (x - mean) @ basis.T
