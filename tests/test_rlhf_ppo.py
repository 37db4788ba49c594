"""Chapter 5 PPO for language models: KL-penalised token rewards, token advantages, stability, learning; DPO."""

import math

import numpy as np
import pytest
import torch

from rl4llm.lm import load_tiny_gpt2
from rl4llm.lm.model import fuse_gelu
from rl4llm.rl import masked_whiten
from rl4llm.rlhf.dpo import train_dpo
from rl4llm.rlhf.ppo import (
    PPORLHFConfig,
    kl_penalised_rewards,
    token_advantages,
    token_entropy,
    train_ppo_rlhf,
)
from rl4llm.rlhf.reward_model import RewardModel, ValueModel
from rl4llm.rlhf.rollout import decode_texts, encode_texts, special_ids


def test_kl_penalised_rewards_hand_computed():
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -3.0, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-2.0, -1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    score = torch.tensor([2.0, -1.0])
    rewards, kl = kl_penalised_rewards(score, logp, ref, mask, kl_coef=0.1)
    # k1 = logp - ref; r_t = -0.1 k1, plus the score at each row's last real token
    assert torch.allclose(kl, torch.tensor([[0.5, -1.0, 0.0], [1.0, -2.0, 0.0]]))
    expected = torch.tensor([[-0.05, 0.1, 0.0 + 2.0], [-0.1, 0.2 - 1.0, 0.0]])
    assert torch.allclose(rewards, expected, atol=1e-6)
    # summed, the rewards are score - beta * log(pi(y) / pi_ref(y))
    assert torch.allclose(rewards.sum(1), score - 0.1 * kl.sum(1))
    with pytest.raises(ValueError, match="kl_coef"):
        kl_penalised_rewards(score, logp, ref, mask, kl_coef=-1.0)
    with pytest.raises(ValueError, match="score"):
        kl_penalised_rewards(score[:1], logp, ref, mask, kl_coef=0.1)


def test_token_advantages_hand_computed():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, -1.0, 0.0]])
    values = torch.tensor([[0.2, 0.4, 0.6], [0.1, 0.3, 9.0]])  # 9.0 sits on padding and must be ignored
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # lambda = 1, gamma = 1: A_t = (sum of rewards from t) - V(s_t); returns = reward-to-go
    adv, ret = token_advantages(rewards, values, mask, gamma=1.0, gae_lambda=1.0)
    assert torch.allclose(ret, torch.tensor([[1.0, 1.0, 1.0], [-0.5, -1.0, 0.0]]))
    assert torch.allclose(adv, torch.tensor([[0.8, 0.6, 0.4], [-0.6, -1.3, 0.0]]), atol=1e-6)
    # lambda = 0: one-step TD errors, delta_t = r_t + V(s_{t+1}) - V(s_t) with V = 0 after the last token
    adv0, _ = token_advantages(rewards, values, mask, gamma=1.0, gae_lambda=0.0)
    assert torch.allclose(adv0, torch.tensor([[0.2, 0.2, 0.4], [0.7, -1.3, 0.0]]), atol=1e-6)
    w = masked_whiten(adv, mask)
    m = mask.bool()
    assert w[m].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert w[m].pow(2).mean().item() == pytest.approx(1.0, abs=1e-4) and (w[~m] == 0).all()


def test_token_entropy_is_bounded_and_zero_on_padding():
    model, tok = load_tiny_gpt2()
    batch = encode_texts(tok, ["the phone is great . <eos>", "it feels very flimsy ! <eos>"], 28)
    entropy = token_entropy(model, batch)
    assert (entropy[batch.response_mask == 1] > 0).all() and (entropy[batch.response_mask == 0] == 0).all()
    assert entropy.max().item() <= math.log(len(tok)) + 1e-5
    # a uniform policy (all logits equal) has the maximal entropy log |A|
    with torch.no_grad():
        for p in model.lm_head.parameters():
            p.zero_()
    assert torch.allclose(
        token_entropy(model, batch)[batch.response_mask == 1],
        torch.full((int(batch.response_mask.sum()),), math.log(len(tok))),
        atol=1e-5,
    )


def _exclaim_reward(tok):
    """Proxy for the tests: 1 if a review ends with '!', else 0 (about a quarter of the pretrained samples)."""

    def reward(batch):
        return torch.tensor([float(t.endswith("! <eos>")) for t in decode_texts(tok, batch)])

    return reward


def _setup():
    model, tok = load_tiny_gpt2()
    fuse_gelu(model)
    ref = load_tiny_gpt2()[0].eval()
    torch.manual_seed(0)
    critic = ValueModel(RewardModel.from_lm(model).backbone, model.config.n_embd)
    return model, ref, critic, tok


