"""Exposure bias on tokens: the validity measurement, the labels, the loss, rollouts and the experiment's config."""

import math

import numpy as np
import pytest
import torch

from rl4llm.imitation import (
    TokenDataset,
    current_review,
    generate_streams,
    mark_off_language,
    sample_streams,
    soft_cross_entropy,
    stream_expert,
    validity_by_position,
)
from rl4llm.lm import EOS, build_tokenizer, expert_next_distribution, make_tiny_gpt2, valid_next


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_current_review_and_stream_expert():
    assert current_review("the phone is great . <eos> it works") == ["it", "works"]
    assert current_review("the phone is great . <eos>") == []
    assert stream_expert("the phone is great . <eos>") == expert_next_distribution([])  # a new review starts
    assert stream_expert("the phone great") == {EOS: 1.0}  # broken: the expert ends the review
    assert stream_expert("the phone is") == expert_next_distribution("the phone is")


def test_validity_by_position_hand_checked_stream():
    # "great" cannot follow "the phone" (a copula is missing): a fall at t = 3. The expert would then end the
    # review; "." is off-language too, "<eos>" is what the expert says. The second review is valid.
    text = "the phone great . <eos> it works fine . <eos>"
    c = validity_by_position([text], 10)
    assert c.off_language.tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert c.falls.tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert c.inside.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert c.intact.tolist() == [1, 1, 0, 0, 1, 1, 1, 1, 1, 1]  # back on the rope after <eos>
    assert c.cumulative_cost.tolist() == [0, 0, 1, 2, 2, 2, 2, 2, 2, 2]
    assert c.cost_per_fall() == 2.0
    assert c.fall_costs.tolist() == [2] and c.ended_at_once() == 0.0
    assert mark_off_language(text) == "the phone [great] [.] <eos> it works fine . <eos>"


def test_validity_by_position_averages_and_holds_finished_texts():
    good = "the phone is great . <eos>"  # 6 words, parses
    bad = "the phone is is"  # leaves the language at word 4, cut there
    c = validity_by_position([good, bad.split()], 8)
    assert c.n == 2
    assert c.inside.tolist() == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5]  # the finished review stays inside
    assert c.off_language.tolist() == [0, 0, 0, 0.5, 0, 0, 0, 0]  # nothing is written after a text ends
    s = c.summary()
    assert s["inside_final"] == 0.5 and s["total_cost"] == 0.5 and s["falls"] == 0.5
    assert c.fall_costs.tolist() == [1] and s["ended_at_once"] == 1.0  # cut right after the mistake
    early = validity_by_position(["the phone <eos> it works fine . <eos>"], 8)  # an early <eos> is a mistake
    assert early.off_language.tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert early.fall_costs.tolist() == [1] and early.intact.tolist() == [1] * 8
    with pytest.raises(ValueError, match="texts"):
        validity_by_position([], 5)
    with pytest.raises(ValueError, match="horizon"):
        validity_by_position([good], 0)


def test_expert_demonstrations_are_inside_the_language():
    streams = sample_streams(20, 30, np.random.default_rng(0))
    assert all(len(s) == 30 for s in streams)
    c = validity_by_position(streams, 30)
    assert (c.inside == 1).all() and (c.off_language == 0).all()
    assert any(EOS in s for s in streams)  # several reviews per stream


def test_soft_cross_entropy_hand_computed():
    # uniform logits over V = 4: -sum_a q_a log(1/4) = log 4 for any distribution q
    logits = torch.zeros(2, 3, 4)
    q = torch.tensor([0.7, 0.1, 0.1, 0.1]).expand(2, 3, 4)
    assert float(soft_cross_entropy(logits, q, torch.ones(2, 3))) == pytest.approx(math.log(4), rel=1e-6)
    # one-hot targets give the ordinary next-token loss; masked positions do not count
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[1, 4, 0], [2, 2, 3]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    expected = torch.nn.functional.cross_entropy(logits[mask.bool()], labels[mask.bool()])
    got = soft_cross_entropy(logits, torch.nn.functional.one_hot(labels, 5).float(), mask)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="targets"):
        soft_cross_entropy(logits, torch.zeros(2, 3, 4), mask)
    with pytest.raises(ValueError, match="mask"):
        soft_cross_entropy(logits, torch.zeros(2, 3, 5), torch.ones(3))


def test_token_dataset_labels(tokenizer):
    words = "the phone great . <eos> it".split()
    ids = tokenizer.get_vocab()
    expert = TokenDataset.from_words([words], tokenizer, labels="expert")
    demo = TokenDataset.from_words([words], tokenizer, labels="demonstrated")
    assert expert.input_ids[0].tolist() == [tokenizer.bos_token_id] + [ids[w] for w in words[:-1]]
    assert expert.n_labels == len(words)
    assert torch.allclose(expert.targets[0].sum(-1), torch.ones(len(words)))
    # position 1 labels the word after "the": exactly the grammar's valid set
    support = {w for w, i in ids.items() if expert.targets[0, 1, i] > 0}
    assert support == valid_next(["the"])
    # after the broken "the phone great" the expert says <eos>, whatever the text did
    assert float(expert.targets[0, 3, tokenizer.eos_token_id]) == 1.0
    assert demo.targets[0].argmax(-1).tolist() == [ids[w] for w in words]
    both = expert.concat(TokenDataset.from_words([words[:3]], tokenizer))
    assert len(both) == 2 and both.n_labels == len(words) + 3
    assert both.input_ids[1, 3:].tolist() == [tokenizer.pad_token_id] * 3
    with pytest.raises(ValueError, match="labels"):
        TokenDataset.from_words([words], tokenizer, labels="teacher")
    with pytest.raises(ValueError, match="vocabulary"):
        TokenDataset.from_words([["the", "zebra"]], tokenizer)


def test_generate_streams_mixture_and_slips(tokenizer):
    model = make_tiny_gpt2(tokenizer, seed=0)  # untrained: its own words are nearly uniform
    expert_only = generate_streams(model, tokenizer, 8, 20, beta=1.0, seed=1)
    assert (validity_by_position(expert_only, 20).inside == 1).all()  # the expert never leaves the language
    slips = generate_streams(model, tokenizer, 8, 20, beta=1.0, slip=1.0, seed=1)
    assert slips == expert_only  # slips only touch the learner's words
    a = generate_streams(model, tokenizer, 8, 20, slip=0.5, seed=3)
    assert a == generate_streams(model, tokenizer, 8, 20, slip=0.5, seed=3)  # reproducible
    assert validity_by_position(a, 20).off_language.mean() > 0.5
    with pytest.raises(ValueError, match="length"):
        generate_streams(model, tokenizer, 2, 64)
    with pytest.raises(ValueError, match="slip"):
        generate_streams(model, tokenizer, 2, 5, slip=1.5)
    with pytest.raises(ValueError, match="beta"):
        generate_streams(model, tokenizer, 2, 5, beta=-0.1)
