"""The synthetic review language: grammar, parser, expert oracle, gold reward, tokenizer."""

import numpy as np
import pytest

from rl4llm.lm import language as L
from rl4llm.lm.tokenizer import build_tokenizer


def test_automaton_is_deterministic_and_normalised():
    for state in L.GRAMMAR:
        probs, nexts = L._transitions(state, 0.5)
        assert set(probs) == set(nexts)
        if state != L.FINAL_STATE:
            assert sum(probs.values()) == pytest.approx(1.0)
        # every class expansion produced distinct words (a word twice would have raised)
        n_words = sum(len(L._expand(c, p, 0.5)) for c, p, _ in L.GRAMMAR[state])
        assert n_words == len(probs)


def test_samples_parse_end_with_eos_and_are_seeded():
    texts = L.sample_texts(300, np.random.default_rng(0))
    assert all(L.parses(t) for t in texts)
    assert all(t.split()[-1] == L.EOS for t in texts)
    assert L.sample_texts(20, 5) == L.sample_texts(20, 5)
    assert L.sample_texts(20, 5) != L.sample_texts(20, 6)
    assert max(len(t.split()) for t in texts) <= L.MAX_WORDS


def test_parser_rejects_non_language_text():
    assert L.parses("the phone is great . <eos>")
    assert L.parses("<bos> the phone is great . <eos> <pad> <pad>")  # decoded ids
    assert not L.parses("the phone is great .")  # no end token
    assert not L.parses("the phone is great great . <eos>")
    assert not L.parses("great great great <eos>")
    assert not L.parses("the phone is great . the phone is great . the phone is great . <eos>")  # 3 clauses
    assert not L.parses("")
    assert L.parse_rate(["the lamp was bad ! <eos>", "lamp <eos>"]) == 0.5


def test_valid_next_and_expert_distribution():
    assert L.valid_next([]) == {"honestly", "well", "overall", "basically", "frankly", "the", "this", "my", "i", "it"}
    assert L.valid_next("the phone") == {"is", "was"}
    assert L.valid_next("the phone is great .") >= {L.EOS, "the", "i"}
    assert L.valid_next("the the") == set()
    d = L.expert_next_distribution("the phone")
    assert d == pytest.approx({"is": 0.5, "was": 0.5})
    d = L.expert_next_distribution("the phone is", positivity=1.0)
    assert sum(d.values()) == pytest.approx(1.0)
    assert "terrible" not in d and d["great"] > 0
    # right after "not" the sentiment is swapped, so positivity 1 picks negative adjectives (positive meaning)
    d = L.expert_next_distribution("the phone is not", positivity=1.0)
    assert "terrible" in d and "great" not in d
    assert L.expert_next_distribution("phone phone") == {L.EOS: 1.0}
    assert L.expert_next_distribution("the phone is great . <eos>") == {}


def test_expert_distribution_matches_sampling_frequencies():
    rng = np.random.default_rng(1)
    texts = L.sample_texts(4000, rng)
    first = [t.split()[0] for t in texts]
    d = L.expert_next_distribution([])
    for w in ("the", "i", "it"):
        assert first.count(w) / len(first) == pytest.approx(d[w], abs=0.03)


def test_gold_reward_hand_computed():
    assert L.gold_reward("the phone is great . <eos>") == pytest.approx(0.5)
    assert L.gold_reward("the phone is very great ! <eos>") == pytest.approx(0.75)
    assert L.gold_reward("the phone is not great . <eos>") == pytest.approx(-0.5)
    assert L.gold_reward("i do not like this lamp . <eos>") == pytest.approx(-0.5)
    assert L.gold_reward("the lamp is okay . <eos>") == 0.0
    # two positive clauses saturate at 1; a repeated noun costs 0.25
    assert L.gold_reward("the phone is great . my lamp is very nice . <eos>") == pytest.approx(1.0)
    assert L.gold_reward("the phone is great . my phone is very nice . <eos>") == pytest.approx(0.75)
    # the hack a positive-word-loving proxy would find: S = 1, ungrammatical -1, three repeats -0.75
    assert L.gold_reward("great great great great <eos>") == pytest.approx(-0.75)
    # cut off: ungrammatical and no end token
    assert L.gold_reward("the phone is great .") == pytest.approx(0.5 - 1.0 - 0.5)
    # over-length: 30 words of "," (not content words) + eos: 6 words over the limit
    assert L.gold_reward(" ".join([","] * 30) + " <eos>") == pytest.approx(-1.0 - 0.05 * 6)
    assert L.gold_reward("<bos> the phone is great . <eos> <pad>") == pytest.approx(0.5)


def test_gold_reward_vectorised_and_positivity_shifts_it():
    texts = ["the phone is great . <eos>", "great great great great <eos>"]
    np.testing.assert_allclose(L.gold_reward(texts), [0.5, -0.75])
    np.testing.assert_allclose(L.gold_rewards(texts), [0.5, -0.75])
    means = [L.gold_reward(L.sample_texts(500, 3, positivity=p)).mean() for p in (0.0, 0.5, 1.0)]
    assert means[0] < -0.4 and abs(means[1]) < 0.1 and means[2] > 0.4


def test_bad_arguments():
    with pytest.raises(ValueError, match="positivity"):
        L.sample_texts(3, 0, positivity=1.5)
    with pytest.raises(ValueError, match="positivity"):
        L.expert_next_distribution([], positivity=-0.1)
    with pytest.raises(ValueError, match="n"):
        L.sample_texts(-1, 0)


def test_tokenizer_ids_roundtrip_and_save_pretrained(tmp_path):
    from transformers import AutoTokenizer

    tok = build_tokenizer()
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == len(L.vocabulary()) + 3  # <eos> is a word of the language; +<pad>, <bos>, <unk>
    text = "honestly , the phone is not great ! <eos>"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == len(text.split()) + 1
    assert tok.decode(ids) == "<bos> " + text
    assert tok.decode(ids, skip_special_tokens=True) == text.removesuffix(" <eos>")
    assert tok("")["input_ids"] == [tok.bos_token_id]
    assert tok("zebra great")["input_ids"] == [1, tok.unk_token_id, tok.convert_tokens_to_ids("great")]
    batch = tok(["the lamp is bad . <eos>", "it works ! <eos>"], padding=True)
    assert batch["input_ids"][1][-1] == tok.pad_token_id and batch["attention_mask"][1][-1] == 0
    tok.save_pretrained(tmp_path)
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    assert tok2(text)["input_ids"] == ids
    assert tok2.decode(ids) == tok.decode(ids)
    assert (tok2.pad_token_id, tok2.bos_token_id, tok2.eos_token_id) == (0, 1, 2)
    with pytest.raises(ValueError, match="padding_side"):
        build_tokenizer(padding_side="middle")
