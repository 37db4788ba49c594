"""Which GPT-2 is the policy: ``--model tiny`` (the shipped checkpoint), ``gpt2`` (the hub) or a local folder.

Every language-model experiment starts from one causal LM and its own tokenizer, chosen by one string:

* ``"tiny"`` (default): the shipped 117k-parameter GPT-2 with the word-level tokenizer of the review language
  (:func:`rl4llm.lm.load_tiny_gpt2`), offline and checksummed;
* ``"gpt2"`` (or any hub id such as ``"gpt2-medium"``): a real checkpoint from the Hugging Face hub (its cache when
  ``HF_HUB_OFFLINE=1``), with GPT-2's byte-level BPE tokenizer;
* a folder written by ``save_pretrained`` (model and tokenizer), e.g. a downloaded ``gpt2``.

The synthetic tasks judge **text**: the gold reward parses words separated by spaces and needs the end-of-text word
:data:`rl4llm.lm.EOS` to know that a review is finished. A BPE tokenizer has its own end-of-sequence token (GPT-2's
``<|endoftext|>``), so two functions translate at the boundary, and nothing else in the package depends on the
tokenizer:

* :func:`to_model_text` before encoding: the word ``<eos>`` becomes the tokenizer's end-of-sequence token, so SFT
  teaches the model to *stop* (emit that token) rather than to spell ``<``, ``eos``, ``>``;
* :func:`from_model_text` after decoding: the tokenizer's end-of-sequence token becomes the word ``<eos>``.

Both are the identity for the word-level tokenizer (its end-of-sequence token *is* ``<eos>``), which keeps the
default path bit for bit as it was.

Chapter 7's reasoning task reads its prompts and completions through a tokenizer with the interface of
:class:`rl4llm.prompting.tokenizer.CharTokenizer` (``encode`` with a leading bos, ``decode`` up to the first eos);
:class:`TaskTokenizer` gives a Hugging Face tokenizer that interface, and :func:`resolve_reasoning_policy` is the
chapter's ``--model``: ``"reasoning"`` (its shipped checkpoint) or any of the above.

Without the hub (tests, CI), :func:`build_bpe_tokenizer` trains a GPT-2-style byte-level BPE on the review
language and :func:`save_random_gpt2` writes a randomly initialised GPT-2 (any size up to the real 124M
configuration) with it to a folder, which then loads like a downloaded checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl4llm.lm.language import EOS, sample_texts
from rl4llm.utils import check_positive_int

__all__ = [
    "MODEL_HELP",
    "resolve_policy",
    "check_model_name",
    "to_model_text",
    "from_model_text",
    "build_bpe_tokenizer",
    "save_random_gpt2",
    "TaskTokenizer",
    "resolve_reasoning_policy",
    "REASONING_MODEL_HELP",
]

#: The help line of every ``model`` config field.
MODEL_HELP = (
    "the policy's starting checkpoint: 'tiny' (shipped), 'gpt2' (hub) or a local save_pretrained "
    "folder; the tokenizer comes with it"
)

#: The help line of the reasoning task's ``model`` config fields.
REASONING_MODEL_HELP = (
    "the policy's starting checkpoint: 'reasoning' (chapter 7's shipped SFT model), 'gpt2' (hub) or a local "
    "save_pretrained folder; the tokenizer comes with it"
)

#: GPT-2's end-of-text token: its only special token (bos = eos, and pad = eos after loading).
GPT2_EOS = "<|endoftext|>"


def check_model_name(model: Any) -> str:
    """``model`` must be a non-empty string (``"tiny"``, a hub id or a folder); returns it."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be 'tiny', 'gpt2' (a hub id) or a checkpoint folder, got {model!r}")
    return model


def resolve_policy(model: str = "tiny"):
    """``(model, tokenizer)`` for a ``--model`` value, in eval mode (see the module docstring).

    ``"tiny"`` is :func:`rl4llm.lm.load_tiny_gpt2` (checksums verified); anything else goes through
    :func:`rl4llm.lm.load_policy` (a folder first, then the hub), which sets ``pad = eos`` when the tokenizer has
    no pad token (GPT-2's). Raises ``ValueError`` naming the source when it cannot be loaded.
    """
    from rl4llm.lm.model import load_policy, load_tiny_gpt2

    model = check_model_name(model)
    if model in ("tiny", "tiny-gpt2"):
        return load_tiny_gpt2()
    return load_policy(model, padding_side="right")


def _uses_word_eos(tokenizer) -> bool:
    return getattr(tokenizer, "eos_token", None) in (None, EOS)


def to_model_text(tokenizer, text: str) -> str:
    """A text of the language as the tokenizer should see it: the word ``<eos>`` -> the tokenizer's eos token.

    ``"the phone is great . <eos>"`` becomes ``"the phone is great .<|endoftext|>"`` for GPT-2 (the special token
    is matched whole by the tokenizer); unchanged for the word-level tokenizer.
    """
    if _uses_word_eos(tokenizer):
        return text
    return text.replace(" " + EOS, tokenizer.eos_token).replace(EOS, tokenizer.eos_token)


