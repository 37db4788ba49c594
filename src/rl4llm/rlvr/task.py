"""The verifiable reasoning task of chapter 7: two-digit sums and differences worked column by column.

A *problem* is chapter 6's :class:`rl4llm.prompting.task.Query` (``a + b`` or ``a - b``, ``0 <= a, b <= 99``,
``a >= b`` for a difference). The model reads the prompt ``"<a>+<b>="`` with both numbers written on two digits
(``"07+38="``), so every prompt has the same length, and writes a short chain of thought, one column per step,
then the final answer after ``#``:

==============  ==================================  =====================================
problem         worked solution                     what each step does
==============  ==================================  =====================================
``47+38``       ``7+8=15;4+3+1=8#85``               units (carry 1), tens plus the carry
``23+45``       ``3+5=8;2+4=6#68``                  no carry
``52-27``       ``12-7=5;5-1-2=2#25``               borrow ten in the units, pay it back
``57-23``       ``7-3=4;5-2=3#34``                  no borrow
==============  ==================================  =====================================

The answer is assembled from the steps' digits (tens result, then the units result's last digit), so a slip in a
step propagates to the answer, as in a real chain of thought. A demonstration may start by restating the problem
(``"47+38:"``), which makes lengths vary.

*Imperfect demonstrations* (:func:`worked_solution` with a generator): each step's result is off by one with
probability ``p_slip``, and the carry or borrow is forgotten in the tens step with probability ``p_forget``. A
model trained on them solves a problem at temperature 1 only some of the time, but its most likely chain is
right: the regime in which RL with a verifier helps.

The **verifier** is exact: reward 1 when the text after the last ``#`` is a number equal to the true answer, 0
otherwise, and 0 when there is no parsable answer. Two *flawed* verifiers (section 7.5) can be gamed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rl4llm.prompting.task import Query, sample_queries
from rl4llm.prompting.tokenizer import CharTokenizer
from rl4llm.utils import check_choice, check_positive_int, check_range

__all__ = [
    "ANSWER_MARK",
    "VERIFIERS",
    "prompt_text",
    "worked_solution",
    "parse_final_answer",
    "exact_verifier",
    "last_digit_verifier",
    "anywhere_verifier",
    "verify",
    "all_problems",
    "is_held_out",
    "held_out_problems",
    "train_problems",
    "cot_tokenizer",
]

#: The character that introduces the final answer.
ANSWER_MARK = "#"
_HELD_OUT_FRACTION = 0.2
_SPLIT_SEED = 20240205  # fixed: the split is part of the task, not of an experiment


def prompt_text(q: Query) -> str:
    """The prompt the model reads: both numbers on two digits, then ``=`` (``Query(7, 38, "+") -> "07+38="``)."""
    return f"{q.a:02d}{q.op}{q.b:02d}="


def _slip(value: int, rng: np.random.Generator | None, p_slip: float, low: int) -> int:
    if rng is None or p_slip == 0.0 or rng.random() >= p_slip:
        return value
    step = 1 if rng.random() < 0.5 else -1
    return value + step if value + step >= low else value + 1


def worked_solution(
    q: Query,
    rng: np.random.Generator | None = None,
    *,
    p_slip: float = 0.0,
    p_forget: float = 0.0,
    p_restate: float = 0.0,
) -> str:
    """The chain of thought and final answer for ``q`` (see the module docstring).

    Without ``rng`` it is the correct solution (no restatement). With ``rng``: each step's result is off by one
    with probability ``p_slip``; a carry or borrow is forgotten in the tens step with probability ``p_forget``;
    the solution starts with ``"<a><op><b>:"`` with probability ``p_restate``.
    """
    check_range("p_slip", p_slip, 0.0, 1.0)
    check_range("p_forget", p_forget, 0.0, 1.0)
    check_range("p_restate", p_restate, 0.0, 1.0)
    a1, a0, b1, b0 = q.a // 10, q.a % 10, q.b // 10, q.b % 10
    forget = rng is not None and rng.random() < p_forget
    if q.op == "+":
        units = _slip(a0 + b0, rng, p_slip, 0)
        carry = 1 if a0 + b0 >= 10 else 0
        if carry and not forget:
            tens = _slip(a1 + b1 + 1, rng, p_slip, 0)
            steps = f"{a0}+{b0}={units};{a1}+{b1}+1={tens}"
        else:
            tens = _slip(a1 + b1, rng, p_slip, 0)
            steps = f"{a0}+{b0}={units};{a1}+{b1}={tens}"
    else:
        borrow = a0 < b0
        if borrow:
            units = _slip(a0 + 10 - b0, rng, p_slip, 0)
            first = f"1{a0}-{b0}={units}"
            if forget:
                tens = _slip(a1 - b1, rng, p_slip, 0)
                second = f"{a1}-{b1}={tens}"
            else:
                tens = _slip(a1 - 1 - b1, rng, p_slip, 0)
                second = f"{a1}-1-{b1}={tens}"
        else:
            units = _slip(a0 - b0, rng, p_slip, 0)
            first = f"{a0}-{b0}={units}"
            tens = _slip(a1 - b1, rng, p_slip, 0)
            second = f"{a1}-{b1}={tens}"
        steps = f"{first};{second}"
    answer = tens * 10 + units % 10
    restate = rng is not None and rng.random() < p_restate
    head = f"{q.a}{q.op}{q.b}:" if restate else ""
    return f"{head}{steps}{ANSWER_MARK}{answer}"


def parse_final_answer(text: str) -> int | None:
    """The number after the last ``#`` of ``text``; ``None`` when there is no ``#`` or no digits-only number after
    it (``"7+8=15;4+3+1=8#85" -> 85``, ``"7+8=15" -> None``, ``"#8;5" -> None``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if ANSWER_MARK not in text:
        return None
    tail = text.rsplit(ANSWER_MARK, 1)[1]
    if not tail or not tail.isdigit() or len(tail) > 4:
        return None
    return int(tail)


def exact_verifier(q: Query, text: str) -> float:
    """1.0 when the final answer of ``text`` equals the true answer of ``q``, else 0.0 (also when unparsable)."""
    return 1.0 if parse_final_answer(text) == q.value else 0.0


def last_digit_verifier(q: Query, text: str) -> float:
    """A *flawed* verifier: 1.0 when the final answer's last digit matches the true answer's last digit."""
    got = parse_final_answer(text)
    return 1.0 if got is not None and got % 10 == q.value % 10 else 0.0


def anywhere_verifier(q: Query, text: str) -> float:
    """A *flawed* verifier: 1.0 when the true answer appears anywhere in the text as a whole number (a run of
    digits), final answer or not."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    runs, cur = [], ""
    for ch in text:
        if ch.isdigit():
            cur += ch
        elif cur:
            runs.append(cur)
            cur = ""
    if cur:
        runs.append(cur)
    return 1.0 if str(q.value) in runs else 0.0


#: The verifiers by name: ``"exact"`` is the task's reward, the others are flawed on purpose.
VERIFIERS: dict[str, Callable[[Query, str], float]] = {
    "exact": exact_verifier,
    "last-digit": last_digit_verifier,
    "anywhere": anywhere_verifier,
}


def verify(problems: Sequence[Query], texts: Sequence[str], verifier: str = "exact") -> np.ndarray:
    """Rewards ``[n]`` of ``texts[i]`` as answers to ``problems[i]`` under the named verifier."""
    check_choice("verifier", verifier, tuple(VERIFIERS))
    if len(problems) != len(texts):
        raise ValueError(f"problems and texts must have the same length, got {len(problems)} and {len(texts)}")
    fn = VERIFIERS[verifier]
    return np.array([fn(q, t) for q, t in zip(problems, texts)], dtype=np.float64)


def all_problems() -> list[Query]:
    """Every problem of the task: 100 x 100 sums and the 5050 differences with ``a >= b``."""
    out = [Query(a, b, "+") for a in range(100) for b in range(100)]
    out += [Query(a, b, "-") for a in range(100) for b in range(a + 1)]
    return out


_HELD_OUT: set[Query] | None = None


def _held_out_set() -> set[Query]:
    global _HELD_OUT
    if _HELD_OUT is None:
        probs = all_problems()
        order = np.random.default_rng(_SPLIT_SEED).permutation(len(probs))
        n = int(round(_HELD_OUT_FRACTION * len(probs)))
        _HELD_OUT = {probs[i] for i in order[:n]}
    return _HELD_OUT


def is_held_out(q: Query) -> bool:
    """Whether ``q`` is in the fixed held-out 20% of problems (never seen in pretraining or RL)."""
    return q in _held_out_set()


def _sample_split(n: int, rng: np.random.Generator, held_out: bool) -> list[Query]:
    out: list[Query] = []
    while len(out) < n:
        for q in sample_queries(max(8, 2 * (n - len(out))), rng):
            if is_held_out(q) == held_out:
                out.append(q)
                if len(out) == n:
                    break
    return out


def train_problems(n: int, rng: np.random.Generator) -> list[Query]:
    """``n`` problems from the training split, the four kinds (carry or not, borrow or not) balanced on average."""
    return _sample_split(check_positive_int("n", n), rng, held_out=False)


def held_out_problems(n: int, seed: int = 0) -> list[Query]:
    """``n`` distinct held-out problems (a fixed list for a seed), for evaluation."""
    n = check_positive_int("n", n)
    pool = sorted(_held_out_set(), key=lambda q: (q.op, q.a, q.b))
    if n > len(pool):
        raise ValueError(f"n must be <= {len(pool)} (the held-out problems), got {n}")
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[:n]]


def cot_tokenizer() -> CharTokenizer:
    """Chapter 6's character tokenizer over the task's characters: digits, ``+ - = ; : #``."""
    return CharTokenizer(sorted(set("0123456789+-=;:" + ANSWER_MARK)))
