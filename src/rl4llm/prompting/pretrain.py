"""Pretrain the arithmetic tiny GPT-2 of chapter 6 and write the shipped checkpoint.

    rl4llm pretrain-arithmetic [--out DIR] [--steps 3000] [--seed 0]

The training set is *skewed on purpose*: each answer format is taught mostly on one kind of query
(``home_frac`` of its examples), the rest spread over the other kinds:

===========  ===============
format       home query type
===========  ===============
direct       add-no-carry
reversed     add-carry
spaced       sub-no-borrow
padded       sub-borrow
===========  ===============

so the LM's competence depends on query type x prompt, the premise of query-dependent prompting. The loss is the
cross-entropy of the answer tokens (and ``<eos>``) given ``"<bos><prompt> <query>="``. Deterministic: one
thread, a seeded generator, a fixed training set.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rl4llm.config import ConfigError, param, validate
from rl4llm.lm.model import write_checksums
from rl4llm.prompting.model import CHECKPOINT_DIR, answer
from rl4llm.prompting.task import (
    FORMATS,
    PROMPTS,
    QUERY_TYPES,
    Prompt,
    Query,
    check_answer,
    model_input,
    render_answer,
    sample_queries,
    sample_query,
)
from rl4llm.prompting.tokenizer import CharTokenizer, default_tokenizer
from rl4llm.utils import check_positive_int, progress, set_seed, set_torch_threads

__all__ = ["HOME_TYPE", "PretrainConfig", "training_examples", "train", "accuracy_table", "add_arguments", "main"]

#: The query type each answer format is mostly taught on.
HOME_TYPE: dict[str, str] = dict(zip(FORMATS, QUERY_TYPES))


@dataclass
class PretrainConfig:
    """Defaults are the shipped arithmetic checkpoint's run."""

    n_examples: int = param(12000, low=8, help="training examples")
    home_frac: float = param(0.9, low=0.0, high=1.0, help="share of examples in each format's home region")
    steps: int = param(3000, low=1, help="gradient steps")
    batch_size: int = param(64, low=1, help="examples per step")
    lr: float = param(3e-3, low=0.0, low_inclusive=False, help="learning rate")
    n_layer: int = param(2, low=1, help="transformer blocks")
    n_embd: int = param(64, low=1, help="embedding width (a multiple of n_head)")
    n_head: int = param(4, low=1, help="attention heads")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)
        if self.n_embd % self.n_head:
            raise ConfigError("n_embd", f"n_embd must be a multiple of n_head ({self.n_head}), got {self.n_embd}")


def training_examples(
    n: int,
    home_frac: float,
    rng: np.random.Generator,
) -> list[tuple[Query, Prompt]]:
    """``n`` (query, prompt) pairs: prompts uniform over all twelve, query type =
    the format's home type with probability ``home_frac``, otherwise one of the
    other three types uniformly."""
    out = []
    for _ in range(n):
        prompt = PROMPTS[int(rng.integers(len(PROMPTS)))]
        home = HOME_TYPE[prompt.format]
        if rng.random() < home_frac:
            qtype = home
        else:
            others = [t for t in QUERY_TYPES if t != home]
            qtype = others[int(rng.integers(len(others)))]
        out.append((sample_query(qtype, rng), prompt))
    return out


