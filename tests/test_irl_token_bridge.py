"""Chapter 4.3: the token-MDP bridge (mistake rate by position, n-gram reward, SFT, online RL)."""

import math

import numpy as np
import pytest
import torch

from rl4llm.irl.token_bridge import (
    NGramReward,
    RLConfig,
    error_hazard,
    fit_text_reward,
    optimise_reward,
    sft,
)


def test_error_hazard_hand_case():
    texts = ["the phone is great . <eos>", "the phone great is . <eos>", "the is", "the phone is bad . <eos>"]
    h = error_hazard(texts, 6, min_count=1)
    # word 1: 4 at risk, 0 mistakes; word 2: 4 at risk, 1 mistake ("the is"); word 3: 3 at risk, 1 mistake;
    # words 4-6: the two good reviews, no mistakes
    np.testing.assert_allclose(h, [0, 1 / 4, 1 / 3, 0, 0, 0])
    assert np.isnan(error_hazard(texts, 6, min_count=3)[3])  # only 2 texts still writing at word 4


def test_ngram_reward_features_by_hand():
    reward = NGramReward(vocab_size=10, bos_token_id=1, eos_token_id=2)
    flat, offsets = reward.feature_ids([[5, 2], [5]])
    # text 1: unigram 5, bigram (bos=1, 5) -> 10 + 1*10 + 5 = 25, unigram 2, bigram (5, 2) -> 10 + 50 + 2 = 62
    # text 2: unigram 5, bigram 25, and the "no <eos>" feature (index 10 + 100 = 110)
    assert flat.tolist() == [5, 25, 2, 62, 5, 25, 110]
    assert offsets.tolist() == [0, 4]
    with torch.no_grad():
        reward.weights.weight.copy_(torch.arange(111, dtype=torch.float32)[:, None] / 100)
        reward.bias.fill_(1.0)
    np.testing.assert_allclose(
        reward([[5, 2], [5]]).detach().numpy(), [1 + (5 + 25 + 2 + 62) / 100, 1 + (5 + 25 + 110) / 100], rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 9\]"):
        reward([[12]])


def test_fit_text_reward_separates_demonstrations_from_policy_samples():
    demos = [[4, 5, 2], [4, 6, 2], [4, 5, 2]]
    policy = [[4, 7, 2], [7, 7], [4, 7, 2]]
    model = fit_text_reward(demos, policy, vocab_size=10, bos_token_id=1, eos_token_id=2, epochs=200, lr=0.1)
    with torch.no_grad():
        r_demo, r_policy = model(demos), model(policy)
    assert r_demo.min() > 0 > r_policy.max()
    with torch.no_grad():  # the word only the policy uses is penalised, the demonstrators' words are not
        assert model.weights.weight[7, 0] < 0 < model.weights.weight[5, 0]
    # warm start: continuing to train keeps the same object
    assert fit_text_reward(demos, policy, 10, 1, 2, epochs=1, model=model) is model
    with pytest.raises(ValueError, match="must not be empty"):
        fit_text_reward([], policy, 10, 1, 2)


def test_sft_lowers_the_loss_on_the_demonstrations():
    from rl4llm.lm import build_tokenizer, make_tiny_gpt2, sample_texts

    tokenizer = build_tokenizer()
    model = make_tiny_gpt2(tokenizer, seed=0)
    texts = sample_texts(32, 0, positivity=0.9)
    losses = sft(model, tokenizer, texts, epochs=3, lr=3e-3, batch_size=16)
    assert len(losses) == 3
    assert losses[0] > losses[-1]
    assert losses[0] == pytest.approx(math.log(len(tokenizer)), rel=0.1)  # an untrained model is near uniform
    assert not model.training
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        sft(model, tokenizer, texts, epochs=0)


def test_rl_config_validation():
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[2, inf\), got 1"):
        RLConfig(batch_size=1)
    with pytest.raises(ValueError, match=r"kl_coef must be in \[0, inf\)"):
        RLConfig(kl_coef=-1.0)


@pytest.mark.slow
def test_online_rl_raises_a_reward_and_stays_near_the_reference():
    """On the shipped LM, reward texts that contain "great": its frequency must rise, the KL stay moderate."""
    import copy

    from rl4llm.lm import load_tiny_gpt2

    policy, tokenizer = load_tiny_gpt2()
    reference = copy.deepcopy(policy)
    great = tokenizer.convert_tokens_to_ids("great")

    def reward_fn(responses):
        return torch.tensor([float(great in r) for r in responses])

    curves = optimise_reward(
        policy, reference, tokenizer, reward_fn, RLConfig(iterations=25, batch_size=32, lr=3e-3, kl_coef=0.1), seed=0
    )
    first = np.mean([c["learned_reward"] for c in curves[:3]])
    last = np.mean([c["learned_reward"] for c in curves[-3:]])
    assert first < 0.15 and last > first + 0.3
    assert all(np.isfinite(c["kl"]) for c in curves)


@pytest.mark.slow
def test_token_irl_beats_sft_on_parse_rate_and_gold_reward():
    from rl4llm.experiments import run_experiment

    m = run_experiment("token-irl", n_demos=300, sft_epochs=20, rl_iterations=80, n_eval=300).metrics
    assert m["irl_parse_rate"] > m["sft_parse_rate"] + 0.05
    assert m["irl_gold"] > m["sft_gold"]
    assert m["sft_valid_at_12"] < m["sft_valid_at_4"]  # BC's validity decays with length


def test_token_irl_experiment_is_reproducible():
    from rl4llm.experiments import run_experiment

    small = dict(n_demos=40, sft_epochs=2, n_policy_samples=40, rl_iterations=2, rl_batch_size=8, n_eval=40, seed=2)
    a = run_experiment("token-irl", **small).metrics
    b = run_experiment("token-irl", **small).metrics
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    assert 0.0 <= a["sft_parse_rate"] <= 1.0 and a["demo_two_clause_rate"] > 0
    with pytest.raises(ValueError, match="init must be one of"):
        run_experiment("token-irl", init="random")
