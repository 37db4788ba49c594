"""The arithmetic LM: a tiny ``transformers.GPT2LMHeadModel`` over :class:`~rl4llm.prompting.tokenizer.CharTokenizer`.

* :func:`load_arithmetic_lm` loads the shipped checkpoint (``prompting/checkpoints/arith-gpt2``) after checking
  the SHA-256 of every file against ``checksums.sha256``, offline and deterministic.
* :func:`answer` runs the LM greedily on (query, prompt) pairs: this is the *expensive* call that Prompt-OIRL
  tries to avoid. It returns the answers and the LM's confidence (mean log-probability of its answer tokens).
* :func:`prompt_features` embeds prompt texts with the LM's own hidden state at the last prompt character, so
  that a prompt never tried on any query still has features.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from rl4llm.prompting.task import Prompt, Query, model_input
from rl4llm.prompting.tokenizer import CharTokenizer

__all__ = [
    "CHECKPOINT_DIR",
    "MAX_ANSWER_TOKENS",
    "file_sha256",
    "write_checksums",
    "verify_checksums",
    "load_arithmetic_lm",
    "left_pad",
    "answer",
    "prompt_features",
    "principal_components",
]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints" / "arith-gpt2"
CHECKSUMS = "checksums.sha256"
#: Longest answer is ``"1 9 8"`` (5 characters), then ``<eos>``.
MAX_ANSWER_TOKENS = 6


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(directory: str | Path) -> Path:
    """Write ``checksums.sha256`` (``<sha256>  <file name>`` per line) for every other file of ``directory``."""
    directory = Path(directory)
    lines = [f"{file_sha256(p)}  {p.name}" for p in sorted(directory.iterdir())
             if p.is_file() and p.name != CHECKSUMS]
    out = directory / CHECKSUMS
    out.write_text("\n".join(lines) + "\n")
    return out


def verify_checksums(directory: str | Path) -> None:
    """Raise ``ValueError`` if a file listed in ``checksums.sha256`` is missing or differs."""
    directory = Path(directory)
    listing = directory / CHECKSUMS
    if not listing.is_file():
        raise ValueError(f"{listing} is missing: cannot verify the checkpoint")
    for line in listing.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = directory / name
        if not path.is_file():
            raise ValueError(f"checkpoint file {path} is missing")
        got = file_sha256(path)
        if got != digest:
            raise ValueError(f"checksum mismatch for {path}: expected {digest}, got {got}")


def load_arithmetic_lm(directory: str | Path | None = None):
    """Load ``(model, tokenizer)`` from ``directory`` (default: the shipped checkpoint), verifying checksums."""
    from transformers import GPT2LMHeadModel

    from rl4llm.lm.model import quiet_loading

    directory = Path(directory) if directory is not None else CHECKPOINT_DIR
    verify_checksums(directory)
    tokenizer = CharTokenizer.load(directory / "tokenizer.json")
    with quiet_loading():
        model = GPT2LMHeadModel.from_pretrained(str(directory))
    model.eval()
    return model, tokenizer


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ``input_ids`` and ``attention_mask`` tensors ``[B, T]``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = 1
    return ids, mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def answer(model, tokenizer: CharTokenizer, pairs: list[tuple[Query, Prompt]], batch_size: int = 512,
           ) -> tuple[list[str], np.ndarray]:
    """Greedy answers of the LM to ``(query, prompt)`` pairs, and its confidence in each.

    The confidence is the mean log-probability of the generated tokens (``<eos>`` included),
    :math:`\\frac1{|y|}\\sum_t \\log \\pi(y_t \\mid x, y_{<t})`. One pair is one LM call.
    """
    answers: list[str] = []
    confidences: list[float] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        ids, mask = left_pad([tokenizer.encode(model_input(q, p)) for q, p in chunk], tokenizer.pad_token_id)
        b = ids.shape[0]
        generated = torch.full((b, MAX_ANSWER_TOKENS), tokenizer.pad_token_id, dtype=torch.long)
        logp_sum = torch.zeros(b)
        n_tok = torch.zeros(b)
        done = torch.zeros(b, dtype=torch.bool)
        for t in range(MAX_ANSWER_TOKENS):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask)).logits[:, -1, :]
            logp = torch.log_softmax(logits.float(), dim=-1)
            nxt = logp.argmax(-1)
            live = ~done
            logp_sum += torch.where(live, logp.gather(1, nxt[:, None])[:, 0], torch.zeros(b))
            n_tok += live.float()
            nxt = torch.where(live, nxt, torch.full_like(nxt, tokenizer.pad_token_id))
            generated[:, t] = nxt
            done |= nxt == tokenizer.eos_token_id
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            mask = torch.cat([mask, live.long()[:, None]], dim=1)
            if bool(done.all()):
                break
        for i in range(b):
            answers.append(tokenizer.decode(generated[i].tolist()))
        confidences.extend((logp_sum / n_tok.clamp(min=1)).tolist())
    return answers, np.asarray(confidences, dtype=np.float64)


@torch.no_grad()
def prompt_features(model, tokenizer: CharTokenizer, texts: list[str]) -> np.ndarray:
    """``[n, d]``: the LM's last-layer hidden state at the end of ``"<bos><prompt text> "``, one row per prompt.

    The LM reads only the instruction (no query), so this costs one forward pass per *prompt*, not per
    (query, prompt) pair, and works for prompts that never appear in the logs.
    """
    ids, mask = left_pad([tokenizer.encode(t + " ") for t in texts], tokenizer.pad_token_id)
    out = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask), output_hidden_states=True)
    return out.hidden_states[-1][:, -1, :].float().numpy().astype(np.float32)


def principal_components(features: np.ndarray, n_components: int = 3) -> np.ndarray:
    """Project rows of ``features`` ``[n, d]`` on their top ``n_components`` principal directions ``[n, r]``.

    Twelve prompts give twelve points in a 64-dimensional space: a reward model trained on eight of them can
    separate them along directions that mean nothing for an unseen prompt. Keeping the few directions along which
    the candidate prompts vary most (computed from the prompt texts alone, no labels) is what lets it generalise
    to held-out paraphrases. Signs are fixed so that each direction's largest coordinate is positive.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array, got shape {x.shape}")
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or not (
            1 <= n_components <= min(x.shape)):
        raise ValueError(f"n_components must be an int in [1, {min(x.shape)}], got {n_components!r}")
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:n_components]
    basis = basis * np.sign(basis[np.arange(n_components), np.abs(basis).argmax(axis=1)])[:, None]
    return centred @ basis.T
