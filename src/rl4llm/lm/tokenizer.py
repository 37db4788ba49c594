"""The word-level tokenizer of the book's language, as a Hugging Face ``PreTrainedTokenizerFast``.

One token per word of :mod:`rl4llm.lm.language` (punctuation included), plus four special tokens inside the
vocabulary: ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3. It is built with the ``tokenizers`` library
(a ``WordLevel`` model behind a whitespace pre-tokenizer) and wrapped as a ``PreTrainedTokenizerFast``, so it
behaves like GPT-2's tokenizer for everything the book does: ``tokenizer(texts, padding=True)``,
``decode``, ``save_pretrained`` / ``AutoTokenizer.from_pretrained``.

Encoding prepends ``<bos>`` (a post-processor), so ``tokenizer("")`` is the one-token prompt ``[<bos>]`` that
unconditional generation starts from; texts of the language already end with the word ``<eos>``, which maps to
the end-of-sequence id. Decoding joins words with single spaces, so ``gold_reward(tokenizer.decode(ids))`` works
on generated ids directly (``<bos>``/``<pad>`` are ignored by the language functions).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from rl4llm.lm.language import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, vocabulary

__all__ = ["build_tokenizer", "word_vocab"]


def word_vocab() -> dict[str, int]:
    """Token -> id: the special tokens first (``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``), then the words, sorted."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in vocabulary():
        if w not in vocab:
            vocab[w] = len(vocab)
    return vocab


def build_tokenizer(padding_side: str = "right") -> PreTrainedTokenizerFast:
    """A fresh word-level tokenizer for the book's language (deterministic: same vocabulary, same ids).

    ``padding_side`` is ``"right"`` (training batches) or ``"left"`` (generation); the sampling helpers of
    :mod:`rl4llm.lm.generation` re-pad prompts themselves, so either works with them.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    vocab = word_vocab()
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side=padding_side,
        model_max_length=64,
        clean_up_tokenization_spaces=False,
    )
    return tok