def test_ppo_is_stable_without_kl_penalty_and_without_clipping():
    model, ref, critic, tok = _setup()
    bos, eos, pad = special_ids(tok)
    cfg = PPORLHFConfig(
        iterations=3,
        batch_size=16,
        n_minibatches=2,
        n_epochs=4,
        lr=1e-2,
        kl_coef=0.0,
        clip_eps=float("inf"),
        clip_value=None,
        max_new_tokens=12,
    )
    hist = train_ppo_rlhf(model, ref, critic, _exclaim_reward(tok), cfg, bos_id=bos, eos_id=eos, pad_id=pad)
    assert len(hist.rows) == 3
    for row in hist.rows:
        assert all(math.isfinite(v) for v in row.values()), row
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
def test_ppo_rlhf_on_a_tiny_budget_raises_the_proxy_reward():
    model, ref, critic, tok = _setup()
    bos, eos, pad = special_ids(tok)
    reward = _exclaim_reward(tok)
    cfg = PPORLHFConfig(
        iterations=8, batch_size=32, n_minibatches=2, n_epochs=2, lr=2e-3, kl_coef=0.05, max_new_tokens=16, seed=0
    )
    hist = train_ppo_rlhf(model, ref, critic, reward, cfg, bos_id=bos, eos_id=eos, pad_id=pad)
    proxy = hist.column("proxy")
    assert proxy[0] < 0.45  # about a quarter of reviews end with "!" before training
    assert proxy[-3:].mean() > 0.8
    assert hist.column("kl")[-1] > 0.0 and (hist.column("kl_coef") == 0.05).all()


def test_ppo_adaptive_kl_coefficient_moves_with_the_measured_kl():
    model, ref, critic, tok = _setup()
    bos, eos, pad = special_ids(tok)
    cfg = PPORLHFConfig(
        iterations=3,
        batch_size=16,
        n_minibatches=1,
        n_epochs=1,
        lr=5e-3,
        kl_coef=0.1,
        kl_target=1e-3,
        kl_horizon=16.0,
        max_new_tokens=12,
    )
    hist = train_ppo_rlhf(model, ref, critic, _exclaim_reward(tok), cfg, bos_id=bos, eos_id=eos, pad_id=pad)
    coef, kl = hist.column("kl_coef"), hist.column("kl")
    # coefficient logged at iteration i was updated after iteration i-1 with e = clip(KL/target - 1, +-0.2)
    for i in range(1, 3):
        e = float(np.clip(kl[i - 1] / 1e-3 - 1, -0.2, 0.2))
        assert coef[i] == pytest.approx(coef[i - 1] * (1 + e * 16 / 16.0))


def test_ppo_is_reproducible_for_a_seed():
    histories = []
    for _ in range(2):
        model, ref, critic, tok = _setup()
        bos, eos, pad = special_ids(tok)
        cfg = PPORLHFConfig(iterations=2, batch_size=8, n_minibatches=1, n_epochs=1, max_new_tokens=10, seed=3)
        histories.append(
            train_ppo_rlhf(model, ref, critic, _exclaim_reward(tok), cfg, bos_id=bos, eos_id=eos, pad_id=pad).rows
        )
    assert histories[0] == histories[1]


def test_ppo_config_validation():
    with pytest.raises(ValueError, match="n_minibatches"):
        PPORLHFConfig(batch_size=8, n_minibatches=16)
    with pytest.raises(ValueError, match="clip_eps"):
        PPORLHFConfig(clip_eps=0.0)
    with pytest.raises(ValueError, match="kl_coef must be > 0"):
        PPORLHFConfig(kl_coef=0.0, kl_target=1.0)
    with pytest.raises(ValueError, match="gae_lambda"):
        PPORLHFConfig(gae_lambda=1.5)


def test_dpo_starts_at_log2_and_learns_the_preferences():
    policy, tok = load_tiny_gpt2()
    ref = load_tiny_gpt2()[0]
    chosen = encode_texts(tok, ["the phone is great . <eos>", "i love this lamp ! <eos>"] * 8, 28)
    rejected = encode_texts(tok, ["the phone is bad . <eos>", "i hate this lamp ! <eos>"] * 8, 28)
    log = train_dpo(policy, ref, chosen, rejected, beta=0.5, steps=15, batch_size=16, lr=1e-3, log_every=1)
    assert log.loss[0] == pytest.approx(math.log(2), abs=1e-5)  # policy = reference before the first step
    assert log.loss[-1] < 0.3 and log.reward_accuracy[-1] == 1.0
    with pytest.raises(ValueError, match="beta"):
        train_dpo(policy, ref, chosen, rejected, beta=0.0, steps=1)
