"""Chapter 5 pure functions: preference losses, KL estimators, the adaptive KL controller (hand-computed cases)."""

import math

import pytest
import torch

from rl4llm.rlhf import (
    AdaptiveKLController,
    FixedKLController,
    bradley_terry_loss,
    dpo_loss,
    kl_k1,
    kl_k2,
    kl_k3,
)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_bradley_terry_hand_computed():
    chosen = torch.tensor([2.0, 0.0, -1.0])
    rejected = torch.tensor([1.0, 0.5, -1.0])
    expected = -(math.log(_sig(1.0)) + math.log(_sig(-0.5)) + math.log(_sig(0.0))) / 3
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, rel=1e-6)


def test_bradley_terry_margin_and_equal_rewards():
    r = torch.tensor([0.3, -2.0])
    assert bradley_terry_loss(r, r).item() == pytest.approx(math.log(2), rel=1e-6)
    chosen, rejected = torch.tensor([3.0]), torch.tensor([1.0])
    # a margin of 2 cancels the reward gap of 2
    assert bradley_terry_loss(chosen, rejected, margin=torch.tensor([2.0])).item() == pytest.approx(math.log(2))
    assert bradley_terry_loss(chosen, rejected, margin=1.0).item() == pytest.approx(-math.log(_sig(1.0)))


def test_bradley_terry_is_stable_and_has_the_right_gradient():
    chosen = torch.tensor([100.0, -100.0], requires_grad=True)
    rejected = torch.tensor([0.0, 0.0])
    loss = bradley_terry_loss(chosen, rejected)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(50.0, rel=1e-4)  # (0 + 100) / 2
    loss.backward()
    # d/dc -log sigma(c) = -(1 - sigma(c)); averaged over 2 pairs
    assert chosen.grad[0].item() == pytest.approx(0.0, abs=1e-6)
    assert chosen.grad[1].item() == pytest.approx(-0.5, rel=1e-5)


def test_bradley_terry_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="margin"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(3), margin=float("nan"))


def test_dpo_at_reference_is_log2():
    pc, pr = torch.tensor([-3.0, -7.5]), torch.tensor([-4.0, -1.0])
    assert dpo_loss(pc, pr, pc.clone(), pr.clone(), beta=0.1).item() == pytest.approx(math.log(2), rel=1e-6)


def test_dpo_hand_computed():
    pi_c, pi_r = torch.tensor([-2.0]), torch.tensor([-5.0])
    ref_c, ref_r = torch.tensor([-3.0]), torch.tensor([-4.0])
    # beta * ((-2 + 3) - (-5 + 4)) = 0.5 * 2 = 1
    assert dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.5).item() == pytest.approx(-math.log(_sig(1.0)), rel=1e-6)


def test_dpo_gradient_pushes_chosen_up_and_rejected_down():
    pi_c = torch.tensor([-2.0], requires_grad=True)
    pi_r = torch.tensor([-2.0], requires_grad=True)
    dpo_loss(pi_c, pi_r, torch.tensor([-2.0]), torch.tensor([-2.0]), beta=1.0).backward()
    assert pi_c.grad.item() == pytest.approx(-0.5)
    assert pi_r.grad.item() == pytest.approx(0.5)


def test_dpo_rejects_bad_beta():
    z = torch.zeros(2)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(z, z, z, z, beta=0.0)


def test_kl_estimators_hand_computed():
    logp = torch.tensor([math.log(0.5), math.log(0.2)])
    ref = torch.tensor([math.log(0.25), math.log(0.4)])
    k1 = kl_k1(logp, ref)
    assert torch.allclose(k1, torch.tensor([math.log(2), math.log(0.5)]), atol=1e-6)
    assert torch.allclose(kl_k2(logp, ref), 0.5 * torch.tensor([math.log(2) ** 2, math.log(0.5) ** 2]), atol=1e-6)
    # k3 = r - 1 - log r with r = ref/pi
    r = torch.tensor([0.5, 2.0])
    assert torch.allclose(kl_k3(logp, ref), r - 1 - torch.log(r), atol=1e-6)
    assert (kl_k3(logp, ref) >= 0).all() and (kl_k2(logp, ref) >= 0).all()


def test_kl_estimators_unbiased_on_samples():
    torch.manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    true_kl = float((p * (p / q).log()).sum())
    a = torch.multinomial(p, 200_000, replacement=True)
    logp, ref = p.log()[a], q.log()[a]
    assert kl_k1(logp, ref).mean().item() == pytest.approx(true_kl, abs=0.01)
    assert kl_k3(logp, ref).mean().item() == pytest.approx(true_kl, abs=0.01)
    assert kl_k3(logp, ref).std() < kl_k1(logp, ref).std()  # lower variance


def test_kl_estimators_zero_at_reference_and_shape_check():
    x = torch.randn(4, 5)
    for k in (kl_k1, kl_k2, kl_k3):
        assert torch.allclose(k(x, x), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="same shape"):
        kl_k1(torch.zeros(3), torch.zeros(4))


def test_adaptive_kl_controller_direction_and_amount():
    c = AdaptiveKLController(init_kl_coef=0.1, target=6.0, horizon=10_000)
    # KL 9 > target 6: e = 0.5 clipped to 0.2; beta *= 1 + 0.2 * 256 / 10000
    assert c.update(9.0, 256) == pytest.approx(0.1 * (1 + 0.2 * 256 / 10_000))
    before = c.value
    # KL 5.4 < target: e = -0.1; beta *= 1 - 0.1 * 100 / 10000
    assert c.update(5.4, 100) == pytest.approx(before * (1 - 0.1 * 100 / 10_000))
    assert c.value < before
    # exactly on target: no change
    v = c.value
    assert c.update(6.0, 1000) == pytest.approx(v)
    # far below target: error clipped at -0.2
    assert c.update(0.0, 500) == pytest.approx(v * (1 - 0.2 * 500 / 10_000))


def test_kl_controllers_validate():
    with pytest.raises(ValueError, match="target"):
        AdaptiveKLController(0.1, 0.0, 100)
    with pytest.raises(ValueError, match="init_kl_coef"):
        AdaptiveKLController(-0.1, 1.0, 100)
    with pytest.raises(ValueError, match="current_kl"):
        AdaptiveKLController(0.1, 1.0, 100).update(float("nan"), 10)
    f = FixedKLController(0.05)
    assert f.update(100.0, 10) == 0.05 and f.value == 0.05
