"""The arithmetic task behind chapter 6: queries, prompts (answer formats and their paraphrases), the checker.

A *query* is ``a + b`` or ``a - b`` with ``0 <= a, b <= 99`` (and ``a >= b`` for subtraction, so answers are
never negative). Its *type* says what the digit-wise algorithm has to do:

=================  =====================================================
``add-no-carry``   ``a + b`` where the units do not overflow (23+45)
``add-carry``      ``a + b`` where ``units(a) + units(b) >= 10`` (27+45)
``sub-no-borrow``  ``a - b`` where ``units(a) >= units(b)`` (57-23)
``sub-borrow``     ``a - b`` where ``units(a) < units(b)`` (52-27)
=================  =====================================================

A *prompt* is an instruction that asks for one of four answer *formats*, each said in three paraphrases:

=============  =========  =====================  ==========================
format         written    paraphrases            answer to 27+45
=============  =========  =====================  ==========================
``direct``     72         ans: / answer: / result:        ``72``
``reversed``   27         rev: / reversed: / backwards:   ``27`` (units first)
``spaced``     7 2        digits: / spell: / one by one:  ``7 2``
``padded``     072        pad: / 3 digits: / zero pad:    ``072``
=============  =========  =====================  ==========================

The model's input is ``"<prompt> <a><op><b>="`` and it writes the answer; :func:`check_answer` parses the answer in
the prompt's format and compares it with the true value. An answer in the wrong format is wrong. The first two
paraphrases of every format appear in the offline logs; the third is a *held-out prompt* (see
``book/06-prompting/2-prompt-oirl.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl4llm.utils import check_choice, check_positive_int

__all__ = [
    "QUERY_TYPES",
    "FORMATS",
    "PARAPHRASES",
    "Prompt",
    "Query",
    "PROMPTS",
    "query_type",
    "sample_query",
    "sample_queries",
    "render_answer",
    "parse_answer",
    "check_answer",
    "model_input",
    "query_features",
    "QUERY_FEATURE_DIM",
]

QUERY_TYPES: tuple[str, ...] = ("add-no-carry", "add-carry", "sub-no-borrow", "sub-borrow")
FORMATS: tuple[str, ...] = ("direct", "reversed", "spaced", "padded")
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "direct": ("ans:", "answer:", "result:"),
    "reversed": ("rev:", "reversed:", "backwards:"),
    "spaced": ("digits:", "spell:", "one by one:"),
    "padded": ("pad:", "3 digits:", "zero pad:"),
}


@dataclass(frozen=True)
class Query:
    """One arithmetic query ``a op b`` (``op`` is ``"+"`` or ``"-"``)."""

    a: int
    b: int
    op: str

    @property
    def value(self) -> int:
        return self.a + self.b if self.op == "+" else self.a - self.b

    @property
    def text(self) -> str:
        return f"{self.a}{self.op}{self.b}"

    @property
    def type(self) -> str:
        return query_type(self.a, self.b, self.op)


@dataclass(frozen=True)
class Prompt:
    """One prompt: an answer format and the instruction text that asks for it."""

    id: int
    format: str
    text: str
    paraphrase: int  # 0, 1, 2; paraphrase 2 is held out of the offline logs

    @property
    def logged(self) -> bool:
        return self.paraphrase < 2


#: All twelve prompts, ordered by paraphrase then format, so the first ``K`` prompts cover as many formats as they can.
PROMPTS: tuple[Prompt, ...] = tuple(
    Prompt(id=j * len(FORMATS) + i, format=f, text=PARAPHRASES[f][j], paraphrase=j)
    for j in range(3)
    for i, f in enumerate(FORMATS)
)


def query_type(a: int, b: int, op: str) -> str:
    """The query's type: whether its units column carries (addition) or borrows (subtraction)."""
    check_choice("op", op, ("+", "-"))
    if op == "+":
        return "add-carry" if (a % 10 + b % 10) >= 10 else "add-no-carry"
    return "sub-borrow" if (a % 10) < (b % 10) else "sub-no-borrow"


def sample_query(qtype: str, rng: np.random.Generator) -> Query:
    """A uniformly random query of type ``qtype`` (rejection sampling over ``0 <= a, b <= 99``)."""
    check_choice("qtype", qtype, QUERY_TYPES)
    op = "+" if qtype.startswith("add") else "-"
    while True:
        a, b = (int(x) for x in rng.integers(0, 100, size=2))
        if op == "-" and a < b:
            a, b = b, a
        if query_type(a, b, op) == qtype:
            return Query(a, b, op)


def sample_queries(n: int, rng: np.random.Generator) -> list[Query]:
    """``n`` queries, types balanced (type ``i % 4`` for the ``i``-th), in a shuffled order."""
    check_positive_int("n", n)
    types = [QUERY_TYPES[i % len(QUERY_TYPES)] for i in range(n)]
    order = rng.permutation(n)
    return [sample_query(types[i], rng) for i in order]


def render_answer(value: int, fmt: str) -> str:
    """The answer ``value`` written in format ``fmt`` (see the module docstring)."""
    check_choice("fmt", fmt, FORMATS)
    if value < 0:
        raise ValueError(f"value must be >= 0, got {value}")
    s = str(int(value))
    if fmt == "direct":
        return s
    if fmt == "reversed":
        return s[::-1]
    if fmt == "spaced":
        return " ".join(s)
    return s.zfill(3)


def parse_answer(answer: str, fmt: str) -> int | None:
    """Read an answer written in format ``fmt``; ``None`` when it is not a well-formed answer in that format."""
    check_choice("fmt", fmt, FORMATS)
    if fmt == "spaced":
        parts = answer.split(" ")
        if not parts or any(len(p) != 1 or not p.isdigit() for p in parts):
            return None
        return int("".join(parts))
    if not answer or not answer.isdigit():
        return None
    if fmt == "direct":
        return int(answer)
    if fmt == "reversed":
        return int(answer[::-1])
    return int(answer) if len(answer) == 3 else None


def check_answer(query: Query, prompt: Prompt, answer: str) -> bool:
    """The checker: is ``answer`` the right value, written in the format ``prompt`` asked for?"""
    return parse_answer(answer, prompt.format) == query.value


def model_input(query: Query, prompt: Prompt) -> str:
    """The text the LM reads before it answers: ``"<prompt> <a><op><b>="``."""
    return f"{prompt.text} {query.text}="


QUERY_FEATURE_DIM = 5


def query_features(queries: list[Query]) -> np.ndarray:
    """Simple features of queries, ``[n, 5]``: the tens and units digits of ``a`` and of ``b`` divided by 9, and
    ``op`` (1 for ``-``, 0 for ``+``).

    They say nothing about carries or borrows directly: the reward model has to discover which digit
    combinations make which prompt fail (a carry is ``units(a) + units(b) >= 10``, a line in two of the columns).
    """
    out = np.zeros((len(queries), QUERY_FEATURE_DIM), dtype=np.float32)
    for i, q in enumerate(queries):
        out[i, :4] = np.array([q.a // 10, q.a % 10, q.b // 10, q.b % 10], dtype=np.float32) / 9.0
        out[i, 4] = 1.0 if q.op == "-" else 0.0
    return out