def _encode(tok: CharTokenizer, pairs: list[tuple[Query, Prompt]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``labels`` (-100 except on the answer and ``<eos>``)."""
    return encode_prompt_completions(tok, [(model_input(q, p), render_answer(q.value, p.format)) for q, p in pairs])


def encode_prompt_completions(tok: CharTokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``labels`` for (prompt, completion) texts: the prompt (with ``<bos>``), the
    completion and ``<eos>``; labels are -100 except on the completion and ``<eos>`` (the loss of supervised
    fine-tuning on completions only)."""
    seqs, starts = [], []
    for prompt, completion in pairs:
        prefix = tok.encode(prompt)
        seqs.append(prefix + tok.encode(completion, bos=False) + [tok.eos_token_id])
        starts.append(len(prefix))
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, st : len(s)] = torch.tensor(s[st:])
    return ids, labels


def completion_lm(tok: CharTokenizer, *, n_positions: int, n_layer: int, n_embd: int, n_head: int):
    """A fresh character-level ``GPT2LMHeadModel`` for ``tok`` (no dropout, MLP width ``4 n_embd``), initialised
    from torch's global generator: the starting point of the arithmetic and the reasoning checkpoints."""
    from transformers import GPT2Config, GPT2LMHeadModel

    gcfg = GPT2Config(
        vocab_size=tok.vocab_size,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_inner=4 * n_embd,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return GPT2LMHeadModel(gcfg)


def train_on_completions(
    model,
    ids: torch.Tensor,
    labels: torch.Tensor,
    pad_id: int,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    trim_padding: bool = False,
    desc: str = "pretrain",
) -> list[float]:
    """Supervised training of ``model`` in place on right-padded ``(ids, labels)``
    (:func:`encode_prompt_completions`); returns the loss of every step and leaves the model in eval mode.

    Each step takes the next ``batch_size`` rows of a permutation drawn with ``seed`` (a new one when it runs out)
    and minimises the mean cross-entropy of the labelled tokens,
    :math:`\\mathcal L = -\frac{1}{|\\mathcal C|}\\sum_{t \\in \\mathcal C} \\log \\pi(x_t \\mid x_{<t})`, with AdamW
    (weight decay 0.01, betas 0.9 / 0.98), gradients clipped to norm 1, and the learning rate warmed up linearly over
    the first 5 % of the steps, then decayed along a cosine to 5 % of ``lr``. ``trim_padding`` cuts each batch to its
    longest row (the same loss, less work on long padded sequences)."""
    attn = (ids != pad_id).long()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)

    def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 5%
        if step < warmup:
            return (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    perm, pos = torch.randperm(len(ids), generator=gen), 0
    for _ in progress(range(steps), desc=desc):
        if pos + batch_size > len(ids):
            perm, pos = torch.randperm(len(ids), generator=gen), 0
        idx = perm[pos : pos + batch_size]
        pos += batch_size
        width = int(attn[idx].sum(1).max()) if trim_padding else ids.shape[1]
        out = model(input_ids=ids[idx, :width], attention_mask=attn[idx, :width], labels=labels[idx, :width])
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(out.loss.detach()))
    model.eval()
    return losses


def train(config: PretrainConfig):
    """Train the LM; return ``(model, tokenizer, losses)``."""
    set_torch_threads(1)
    rng = set_seed(config.seed)
    tok = default_tokenizer()
    model = completion_lm(tok, n_positions=40, n_layer=config.n_layer, n_embd=config.n_embd, n_head=config.n_head)
    ids, labels = _encode(tok, training_examples(config.n_examples, config.home_frac, rng))
    losses = train_on_completions(
        model,
        ids,
        labels,
        tok.pad_token_id,
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed,
        desc="pretrain arithmetic LM",
    )
    return model, tok, losses


def accuracy_table(model, tok: CharTokenizer, n_per_type: int = 100, seed: int = 12345) -> np.ndarray:
    """``[4 query types, 12 prompts]`` accuracy of the LM on ``n_per_type`` fresh queries of each type."""
    check_positive_int("n_per_type", n_per_type)
    rng = np.random.default_rng(seed)
    queries = sample_queries(n_per_type * len(QUERY_TYPES), rng)
    pairs = [(q, p) for q in queries for p in PROMPTS]
    answers, _ = answer(model, tok, pairs)
    table = np.zeros((len(QUERY_TYPES), len(PROMPTS)))
    counts = np.zeros(len(QUERY_TYPES))
    for (q, p), a in zip(pairs, answers):
        t = QUERY_TYPES.index(q.type)
        table[t, p.id] += check_answer(q, p, a)
        if p.id == 0:
            counts[t] += 1
    return table / counts[:, None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``rl4llm pretrain-arithmetic``."""
    parser.add_argument("--out", default=str(CHECKPOINT_DIR), help="checkpoint folder (default: the shipped one)")
    defaults = PretrainConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    parser.add_argument(
        "--table-per-type",
        type=int,
        default=100,
        help="queries per type for the accuracy table written to train_info.json",
    )


def main(args: argparse.Namespace) -> int:
    """Train, save ``model.safetensors`` + ``config.json`` + ``tokenizer.json`` + ``train_info.json``, then
    ``SHA256SUMS.txt`` (the substrate's checksum format, :func:`rl4llm.lm.model.write_checksums`)."""
    fields = asdict(PretrainConfig())
    config = PretrainConfig(**{k: getattr(args, k) for k in fields})
    t0 = time.perf_counter()
    model, tok, losses = train(config)
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    model.save_pretrained(str(out))
    tok.save(out / "tokenizer.json")
    table = accuracy_table(model, tok, n_per_type=getattr(args, "table_per_type", 100))
    info = {
        "config": asdict(config),
        "train_seconds": round(seconds, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "accuracy_by_type_and_prompt": {t: [round(float(x), 3) for x in row] for t, row in zip(QUERY_TYPES, table)},
    }
    (out / "train_info.json").write_text(json.dumps(info, indent=1) + "\n")
    write_checksums(out)
    print(json.dumps({k: info[k] for k in ("train_seconds", "final_loss")}))
    print("accuracy (rows: query type; columns: prompt id 0..11)")
    for t, row in zip(QUERY_TYPES, table):
        print(f"{t:>14s} " + " ".join(f"{x:4.2f}" for x in row))
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
