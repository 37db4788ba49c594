"""Pretrain the shipped tiny GPT-2 on the review language and write its checkpoint.

    rl4llm pretrain [--out DIR] [--steps 2500] [--size tiny] [--seed 0]

Next-token cross-entropy (maximum likelihood) on ``n_train`` reviews sampled from the grammar at
``positivity=0.5``:

.. math::  \\mathcal L(\\theta) = -\\frac{1}{\\sum_i |x^i|} \\sum_i \\sum_{t \\ge 1} \\log \\pi_\\theta(x^i_t \\mid x^i_{<t}),

where each :math:`x^i` is ``<bos> w_1 ... w_n <eos>``. AdamW, linear warm-up then cosine decay, one thread, a
seeded generator and a fixed corpus, so the run is deterministic on a given machine (a few minutes on one CPU
core). The folder gets ``model.safetensors`` + ``config.json`` + tokenizer files + ``training_log.json`` (the
curves and final figures the book plots) + ``SHA256SUMS.txt``.

Reported figures: held-out perplexity next to the *grammar's own* perplexity on the same tokens (the best any
model can do, since the grammar is the true distribution), the parse rate of samples, and their gold reward.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.lm.generation import generate_texts
from rl4llm.lm.language import expert_next_distribution, gold_reward, parse_rate, sample_texts, words_of
from rl4llm.lm.model import CHECKPOINT_DIR, TINY_CONFIGS, count_parameters, make_tiny_gpt2, write_checksums
from rl4llm.lm.tokenizer import build_tokenizer
from rl4llm.utils import progress, set_seed, set_torch_threads

__all__ = ["PretrainConfig", "grammar_perplexity", "heldout_perplexity", "train", "add_arguments", "main"]


@dataclass
class PretrainConfig:
    """Defaults are the shipped checkpoint's run."""

    size: str = param("tiny", choices=tuple(TINY_CONFIGS), help="size of the GPT-2 (rl4llm.lm.model.TINY_CONFIGS)")
    n_train: int = param(20000, low=1, help="training texts sampled from the grammar")
    n_heldout: int = param(1000, low=1, help="held-out texts for the validation loss")
    steps: int = param(2500, low=1, help="gradient steps")
    batch_size: int = param(64, low=1, help="texts per step")
    lr: float = param(3e-3, low=0.0, high=1.0, low_inclusive=False, help="peak learning rate")
    warmup: int = param(100, low=0, help="steps of linear learning-rate warm-up")
    weight_decay: float = param(0.01, low=0.0, help="AdamW weight decay")
    eval_every: int = param(250, low=1, help="steps between evaluations")
    n_eval_samples: int = param(256, low=1, help="samples generated at each evaluation")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)


