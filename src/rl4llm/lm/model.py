"""Tiny GPT-2 configurations, the shipped checkpoint and loading of any GPT-2-family causal LM.

The book uses the GPT-2 *architecture* (``transformers.GPT2LMHeadModel``: learned position embeddings, pre-norm
blocks of causal self-attention and an MLP, an LM head tied to the token embeddings) at toy size, pretrained by
:mod:`rl4llm.lm.pretrain` on the synthetic review language. Real GPT-2 (124M parameters, 50,257 tokens) has the
same code path: :func:`load_policy` loads it from a local folder or the Hugging Face hub.

The shipped checkpoint lives in ``checkpoints/tiny-gpt2/`` next to this file: ``model.safetensors``,
``config.json``, the tokenizer files, ``training_log.json`` (the curves and figures of its training run) and
``SHA256SUMS.txt``; :func:`load_tiny_gpt2` verifies every checksum before loading.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from rl4llm.utils import check_choice

__all__ = [
    "CHECKPOINT_DIR",
    "TINY_CONFIGS",
    "CheckpointError",
    "tiny_gpt2_config",
    "make_tiny_gpt2",
    "count_parameters",
    "write_checksums",
    "verify_checksums",
    "load_tiny_gpt2",
    "load_policy",
    "quiet_loading",
    "fuse_gelu",
]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints" / "tiny-gpt2"
CHECKSUM_FILE = "SHA256SUMS.txt"

#: Named sizes (layers, width, heads). "tiny" is the shipped checkpoint; "small" is for readers with more time.
TINY_CONFIGS: dict[str, dict[str, int]] = {
    "tiny": {"n_layer": 2, "n_embd": 64, "n_head": 4},
    "small": {"n_layer": 4, "n_embd": 128, "n_head": 4},
}


class CheckpointError(RuntimeError):
    """A checkpoint file is missing or does not match its recorded SHA-256."""


def tiny_gpt2_config(tokenizer, size: str = "tiny", n_positions: int = 64):
    """A ``GPT2Config`` for the book's vocabulary: ``size`` is a key of :data:`TINY_CONFIGS`; no dropout.

    The special token ids (``bos``, ``eos``, ``pad``) are taken from ``tokenizer`` so they lie inside the
    vocabulary. Dropout is off: RL fine-tuning compares log-probabilities of the same text under two models,
    and dropout noise would leak into those ratios.
    """
    from transformers import GPT2Config

    check_choice("size", size, tuple(TINY_CONFIGS))
    dims = TINY_CONFIGS[size]
    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=dims["n_embd"],
        n_layer=dims["n_layer"],
        n_head=dims["n_head"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )


def make_tiny_gpt2(tokenizer, size: str = "tiny", seed: int = 0):
    """A freshly initialised ``GPT2LMHeadModel`` of the given size (deterministic for a seed)."""
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(tiny_gpt2_config(tokenizer, size))


def count_parameters(model) -> int:
    """Number of distinct trainable parameters (tied embeddings counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(folder: str | Path) -> Path:
    """Write ``SHA256SUMS.txt`` (``<sha256>  <file>`` per line, sha256sum format) for every file in ``folder``."""
    folder = Path(folder)
    lines = [f"{_sha256(p)}  {p.name}" for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUM_FILE]
    out = folder / CHECKSUM_FILE
    out.write_text("\n".join(lines) + "\n")
    return out


def verify_checksums(folder: str | Path) -> None:
    """Check every file listed in ``folder/SHA256SUMS.txt``; raise :class:`CheckpointError` naming a bad file."""
    folder = Path(folder)
    sums = folder / CHECKSUM_FILE
    if not sums.is_file():
        raise CheckpointError(f"{sums} is missing: cannot verify the checkpoint (re-run `rl4llm pretrain`)")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = folder / name.strip()
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {path} is missing")
        actual = _sha256(path)
        if actual != digest:
            raise CheckpointError(
                f"checkpoint file {path} is corrupted: sha256 {actual} does not match the "
                f"recorded {digest} (restore it from git or re-run `rl4llm pretrain`)"
            )


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar for the block (restored afterwards).

    Loading a checkpoint of half a megabyte takes milliseconds; a progress bar for it only clutters the book's
    cell outputs.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_tiny_gpt2(path: str | Path | None = None, verify: bool = True):
    """The shipped tiny GPT-2 and its tokenizer, ``(model, tokenizer)``, offline, in eval mode.

    ``path`` defaults to the packaged ``checkpoints/tiny-gpt2``. With ``verify`` (default) every file's SHA-256 is
    checked first, so a corrupted file gives a :class:`CheckpointError` naming it rather than a silently
    different model. Deterministic: no dropout, eval mode.
    """
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = Path(path) if path is not None else CHECKPOINT_DIR
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"no checkpoint in {folder} (config.json missing); run `rl4llm pretrain`")
    if verify:
        verify_checksums(folder)
    with quiet_loading():
        model = GPT2LMHeadModel.from_pretrained(folder, local_files_only=True)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
    model.eval()
    return model, tokenizer


def load_policy(name_or_path: str | Path = "tiny-gpt2", padding_side: str = "left"):
    """Any GPT-2-family causal LM and its tokenizer, ``(model, tokenizer)``, in eval mode.

    ``name_or_path`` is ``"tiny-gpt2"`` (the shipped checkpoint), a local folder written by ``save_pretrained``,
    or a hub id such as ``"gpt2"`` (downloaded once and cached; set ``HF_HUB_OFFLINE=1`` to use only the cache).
    A tokenizer without a pad token (GPT-2's) gets ``pad = eos``; ``padding_side`` defaults to ``"left"`` for
    generation.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_choice("padding_side", padding_side, ("left", "right"))
    if str(name_or_path) == "tiny-gpt2":
        model, tokenizer = load_tiny_gpt2()
    else:
        local = Path(name_or_path).expanduser()
        source = str(local) if local.is_dir() else str(name_or_path)
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        try:
            with quiet_loading() if local.is_dir() else contextlib.nullcontext():
                model = AutoModelForCausalLM.from_pretrained(source, local_files_only=offline or local.is_dir())
                tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline or local.is_dir())
        except (OSError, ValueError) as err:
            where = "local folder" if local.is_dir() else ("hub cache (HF_HUB_OFFLINE=1)" if offline else "hub")
            raise ValueError(f"cannot load a causal LM from {name_or_path!r} ({where}): {err}") from err
        model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = padding_side
    return model, tokenizer


def fuse_gelu(model: torch.nn.Module) -> torch.nn.Module:
    """Swap GPT-2's ``gelu_new`` activation modules for PyTorch's fused kernel of the same formula, in place.

    Both compute :math:`\\tfrac12 x (1 + \\tanh(\\sqrt{2/\\pi}(x + 0.044715 x^3)))`; the fused kernel
    (``gelu_pytorch_tanh``) agrees to about 2e-7 and is about four times faster on a CPU, where the activation
    was a sixth of the chapter's compute. Returns the model.
    """
    from transformers.activations import ACT2FN, NewGELUActivation

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, NewGELUActivation):
                setattr(module, name, ACT2FN["gelu_pytorch_tanh"])
    return model
