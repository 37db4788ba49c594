"""Chapter 6: the arithmetic task, its checker and the character tokenizer."""

import numpy as np
import pytest

from rl4llm.prompting.task import (
    FORMATS,
    PROMPTS,
    QUERY_TYPES,
    Query,
    check_answer,
    model_input,
    parse_answer,
    query_features,
    query_type,
    render_answer,
    sample_queries,
    sample_query,
)
from rl4llm.prompting.tokenizer import CharTokenizer, default_tokenizer


def prompt_of(fmt: str, paraphrase: int = 0):
    return next(p for p in PROMPTS if p.format == fmt and p.paraphrase == paraphrase)


def test_checker_hand_cases():
    q = Query(27, 45, "+")  # 72
    assert q.value == 72
    cases = {
        "direct": {"72": True, "27": False, "072": True, "7 2": False, "": False},
        "reversed": {"27": True, "72": False},
        "spaced": {"7 2": True, "72": False, "7  2": False},
        "padded": {"072": True, "72": False, "0072": False},
    }
    for fmt, answers in cases.items():
        for ans, ok in answers.items():
            assert check_answer(q, prompt_of(fmt), ans) is ok, (fmt, ans)
    assert check_answer(Query(52, 27, "-"), prompt_of("reversed"), "52")  # 25 written units first
    assert check_answer(Query(5, 5, "-"), prompt_of("padded"), "000")


def test_query_types_hand_cases():
    assert query_type(27, 45, "+") == "add-carry"
    assert query_type(23, 45, "+") == "add-no-carry"
    assert query_type(5, 5, "+") == "add-carry"
    assert query_type(52, 27, "-") == "sub-borrow"
    assert query_type(57, 23, "-") == "sub-no-borrow"
    assert query_type(50, 50, "-") == "sub-no-borrow"


def test_render_parse_roundtrip_every_value_and_format():
    for fmt in FORMATS:
        for v in range(0, 199):
            assert parse_answer(render_answer(v, fmt), fmt) == v
    assert render_answer(105, "reversed") == "501"
    assert render_answer(105, "spaced") == "1 0 5"
    assert render_answer(7, "padded") == "007"


def test_prompts_twelve_with_four_held_out():
    assert len(PROMPTS) == 12 and [p.id for p in PROMPTS] == list(range(12))
    assert sum(not p.logged for p in PROMPTS) == 4
    assert {p.format for p in PROMPTS if not p.logged} == set(FORMATS)
    assert [p.format for p in PROMPTS[:4]] == list(FORMATS)  # the first K cover as many formats as possible


def test_sampling_balanced_types_and_nonnegative():
    rng = np.random.default_rng(0)
    qs = sample_queries(400, rng)
    counts = {t: sum(q.type == t for q in qs) for t in QUERY_TYPES}
    assert all(c == 100 for c in counts.values())
    assert all(0 <= q.a <= 99 and 0 <= q.b <= 99 and q.value >= 0 for q in qs)
    for t in QUERY_TYPES:
        assert sample_query(t, rng).type == t


def test_query_features_hand_case():
    f = query_features([Query(27, 45, "+"), Query(90, 9, "-")])
    assert f.shape == (2, 5)
    np.testing.assert_allclose(f[0], np.array([2, 7, 4, 5, 0]) / np.array([9, 9, 9, 9, 1]), rtol=1e-6)
    np.testing.assert_allclose(f[1], [1.0, 0.0, 0.0, 1.0, 1.0], rtol=1e-6)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="fmt"):
        render_answer(3, "roman")
    with pytest.raises(ValueError, match="fmt"):
        parse_answer("3", "roman")
    with pytest.raises(ValueError, match="qtype"):
        sample_query("mul", np.random.default_rng(0))
    with pytest.raises(ValueError, match="n must be"):
        sample_queries(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="op"):
        query_type(1, 2, "*")
    with pytest.raises(ValueError, match="value"):
        render_answer(-1, "direct")


def test_tokenizer_roundtrip_and_unknown_chars(tmp_path):
    tok = default_tokenizer()
    for p in PROMPTS:
        text = model_input(Query(98, 7, "-"), p) + "9 1"
        ids = tok.encode(text)
        assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
        assert tok.decode(ids + [tok.eos_token_id, 5, 6]) == text
    tok.save(tmp_path / "t.json")
    assert CharTokenizer.load(tmp_path / "t.json").vocab == tok.vocab
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("12*3")