def _encode(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _lm_loss(model, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean next-token NLL over real tokens (right padding), and the number of tokens scored."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100
    )
    return loss, int((targets != -100).sum())


@torch.no_grad()
def heldout_perplexity(model, tokenizer, texts: list[str], batch_size: int = 256) -> float:
    """:math:`\\exp` of the mean next-token NLL of ``texts`` (every token after ``<bos>``, ``<eos>`` included)."""
    total, count = 0.0, 0
    for start in range(0, len(texts), batch_size):
        ids, mask = _encode(tokenizer, texts[start : start + batch_size])
        loss, n = _lm_loss(model, ids, mask)
        total += float(loss) * n
        count += n
    return math.exp(total / count)


def grammar_perplexity(texts: list[str], positivity: float = 0.5) -> float:
    """The true distribution's perplexity on ``texts``: :math:`\\exp(-\\frac1N \\sum \\log p_{\\text{grammar}}(w_t
    \\mid w_{<t}))`, the floor that a perfectly trained model reaches on the same tokens."""
    total, count = 0.0, 0
    for text in texts:
        words = words_of(text)
        for t, w in enumerate(words):
            p = expert_next_distribution(words[:t], positivity).get(w, 0.0)
            total += -math.log(p) if p > 0 else math.inf
            count += 1
    return math.exp(total / count)


def train(config: PretrainConfig):
    """Train a tiny GPT-2 from scratch; return ``(model, tokenizer, log)`` with ``log`` a JSON-able dict."""
    set_torch_threads(1)
    rng = set_seed(config.seed)
    tokenizer = build_tokenizer()
    train_texts = sample_texts(config.n_train, rng, positivity=0.5)
    heldout = sample_texts(config.n_heldout, np.random.default_rng(config.seed + 10_000), positivity=0.5)
    ids_all, mask_all = _encode(tokenizer, train_texts)
    model = make_tiny_gpt2(tokenizer, config.size, seed=config.seed)
    model.train()
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )

    def lr_at(step: int) -> float:  # linear warm-up, then cosine decay to 10 %
        if step < config.warmup:
            return config.lr * (step + 1) / config.warmup
        frac = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    gen = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(config.n_train, generator=gen)
    cursor = 0
    log: dict = {"step": [], "train_loss": [], "eval_step": [], "heldout_loss": [], "parse_rate": []}
    running = []
    t0 = time.perf_counter()

    def evaluate(step: int) -> None:
        model.eval()
        ppl = heldout_perplexity(model, tokenizer, heldout)
        samples = generate_texts(model, tokenizer, config.n_eval_samples, seed=config.seed + step)
        model.train()
        log["eval_step"].append(step)
        log["heldout_loss"].append(round(math.log(ppl), 5))
        log["parse_rate"].append(round(parse_rate(samples), 5))

    evaluate(0)
    for step in progress(range(1, config.steps + 1), desc="pretrain tiny-gpt2"):
        if cursor + config.batch_size > config.n_train:
            order = torch.randperm(config.n_train, generator=gen)
            cursor = 0
        idx = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        ids, mask = ids_all[idx], mask_all[idx]
        width = int(mask.sum(1).max())  # trim the common padding
        for group in opt.param_groups:
            group["lr"] = lr_at(step - 1)
        loss, _ = _lm_loss(model, ids[:, :width], mask[:, :width])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        if step % 25 == 0:
            log["step"].append(step)
            log["train_loss"].append(round(float(np.mean(running)), 5))
            running = []
        if step % config.eval_every == 0 or step == config.steps:
            if not log["eval_step"] or log["eval_step"][-1] != step:
                evaluate(step)
    train_seconds = time.perf_counter() - t0
    model.eval()
    final_samples = generate_texts(model, tokenizer, 1000, seed=config.seed + 123)
    grammar_samples = sample_texts(1000, np.random.default_rng(config.seed + 20_000), positivity=0.5)
    log["final"] = {
        "parameters": count_parameters(model),
        "train_seconds": round(train_seconds, 1),
        "heldout_perplexity": round(heldout_perplexity(model, tokenizer, heldout), 4),
        "grammar_perplexity": round(grammar_perplexity(heldout), 4),
        "parse_rate": round(parse_rate(final_samples), 4),
        "sample_gold_reward": round(float(np.mean(gold_reward(final_samples))), 4),
        "grammar_gold_reward": round(float(np.mean(gold_reward(grammar_samples))), 4),
    }
    log["config"] = asdict(config)
    return model, tokenizer, log


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``rl4llm pretrain``: ``--out`` and the :class:`PretrainConfig` fields in kebab-case."""
    parser.add_argument("--out", default=str(CHECKPOINT_DIR), help="checkpoint folder (default: the shipped one)")
    for name, value in asdict(PretrainConfig()).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, dest=name)


def save_checkpoint(model, tokenizer, log: dict, out: str | Path) -> Path:
    """Write the model (safetensors), tokenizer, ``training_log.json`` and ``SHA256SUMS.txt`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    write_checksums(out)
    return out


def main(args: argparse.Namespace) -> int:
    """Train with the flags' config and save the checkpoint; print the final figures as JSON."""
    try:
        config = PretrainConfig(**{k: getattr(args, k) for k in asdict(PretrainConfig())})
    except (TypeError, ValueError) as err:
        print(f"rl4llm pretrain: error: {err}")
        return 2
    model, tokenizer, log = train(config)
    out = save_checkpoint(model, tokenizer, log, args.out)
    print(json.dumps(log["final"], sort_keys=True))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(main(p.parse_args()))
