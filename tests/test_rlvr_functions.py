"""Chapter 7's pure functions against hand-computed cases, invariants and bad inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rl4llm.rlvr import aggregate_token_loss, group_advantages, grpo_loss, pass_at_k

# ---------------------------------------------------------------- group_advantages


def test_rloo_hand_computed():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 4, baseline="loo", scale="none")
    assert torch.allclose(adv, torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3]))


def test_grpo_hand_computed():
    # group [1, 0, 0, 0]: mean 0.25, Bessel std sqrt(0.75 / 3) = 0.5
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4, baseline="mean", scale="group", eps=0.0)
    assert torch.allclose(adv, torch.tensor([1.5, -0.5, -0.5, -0.5]))


def test_dr_grpo_is_plain_centring():
    adv = group_advantages(torch.tensor([1.0, 0.0, 3.0, 5.0]), 2, baseline="mean", scale="none")
    assert torch.allclose(adv, torch.tensor([0.5, -0.5, -1.0, 1.0]))


def test_batch_scale_uses_whole_batch_std():
    r = torch.tensor([1.0, 0.0, 3.0, 5.0])
    adv = group_advantages(r, 2, baseline="mean", scale="batch", eps=0.0)
    assert torch.allclose(adv, torch.tensor([0.5, -0.5, -1.0, 1.0]) / r.std())


def test_loo_is_mean_baseline_times_g_over_g_minus_1():
    r = torch.rand(24, generator=torch.Generator().manual_seed(0))
    for g in (2, 3, 4, 6):
        loo = group_advantages(r, g, baseline="loo", scale="none")
        mean = group_advantages(r, g, baseline="mean", scale="none")
        assert torch.allclose(loo, mean * g / (g - 1), atol=1e-6)


@pytest.mark.parametrize("baseline", ["mean", "loo"])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_sum_to_zero_per_group(baseline, scale):
    r = torch.randint(0, 2, (32,), generator=torch.Generator().manual_seed(1)).float()
    adv = group_advantages(r, 8, baseline=baseline, scale=scale)
    assert torch.allclose(adv.view(4, 8).sum(1), torch.zeros(4), atol=1e-5)


def test_equal_rewards_give_zero_advantage():
    adv = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 3)
    assert torch.equal(adv, torch.zeros(6))


def test_group_advantages_bad_inputs():
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(6), 1)
    with pytest.raises(ValueError, match="rewards"):
        group_advantages(torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match="baseline"):
        group_advantages(torch.zeros(4), 2, baseline="median")
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, scale="max")
    with pytest.raises(TypeError, match="rewards"):
        group_advantages([1.0, 0.0], 2)


# ---------------------------------------------------------------- aggregate_token_loss


def test_aggregation_hand_computed():
    per_token = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # seq means 2 and 4 -> 3; token mean 10 / 4; sum / (B * T) = 10 / 8; with max_len 5: 10 / 10
    assert aggregate_token_loss(per_token, mask, "seq-mean-token-mean").item() == pytest.approx(3.0)
    assert aggregate_token_loss(per_token, mask, "token-mean").item() == pytest.approx(2.5)
    assert aggregate_token_loss(per_token, mask, "seq-mean-token-sum-norm").item() == pytest.approx(1.25)
    assert aggregate_token_loss(per_token, mask, "seq-mean-token-sum-norm", max_len=5).item() == pytest.approx(1.0)


def test_aggregation_ignores_padding_values():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    a = torch.tensor([[1.0, 2.0, 99.0], [3.0, 4.0, 5.0]])
    b = torch.tensor([[1.0, 2.0, -7.0], [3.0, 4.0, 5.0]])
    for mode in ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"):
        assert aggregate_token_loss(a, mask, mode) == aggregate_token_loss(b, mask, mode)


def test_aggregation_modes_agree_on_full_length_sequences():
    per_token = torch.randn(5, 7, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(5, 7)
    values = [
        aggregate_token_loss(per_token, mask, m, max_len=7).item()
        for m in ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")
    ]
    assert values == pytest.approx([per_token.mean().item()] * 3, abs=1e-6)


def test_aggregation_bad_inputs():
    x, m = torch.ones(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="mode"):
        aggregate_token_loss(x, m, "mean")
    with pytest.raises(ValueError, match="mask"):
        aggregate_token_loss(x, torch.ones(2, 4), "token-mean")
    with pytest.raises(ValueError, match="mask"):
        aggregate_token_loss(x, torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]), "token-mean")
    with pytest.raises(ValueError, match="max_len"):
        aggregate_token_loss(x, m, "seq-mean-token-sum-norm", max_len=0)


# ---------------------------------------------------------------- grpo_loss


def test_grpo_loss_at_ratio_one_is_minus_mean_advantage_and_gradient_is_not_zero():
    """At the start of an update the loss of mean-zero advantages reads 0, but its gradient does not vanish."""
    torch.manual_seed(0)
    logits = torch.randn(4, 3, requires_grad=True)
    logp = torch.log_softmax(logits, -1)
    old = logp.detach().clone()
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    mask = torch.ones(4, 3)
    loss, stats = grpo_loss(logp, old, old, adv, mask, clip_eps=0.2, kl_coef=0.0, loss_agg="token-mean")
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    loss.backward()
    # d/dlogp of -mean(ratio * A) at ratio 1 is -A / (B T) per token
    assert logits.grad.abs().sum() > 0
    assert stats["clip_frac"] == 0.0 and stats["kl"] == pytest.approx(0.0)


def test_grpo_loss_hand_computed_clip_and_kl():
    # one sequence of two tokens, advantage 1; ratios e^{0.5} (clipped at 1.2) and 1
    logp = torch.tensor([[0.5, 0.0]])
    old = torch.zeros(1, 2)
    ref = torch.tensor([[0.0, math.log(2.0)]])
    mask = torch.ones(1, 2)
    loss, stats = grpo_loss(logp, old, ref, torch.tensor([1.0]), mask, clip_eps=0.2, kl_coef=0.1, loss_agg="token-mean")
    k3 = [math.exp(-0.5) + 0.5 - 1, 2.0 - math.log(2.0) - 1]
    expected = (-(1.2) - 1.0 + 0.1 * (k3[0] + k3[1])) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert stats["clip_frac"] == pytest.approx(0.5)
    assert stats["kl"] == pytest.approx(sum(k3) / 2, rel=1e-6)


def test_grpo_loss_inf_clip_is_plain_importance_weighting():
    logp = torch.tensor([[0.5, -0.2]])
    loss, _ = grpo_loss(
        logp,
        torch.zeros(1, 2),
        torch.zeros(1, 2),
        torch.tensor([2.0]),
        torch.ones(1, 2),
        clip_eps=math.inf,
        loss_agg="token-mean",
    )
    assert loss.item() == pytest.approx(-(2 * math.exp(0.5) + 2 * math.exp(-0.2)) / 2, rel=1e-6)


def test_grpo_loss_bad_inputs():
    x, m = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(x, x, x, torch.zeros(3), m)
    with pytest.raises(ValueError, match="old_logp"):
        grpo_loss(x, torch.zeros(2, 4), x, torch.zeros(2), m)
    with pytest.raises(ValueError, match="kl_coef"):
        grpo_loss(x, x, x, torch.zeros(2), m, kl_coef=-1.0)
    with pytest.raises(ValueError, match="clip_eps"):
        grpo_loss(x, x, x, torch.zeros(2), m, clip_eps=-0.1)
    with pytest.raises(ValueError, match="loss_agg"):
        grpo_loss(x, x, x, torch.zeros(2), m, loss_agg="sum")


# ---------------------------------------------------------------- pass_at_k


def _brute_force(n: int, c: int, k: int) -> float:
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k), abs=1e-12)


def test_pass_at_k_special_values():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(200, 1, 200) == 1.0
    # stable for large n: 1 - (1 - 1/1000)^... stays within [0, 1] and matches the closed form
    assert pass_at_k(1000, 1, 10) == pytest.approx(0.01)


def test_pass_at_k_bad_inputs():
    with pytest.raises(ValueError, match="k must"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="k must"):
        pass_at_k(4, 1, 0)
    with pytest.raises(ValueError, match="c must"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="n must"):
        pass_at_k(0, 0, 1)
    with pytest.raises(TypeError, match="k"):
        pass_at_k(4, 1, 1.5)
