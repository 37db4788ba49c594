"""Chapter 5 rollouts: sampling from <bos>, per-token and sequence log-probs, encoding and decoding with <eos>."""

import pytest
import torch

from rl4llm.lm import gold_reward, load_tiny_gpt2
from rl4llm.rlhf.rollout import (
    SequenceBatch,
    decode_texts,
    encode_texts,
    response_logprobs,
    sample_sequences,
    sequence_logprob,
    special_ids,
)


@pytest.fixture(scope="module")
def lm():
    return load_tiny_gpt2()


@torch.no_grad()
def slow_logprob(model, ids: list[int]) -> float:
    """log pi(ids[1:] | ids[0]) by one unpadded, uncached forward pass per token."""
    total = 0.0
    for t in range(1, len(ids)):
        logits = model(input_ids=torch.tensor([ids[:t]])).logits[0, -1]
        total += torch.log_softmax(logits.float(), -1)[ids[t]].item()
    return total


def test_decoding_keeps_eos_so_the_gold_reward_is_the_true_score(lm):
    _, tok = lm
    # hand-computed gold rewards (see rl4llm.lm.gold_reward's docstring)
    texts = [
        "the phone is great . <eos>",
        "the phone is very great ! <eos>",
        "honestly , i do not like this charger ! <eos>",
    ]
    expected = [0.5, 0.75, -0.5]
    batch = encode_texts(tok, texts, max_new_tokens=28)
    decoded = decode_texts(tok, batch)
    assert decoded == texts
    assert [gold_reward(t) for t in decoded] == pytest.approx(expected)
    # dropping <eos> would turn a finished review into an ungrammatical, unfinished one
    assert gold_reward("the phone is great .") == pytest.approx(0.5 - 1.0 - 0.5)


def test_truncated_response_is_unfinished(lm):
    _, tok = lm
    batch = encode_texts(tok, ["the phone is great . <eos>"], max_new_tokens=4)
    assert decode_texts(tok, batch) == ["the phone is great"]
    assert batch.lengths.tolist() == [4]


def test_sampled_rows_are_bos_response_eos_then_padding(lm):
    model, tok = lm
    bos, eos, pad = special_ids(tok)
    gen = torch.Generator().manual_seed(0)
    batch = sample_sequences(model, 32, 28, bos, eos, pad, generator=gen)
    assert (batch.input_ids[:, 0] == bos).all()
    assert torch.equal(batch.response_mask, batch.attention_mask[:, 1:].float())
    texts = decode_texts(tok, batch)
    for ids, mask, text in zip(batch.input_ids, batch.attention_mask, texts):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()  # right-padded
        assert (ids[n:] == pad).all()
        words = tok.convert_ids_to_tokens(ids[1:n].tolist())
        assert text == " ".join(words)
        if words[-1] == tok.eos_token:
            assert text.endswith("<eos>") and eos not in ids[1 : n - 1].tolist()
    assert sum(t.endswith("<eos>") for t in texts) >= 28  # the pretrained model almost always finishes
    # reproducible
    again = sample_sequences(model, 32, 28, bos, eos, pad, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.input_ids, batch.input_ids)


def test_logprobs_match_a_slow_loop(lm):
    model, tok = lm
    bos, eos, pad = special_ids(tok)
    batch = sample_sequences(model, 6, 28, bos, eos, pad, generator=torch.Generator().manual_seed(3))
    per_token = response_logprobs(model, batch)
    seq = sequence_logprob(model, batch)
    assert per_token.shape == batch.response_mask.shape
    assert (per_token[batch.response_mask == 0] == 0).all()
    for i in range(len(batch)):
        ids = batch.input_ids[i, : int(batch.attention_mask[i].sum())].tolist()
        expected = slow_logprob(model, ids)
        assert seq[i].item() == pytest.approx(expected, abs=1e-4)
        assert per_token[i].sum().item() == pytest.approx(expected, abs=1e-4)


def test_sequence_batch_cat_select_and_validation(lm):
    _, tok = lm
    a = encode_texts(tok, ["the phone is great . <eos>", "it works fast . <eos>"], 28)
    b = encode_texts(tok, ["i love this lamp , but the price was very bad . <eos>", "the lid is fine . <eos>"], 28)
    both = SequenceBatch.cat([a, b], pad_id=0)
    assert len(both) == 4 and both.input_ids.shape[1] == b.input_ids.shape[1]
    pick = SequenceBatch.select(torch.tensor([True, False]), a, b, pad_id=0)
    assert decode_texts(tok, pick) == [decode_texts(tok, a)[0], decode_texts(tok, b)[1]]
    with pytest.raises(ValueError, match="response_mask"):
        SequenceBatch(a.input_ids, a.attention_mask, a.response_mask[:, :-1])
    with pytest.raises(ValueError, match="max_new_tokens"):
        encode_texts(tok, ["the phone is great . <eos>"], 0)
    with pytest.raises(ValueError, match="temperature"):
        sample_sequences(load_tiny_gpt2()[0], 2, 5, 1, 2, 0, temperature=0.0)
