"""Pretrain chapter 7's reasoning tiny GPT-2 on imperfect worked solutions and write the shipped checkpoint.

    rl4llm pretrain-reasoning [--out DIR] [--steps 3000] [--seed 0]

The training set is ``n_examples`` problems of the training split (:func:`rl4llm.rlvr.task.train_problems`), each
with a worked solution made imperfect on purpose (:func:`rl4llm.rlvr.task.worked_solution`: a step off by one with
probability ``p_slip``, a forgotten carry or borrow with probability ``p_forget``, a restated problem with
probability ``p_restate``). The loss is the cross-entropy of the solution tokens and ``<eos>`` given
``"<bos><prompt>"``: supervised fine-tuning on demonstrations. Deterministic: one thread, a seeded generator.

:func:`load_reasoning_lm` loads the shipped checkpoint (``rlvr/checkpoints/cot-gpt2``) after checking the SHA-256 of
every file (:func:`rl4llm.lm.model.verify_checksums`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.lm.model import quiet_loading, verify_checksums, write_checksums
from rl4llm.prompting.pretrain import completion_lm, encode_prompt_completions, train_on_completions
from rl4llm.prompting.tokenizer import CharTokenizer
from rl4llm.rlvr.task import cot_tokenizer, prompt_text, train_problems, worked_solution
from rl4llm.utils import set_seed, set_torch_threads

__all__ = [
    "CHECKPOINT_DIR",
    "ReasoningPretrainConfig",
    "training_texts",
    "train",
    "load_reasoning_lm",
    "add_arguments",
    "main",
]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints" / "cot-gpt2"
#: Longest prompt (``<bos>`` + 6 characters) plus the longest solution and ``<eos>`` fit in this many positions.
N_POSITIONS = 48


@dataclass
class ReasoningPretrainConfig:
    """The reasoning LM's pretraining (defaults: the shipped checkpoint)."""

    n_examples: int = param(20000, low=8, help="demonstrations (problem, imperfect worked solution)")
    p_slip: float = param(0.25, low=0.0, high=1.0, help="probability that a step's result is off by one")
    p_forget: float = param(0.5, low=0.0, high=1.0, help="probability that a carry or borrow is forgotten")
    p_restate: float = param(0.5, low=0.0, high=1.0, help="probability that a solution restates the problem")
    steps: int = param(3000, low=1, help="optimiser steps")
    batch_size: int = param(64, low=1, help="demonstrations per step")
    lr: float = param(3e-3, low=0.0, low_inclusive=False, help="AdamW peak learning rate (warm-up, cosine decay)")
    n_layer: int = param(2, low=1, help="transformer blocks")
    n_embd: int = param(64, low=8, help="width of the residual stream")
    n_head: int = param(4, low=1, help="attention heads (must divide n_embd)")
    seed: int = param(0, low=0, help="seed of the data and the initialisation")

    def __post_init__(self) -> None:
        validate(self)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be a multiple of n_head ({self.n_head}), got {self.n_embd}")


def training_texts(config: ReasoningPretrainConfig, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``(prompt, imperfect solution)`` pairs of the training set."""
    out = []
    for q in train_problems(config.n_examples, rng):
        out.append(
            (
                prompt_text(q),
                worked_solution(q, rng, p_slip=config.p_slip, p_forget=config.p_forget, p_restate=config.p_restate),
            )
        )
    return out


def _encode(tok: CharTokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``labels`` (-100 except on the solution and ``<eos>``)."""
    return encode_prompt_completions(tok, pairs)


def train(config: ReasoningPretrainConfig):
    """Train the LM; return ``(model, tokenizer, losses)``."""
    set_torch_threads(1)
    rng = set_seed(config.seed)
    tok = cot_tokenizer()
    model = completion_lm(
        tok, n_positions=N_POSITIONS, n_layer=config.n_layer, n_embd=config.n_embd, n_head=config.n_head
    )
    ids, labels = _encode(tok, training_texts(config, rng))
    losses = train_on_completions(
        model,
        ids,
        labels,
        tok.pad_token_id,
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed,
        trim_padding=True,  # the worked solutions vary in length more than the arithmetic answers
        desc="pretrain reasoning LM",
    )
    return model, tok, losses


def load_reasoning_lm(directory: str | Path | None = None):
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``rl4llm pretrain-reasoning``."""
    parser.add_argument("--out", default=str(CHECKPOINT_DIR), help="checkpoint folder (default: the shipped one)")
    for name, value in asdict(ReasoningPretrainConfig()).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    parser.add_argument(
        "--eval-problems",
        type=int,
        default=500,
        help="held-out problems for the pass@1 / pass@16 written to train_info.json",
    )


def main(args: argparse.Namespace) -> int:
    """Train, save ``model.safetensors`` + ``config.json`` + ``tokenizer.json`` + ``train_info.json``, then
    ``SHA256SUMS.txt``."""
    from rl4llm.rlvr.evaluation import evaluate_pass_at_k

    config = ReasoningPretrainConfig(**{k: getattr(args, k) for k in asdict(ReasoningPretrainConfig())})
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
    ev = evaluate_pass_at_k(model, tok, n_problems=args.eval_problems, n_samples=16, ks=(1, 16), seed=0)
    info = {
        "config": asdict(config),
        "train_seconds": round(seconds, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4),
        "held_out_pass_at_1": round(ev["pass_at_k"][1], 4),
        "held_out_pass_at_16": round(ev["pass_at_k"][16], 4),
    }
    (out / "train_info.json").write_text(json.dumps(info, indent=1) + "\n")
    write_checksums(out)
    print(json.dumps(info))
    return 0
