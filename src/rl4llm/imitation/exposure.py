"""Measuring exposure bias: is a generation still inside the language after ``t`` tokens? (book section 3.3)

A language model trained only on expert text (SFT, behaviour cloning on tokens) is *exposed* only to expert
prefixes; when it generates, it conditions on its own. This module measures, position by position, what happens
to a batch of generated texts. It works for single reviews (what the RLHF chapter generates) and for *streams*,
long generations made of reviews one after another, each ended by :data:`~rl4llm.lm.EOS`.

The expert is the grammar (:func:`rl4llm.lm.expert_next_distribution`) applied to the *current review*, the words
after the last ``<eos>``: inside the language it gives the grammar's next-word distribution; once the current
review has left the language nothing can repair it, and the expert ends it with ``<eos>`` (after which a fresh
review may start). For texts :math:`y^1, \\dots, y^n` and positions :math:`t = 1, \\dots, H`,
:func:`validity_by_position` returns

* ``inside[t]``: the fraction of texts whose first :math:`t` words are all inside the language (every review so
  far is a valid review or a valid beginning of one). Once left, never regained;
* ``intact[t]``: the fraction whose *current* review is still inside the language after word :math:`t`. A stream
  that ends a broken review with ``<eos>`` is intact again, the way the tightrope walker climbs back on the rope;
* ``off_language[t]``: the fraction whose word :math:`t` is one the expert would never write at that prefix:
  :math:`c_t = \\mathbb 1[\\pi^*(y_t \\mid y_{<t}) = 0]`, the 0-1 cost against the expert of Theorems 1.1 and 1.4.
  Its running sum :attr:`ValidityCurves.cumulative_cost` is the expected total cost of the first :math:`t` words;
* ``falls[t]``: the fraction whose word :math:`t` is off-language *while the current review was still intact*
  (a new mistake, as opposed to the words written after one). ``off_language.sum() / falls.sum()``
  (:meth:`ValidityCurves.cost_per_fall`) is how many off-language words one mistake costs: 1 for a learner that
  ends a broken review at once, more for one that carries on. ``fall_costs`` lists that cost for every
  mistake (the mistake itself plus the words written before the broken review is ended; a review still broken
  at the horizon counts what was written by then).

A text shorter than :math:`H` (a single review that ended) keeps its final ``inside`` / ``intact`` value and costs
nothing after its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rl4llm.lm.language import EOS, expert_next_distribution, valid_next, words_of
from rl4llm.utils import check_positive_int

__all__ = ["current_review", "stream_expert", "ValidityCurves", "validity_by_position", "mark_off_language"]


def current_review(words: str | Sequence[str]) -> list[str]:
    """The words after the last :data:`~rl4llm.lm.EOS` (the review being written); ``[]`` right after one."""
    words = words_of(words)
    k = len(words) - 1
    while k >= 0 and words[k] != EOS:
        k -= 1
    return words[k + 1 :]


def stream_expert(words: str | Sequence[str], positivity: float = 0.5) -> dict[str, float]:
    """The expert's next-word distribution after ``words``: the grammar's, for the current review.

    ``{EOS: 1.0}`` once the current review has left the language (end it; a new review may follow).
    """
    return expert_next_distribution(current_review(words), positivity)


def _review_ok(review: list[str]) -> bool:
    """Is the (unfinished) review still inside the language? The empty review is."""
    return not review or bool(valid_next(review))


@dataclass
class ValidityCurves:
    """Per-position validity of ``n`` generated texts (see the module docstring); arrays of length ``horizon``.

    Index ``t - 1`` holds the value after ``t`` words.
    """

    inside: np.ndarray
    intact: np.ndarray
    off_language: np.ndarray
    falls: np.ndarray
    n: int
    fall_costs: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def horizon(self) -> int:
        return int(self.inside.shape[0])

    @property
    def cumulative_cost(self) -> np.ndarray:
        """Mean number of off-language words among the first ``t`` words: :math:`\\sum_{s \\le t} c_s`."""
        return np.cumsum(self.off_language)

    def cost_per_fall(self) -> float:
        """Off-language words per mistake made in an intact review (0 if there was none)."""
        falls = float(self.falls.sum())
        return float(self.off_language.sum()) / falls if falls > 0 else 0.0

    def ended_at_once(self) -> float:
        """Share of mistakes after which the broken review was ended by the very next word (0 if none)."""
        return float(np.mean(self.fall_costs == 1)) if self.fall_costs.size else 0.0

    def summary(self) -> dict[str, float]:
        """Final figures: inside and intact rates after the last position, mean intact rate, total cost,
        mistakes (falls) per text, off-language words per mistake and the share of mistakes ended at once."""
        return {
            "inside_final": float(self.inside[-1]),
            "intact_final": float(self.intact[-1]),
            "intact_mean": float(self.intact.mean()),
            "total_cost": float(self.off_language.sum()),
            "falls": float(self.falls.sum()),
            "cost_per_fall": self.cost_per_fall(),
            "ended_at_once": self.ended_at_once(),
        }


def validity_by_position(texts: Sequence[str | Sequence[str]], horizon: int) -> ValidityCurves:
    """Inside, intact and off-language rates of ``texts`` at every position ``t = 1..horizon``.

    Args:
        texts: generated texts, as strings (words separated by spaces, e.g. decoded token ids) or word lists.
            ``<bos>`` and ``<pad>`` are ignored; words beyond ``horizon`` are not looked at.
        horizon: number of positions ``H`` to measure (>= 1).
    """
    horizon = check_positive_int("horizon", horizon)
    if len(texts) == 0:
        raise ValueError("texts must not be empty")
    n = len(texts)
    inside = np.zeros((n, horizon))
    intact = np.zeros((n, horizon))
    off = np.zeros((n, horizon))
    falls = np.zeros((n, horizon))
    fall_costs: list[int] = []
    for i, text in enumerate(texts):
        words = words_of(text)[:horizon]
        review: list[str] = []
        ok_all = True
        run = 0  # off-language words since the current review broke (0: it is intact)
        for t, w in enumerate(words):
            allowed = valid_next(review)  # empty once the review has left the language
            if allowed:
                off[i, t] = falls[i, t] = w not in allowed
                run = 1 if w not in allowed else 0
            else:  # the review is broken: the expert would end it
                off[i, t] = w != EOS
                run += w != EOS
            ok_all = ok_all and w in allowed
            review = [] if w == EOS else review + [w]
            if run and w == EOS:  # the broken review ends (or the mistake was an early <eos>)
                fall_costs.append(run)
                run = 0
            inside[i, t] = ok_all
            intact[i, t] = _review_ok(review)
        if run:
            fall_costs.append(run)
        if len(words) < horizon:  # the text ended: hold the final state, no further cost
            last = len(words) - 1
            inside[i, last + 1 :] = inside[i, last] if last >= 0 else 1.0
            intact[i, last + 1 :] = intact[i, last] if last >= 0 else 1.0
    return ValidityCurves(
        inside=inside.mean(0),
        intact=intact.mean(0),
        off_language=off.mean(0),
        falls=falls.mean(0),
        n=n,
        fall_costs=np.asarray(fall_costs, dtype=np.int64),
    )


def mark_off_language(text: str | Sequence[str], marker: str = "[]") -> str:
    """The text with every off-language word (one the expert would not write there) wrapped in ``marker``.

    ``mark_off_language("the phone great . <eos> it works")`` is ``"the phone [great] [.] <eos> it works"``.
    """
    if not isinstance(marker, str) or len(marker) != 2:
        raise ValueError(f"marker must be a string of two characters (opening, closing), got {marker!r}")
    out, review = [], []
    for w in words_of(text):
        allowed = valid_next(review)
        bad = (w not in allowed) if allowed else (w != EOS)
        out.append(f"{marker[0]}{w}{marker[1]}" if bad else w)
        review = [] if w == EOS else review + [w]
    return " ".join(out)
