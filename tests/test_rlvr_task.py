"""Chapter 7's task: worked solutions, the verifiers on hand-written strings, the held-out split."""

from __future__ import annotations

import numpy as np
import pytest

from rl4llm.prompting.task import Query
from rl4llm.rlvr.task import (
    all_problems,
    anywhere_verifier,
    cot_tokenizer,
    exact_verifier,
    held_out_problems,
    is_held_out,
    last_digit_verifier,
    parse_final_answer,
    prompt_text,
    train_problems,
    verify,
    worked_solution,
)


@pytest.mark.parametrize(
    "q, text",
    [
        (Query(47, 38, "+"), "7+8=15;4+3+1=8#85"),
        (Query(23, 45, "+"), "3+5=8;2+4=6#68"),
        (Query(99, 99, "+"), "9+9=18;9+9+1=19#198"),
        (Query(52, 27, "-"), "12-7=5;5-1-2=2#25"),
        (Query(57, 23, "-"), "7-3=4;5-2=3#34"),
        (Query(52, 47, "-"), "12-7=5;5-1-4=0#5"),
    ],
)
def test_worked_solution_by_hand(q, text):
    assert worked_solution(q) == text
    assert exact_verifier(q, text) == 1.0


def test_prompt_is_fixed_width():
    assert prompt_text(Query(7, 38, "+")) == "07+38="
    assert {len(prompt_text(q)) for q in all_problems()} == {6}


def test_correct_solutions_pass_for_every_problem():
    probs = all_problems()
    assert len(probs) == 100 * 100 + 5050
    assert all(exact_verifier(q, worked_solution(q)) == 1.0 for q in probs)


def test_imperfect_demonstrations_are_often_wrong_but_well_formed():
    rng = np.random.default_rng(0)
    qs = train_problems(2000, rng)
    texts = [worked_solution(q, rng, p_slip=0.25, p_forget=0.5, p_restate=0.5) for q in qs]
    acc = verify(qs, texts).mean()
    # no-carry problems: 0.75^2 right; carry problems also need the carry (0.5): about (0.5625 + 0.28) / 2
    assert 0.35 < acc < 0.55
    assert all(parse_final_answer(t) is not None for t in texts)
    tok = cot_tokenizer()
    assert all(tok.decode(tok.encode(t, bos=False)) == t for t in texts[:50])


@pytest.mark.parametrize(
    "text, value",
    [
        ("7+8=15;4+3+1=8#85", 85),
        ("#85", 85),
        ("1#2#3", 3),
        ("7+8=15", None),
        ("#", None),
        ("#8;5", None),
        ("#85;", None),
        ("", None),
        ("#12345", None),
    ],
)
def test_parse_final_answer(text, value):
    assert parse_final_answer(text) == value


def test_verifiers_on_hand_written_strings():
    q = Query(47, 38, "+")  # 85
    assert exact_verifier(q, "7+8=15;4+3=7#75") == 0.0
    assert exact_verifier(q, "no answer") == 0.0
    assert last_digit_verifier(q, "7+8=15;4+3=7#75") == 1.0  # only the units digit is checked
    assert last_digit_verifier(q, "#84") == 0.0
    assert anywhere_verifier(q, "85;4+3=7#75") == 1.0  # the number anywhere in the text
    assert anywhere_verifier(q, "7+8=185#7") == 0.0  # a whole number, not a substring
    assert exact_verifier(q, "47+38:7+8=15;4+3+1=8#85") == 1.0


def test_verify_bad_inputs():
    with pytest.raises(ValueError, match="verifier"):
        verify([Query(1, 2, "+")], ["#3"], "fuzzy")
    with pytest.raises(ValueError, match="same length"):
        verify([Query(1, 2, "+")], ["#3", "#3"])


def test_held_out_split_is_fixed_and_disjoint():
    held = held_out_problems(500)
    assert len(set(held)) == 500 and all(is_held_out(q) for q in held)
    assert held == held_out_problems(500)
    assert not any(is_held_out(q) for q in train_problems(500, np.random.default_rng(1)))
    share = np.mean([is_held_out(q) for q in all_problems()])
    assert share == pytest.approx(0.2, abs=1e-3)
    with pytest.raises(ValueError, match="n must"):
        held_out_problems(10**6)
