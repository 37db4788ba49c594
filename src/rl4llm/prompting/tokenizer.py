"""A character-level tokenizer for the arithmetic LM: one token per character, plus ``<pad>``, ``<bos>``, ``<eos>``.

Small on purpose: the vocabulary is every character that occurs in a prompt, a query or an answer (about 40),
so the model has to read instructions letter by letter, and the whole tokenizer is a JSON list.
"""

from __future__ import annotations

import json
from pathlib import Path

from rl4llm.prompting.task import PARAPHRASES

__all__ = ["CharTokenizer", "default_tokenizer"]

SPECIALS = ("<pad>", "<bos>", "<eos>")


class CharTokenizer:
    """Maps text to token ids one character at a time (``encode``) and back (``decode``)."""

    def __init__(self, chars: list[str]) -> None:
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters")
        self.chars = list(chars)
        self.vocab = {tok: i for i, tok in enumerate(SPECIALS)}
        for c in self.chars:
            self.vocab[c] = len(self.vocab)
        self.inverse = {i: t for t, i in self.vocab.items()}

    pad_token_id = 0
    bos_token_id = 1
    eos_token_id = 2

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, *, bos: bool = True) -> list[int]:
        """Token ids of ``text`` (with a leading ``<bos>`` unless ``bos=False``)."""
        unknown = sorted({c for c in text if c not in self.vocab})
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {unknown}")
        return ([self.bos_token_id] if bos else []) + [self.vocab[c] for c in text]

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``, stopping at the first ``<eos>`` and dropping ``<pad>``/``<bos>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_token_id:
                break
            if i in (self.pad_token_id, self.bos_token_id):
                continue
            out.append(self.inverse[i])
        return "".join(out)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": "char", "specials": list(SPECIALS), "chars": self.chars}) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "CharTokenizer":
        data = json.loads(Path(path).read_text())
        if data.get("type") != "char" or data.get("specials") != list(SPECIALS):
            raise ValueError(f"{path} is not a CharTokenizer file")
        return cls(data["chars"])


def default_tokenizer() -> CharTokenizer:
    """The tokenizer of the shipped checkpoint: digits, ``+-= ``, and the letters of every paraphrase."""
    chars = set("0123456789+-= ")
    for texts in PARAPHRASES.values():
        for t in texts:
            chars.update(t)
    return CharTokenizer(sorted(chars))