def from_model_text(tokenizer, text: str) -> str:
    """A decoded response as the language functions read it: the tokenizer's eos token -> the word ``<eos>``.

    Inverse of :func:`to_model_text` on the texts of the language (``gold_reward`` splits on whitespace, so the
    separating space is all it needs); unchanged for the word-level tokenizer.
    """
    if _uses_word_eos(tokenizer):
        return text
    return text.replace(tokenizer.eos_token, " " + EOS)


def build_bpe_tokenizer(vocab_size: int = 400, n_texts: int = 2000, seed: int = 0, texts=None):
    """A GPT-2-style byte-level BPE tokenizer trained on the review language (offline, deterministic).

    Like GPT-2's: a byte-level pre-tokenizer (a space becomes part of the next token, ``Ġgreat``), one special
    token ``<|endoftext|>`` that is both bos and eos, pad = eos, no post-processor (nothing is prepended). The
    training texts are ``n_texts`` reviews sampled with ``seed``, converted by :func:`to_model_text`, so the merges
    see the end-of-text token where GPT-2 would; ``texts`` (a list of strings) replaces them, e.g. chapter 7's
    problems, whose digits then merge as GPT-2's do. Returns a ``PreTrainedTokenizerFast``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    vocab_size = check_positive_int("vocab_size", vocab_size, 260)
    n_texts = check_positive_int("n_texts", n_texts)
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[GPT2_EOS],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    if texts is None:
        texts = [t.replace(" " + EOS, "") for t in sample_texts(n_texts, seed)]
    elif isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings (or None: reviews of the book's language)")
    core.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=GPT2_EOS,
        eos_token=GPT2_EOS,
        unk_token=GPT2_EOS,
        pad_token=GPT2_EOS,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
    return tok


def save_random_gpt2(folder: str | Path, tokenizer=None, seed: int = 0, **config: Any) -> Path:
    """Write a randomly initialised ``GPT2LMHeadModel`` and its tokenizer to ``folder`` (``save_pretrained``).

    ``config`` overrides fields of ``transformers.GPT2Config()`` (whose defaults are the real GPT-2 124M:
    12 layers, width 768, 12 heads, 1024 positions); ``vocab_size`` defaults to the tokenizer's length (default
    tokenizer: :func:`build_bpe_tokenizer`). Dropout is switched off, as in the book's tiny models. The folder then
    stands in for a downloaded checkpoint: ``--model FOLDER``.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from rl4llm.lm.model import quiet_loading

    tokenizer = build_bpe_tokenizer() if tokenizer is None else tokenizer
    fields = {
        "vocab_size": len(tokenizer),
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **config,
    }
    torch.manual_seed(check_positive_int("seed", seed, 0))
    model = GPT2LMHeadModel(GPT2Config(**fields))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_loading():  # no "Writing model shards" bar
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class TaskTokenizer:
    """A Hugging Face tokenizer behind the interface of chapter 7's character tokenizer.

    ``encode(text)`` is the tokenizer's ids of ``text`` (no special tokens added by the tokenizer) after
    ``bos_token_id`` (GPT-2's ``<|endoftext|>``: it also starts a document); ``decode(ids)`` stops at the first
    ``eos_token_id`` and drops special tokens, so the verifier reads ``"7+8=15;4+3+1=8#85"``, never the end-of-text
    token. ``pad_token_id`` falls back to eos (GPT-2 has no pad token).
    """

    def __init__(self, tokenizer) -> None:
        if getattr(tokenizer, "eos_token_id", None) is None:
            raise ValueError("tokenizer must have an eos token (eos_token_id is None)")
        self.tokenizer = tokenizer
        self.eos_token_id = int(tokenizer.eos_token_id)
        bos = getattr(tokenizer, "bos_token_id", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.bos_token_id = self.eos_token_id if bos is None else int(bos)
        self.pad_token_id = self.eos_token_id if pad is None else int(pad)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str, *, bos: bool = True) -> list[int]:
        """Token ids of ``text`` (with a leading bos unless ``bos=False``)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ([self.bos_token_id] if bos else []) + list(ids)

    def decode(self, ids) -> str:
        """Text of ``ids`` up to the first eos, special tokens dropped."""
        ids = [int(i) for i in ids]
        if self.eos_token_id in ids:
            ids = ids[: ids.index(self.eos_token_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def resolve_reasoning_policy(model: str = "reasoning"):
    """``(model, tokenizer)`` for chapter 7's task: ``"reasoning"`` is the shipped SFT checkpoint
    (:func:`rl4llm.rlvr.load_reasoning_lm`, character tokenizer); anything else is :func:`resolve_policy`'s model
    with its tokenizer wrapped in :class:`TaskTokenizer` (a BPE GPT-2 reads the same prompt texts)."""
    model = check_model_name(model)
    if model == "reasoning":
        from rl4llm.rlvr.pretrain import load_reasoning_lm

        return load_reasoning_lm()
    policy, tokenizer = resolve_policy(model)
    return policy, TaskTokenizer(tokenizer)
