"""PPO's losses, REINFORCE's loss and DQN's targets, against values and gradients computed by hand."""

import math

import gymnasium
import numpy as np
import pytest
import torch

from rl4llm.rl import (
    ActorCritic,
    approx_kl,
    clip_fraction,
    clipped_value_loss,
    dqn_targets,
    entropy_bonus,
    masked_whiten,
    normalize_advantages,
    ppo_clip_loss,
    reinforce_loss,
)


def _grad(loss_fn, logp_new):
    x = logp_new.clone().requires_grad_(True)
    loss = loss_fn(x)
    (g,) = torch.autograd.grad(loss, x)
    return loss.detach(), g


def test_clip_loss_at_ratio_one_is_minus_mean_advantage():
    logp = torch.tensor([-1.0, -0.5, -2.0, -0.1])
    adv = torch.tensor([1.0, -2.0, 0.5, 3.0])
    loss, g = _grad(lambda x: ppo_clip_loss(x, logp, adv, 0.2), logp)
    assert loss.item() == pytest.approx(-adv.mean().item())
    # d/dx of -mean(exp(x - x_old) * A) at x = x_old is -A / B: the plain policy gradient
    torch.testing.assert_close(g, -adv / 4)


@pytest.mark.parametrize(
    "ratio, adv, value, grad",
    [
        # d loss / d logp_new is -ratio * A on the unclipped branch (d ratio / d logp = ratio) and 0 on the flat one
        # above the range, A > 0: min(1.5 A, 1.2 A) = 1.2 A, flat -> zero gradient
        (1.5, 2.0, -1.2 * 2.0, 0.0),
        # above the range, A < 0: min(1.5 A, 1.2 A) = 1.5 A, unclipped
        (1.5, -2.0, -1.5 * -2.0, -1.5 * -2.0),
        # below the range, A > 0: min(0.5 A, 0.8 A) = 0.5 A, unclipped
        (0.5, 2.0, -0.5 * 2.0, -0.5 * 2.0),
        # below the range, A < 0: min(0.5 A, 0.8 A) = 0.8 A, flat
        (0.5, -2.0, -0.8 * -2.0, 0.0),
        # inside the range: unclipped either way
        (1.1, -1.0, 1.1, 1.1),
    ],
)
def test_clip_loss_outside_and_inside_the_range(ratio, adv, value, grad):
    logp_old = torch.tensor([-1.0])
    logp_new = logp_old + math.log(ratio)
    loss, g = _grad(lambda x: ppo_clip_loss(x, logp_old, torch.tensor([adv]), 0.2), logp_new)
    assert loss.item() == pytest.approx(value, rel=1e-5)
    assert g.item() == pytest.approx(grad, abs=1e-5)


def test_clip_loss_infinite_range_is_the_importance_weighted_surrogate():
    logp_old = torch.tensor([-1.0, -1.0])
    logp_new = logp_old + torch.log(torch.tensor([3.0, 0.1]))
    adv = torch.tensor([1.0, -1.0])
    loss = ppo_clip_loss(logp_new, logp_old, adv, float("inf"))
    assert loss.item() == pytest.approx(-(3.0 * 1.0 + 0.1 * -1.0) / 2, rel=1e-5)


def test_clip_loss_range_zero_has_no_gradient_away_from_ratio_one_in_the_improving_direction():
    logp_old = torch.tensor([-1.0, -1.0])
    logp_new = logp_old + torch.log(torch.tensor([1.3, 0.7]))
    adv = torch.tensor([1.0, -1.0])  # both moved the way their advantage asks for
    _, g = _grad(lambda x: ppo_clip_loss(x, logp_old, adv, 0.0), logp_new)
    torch.testing.assert_close(g, torch.zeros(2))


def test_ppo_one_epoch_ratio_one_equals_policy_gradient_on_a_network():
    torch.manual_seed(0)
    obs_space = gymnasium.spaces.Box(-1.0, 1.0, (4,), np.float32)
    agent = ActorCritic(obs_space, gymnasium.spaces.Discrete(3), hidden=8)
    obs = torch.randn(16, 4)
    actions = torch.randint(0, 3, (16,))
    adv = torch.randn(16)

    def logp():
        return torch.log_softmax(agent.logits(obs), -1).gather(1, actions[:, None]).squeeze(1)

    agent.zero_grad()
    new = logp()
    ppo_clip_loss(new, new.detach(), adv, 0.2).backward()
    g_ppo = [p.grad.clone() for p in agent.actor.parameters()]
    agent.zero_grad()
    (-(logp() * adv).mean()).backward()
    g_pg = [p.grad.clone() for p in agent.actor.parameters()]
    for a, b in zip(g_ppo, g_pg):
        torch.testing.assert_close(a, b)


def test_clipped_value_loss_by_hand():
    values = torch.tensor([1.0, 3.0])
    old = torch.tensor([0.0, 2.0])
    returns = torch.tensor([2.0, 2.0])
    # unclipped squared errors: (1-2)^2 = 1, (3-2)^2 = 1; clipped (eps 0.5): V = 0.5 -> 2.25, V = 2.5 -> 0.25
    # max per element: 2.25, 1 -> 0.5 * mean = 0.8125
    assert clipped_value_loss(values, old, returns, 0.5).item() == pytest.approx(0.8125)
    assert clipped_value_loss(values, old, returns, None).item() == pytest.approx(0.5)


def test_entropy_bonus_uniform_and_deterministic():
    assert entropy_bonus(torch.zeros(3, 4)).item() == pytest.approx(math.log(4))
    assert entropy_bonus(torch.tensor([[100.0, 0.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)


def test_normalize_advantages_zero_mean_unit_std():
    out = normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    assert out.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert out.std().item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(normalize_advantages(torch.tensor([5.0])), torch.tensor([0.0]))


def test_reinforce_loss_by_hand():
    logp = torch.tensor([-1.0, -2.0])
    returns = torch.tensor([3.0, 1.0])
    baseline = torch.tensor([1.0, 1.0], requires_grad=True)
    # weights G - b = [2, 0]: loss = -mean([-1 * 2, -2 * 0]) = 1, d loss / d logp = -[2, 0] / 2
    loss, g = _grad(lambda x: reinforce_loss(x, returns, baseline), logp)
    assert loss.item() == pytest.approx(1.0)
    torch.testing.assert_close(g, torch.tensor([-1.0, 0.0]))
    # without a baseline: -mean([-3, -2]) = 2.5
    assert reinforce_loss(logp, returns).item() == pytest.approx(2.5)
    # no gradient flows into the baseline
    x = logp.clone().requires_grad_(True)
    reinforce_loss(x, returns, baseline).backward()
    assert baseline.grad is None


def test_dqn_targets_by_hand():
    rewards = torch.tensor([1.0, 0.5])
    next_q = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    terminated = torch.tensor([0.0, 1.0])
    # 1 + 0.9 * max(1, 3) = 3.7; the second transition ended the episode: 0.5
    torch.testing.assert_close(dqn_targets(rewards, next_q, terminated, 0.9), torch.tensor([3.7, 0.5]))


def test_loss_argument_validation():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo_clip_loss(x, x, x, -0.1)
    with pytest.raises(ValueError, match="advantages"):
        ppo_clip_loss(x, x, torch.zeros(2), 0.2)
    with pytest.raises(TypeError, match="logp_new"):
        ppo_clip_loss([0.0, 0.0, 0.0], x, x, 0.2)
    with pytest.raises(ValueError, match="baseline"):
        reinforce_loss(x, x, torch.zeros(2))
    with pytest.raises(ValueError, match="gamma"):
        dqn_targets(x, torch.zeros(3, 2), x, 1.5)
    with pytest.raises(ValueError, match="next_q_target"):
        dqn_targets(x, torch.zeros(2, 2), x, 0.9)


def test_approx_kl_by_hand():
    # log-ratios 0, log 2, -log 2: (rho - 1) - log rho = 0, 1 - log 2, -1/2 + log 2
    old = torch.zeros(3)
    new = torch.tensor([0.0, math.log(2.0), -math.log(2.0)])
    expected = (0.0 + (1.0 - math.log(2.0)) + (-0.5 + math.log(2.0))) / 3
    assert approx_kl(new, old).item() == pytest.approx(expected, abs=1e-7)
    assert approx_kl(old, old).item() == 0.0
    # never negative, and no gradient flows (a diagnostic)
    x = torch.randn(50, generator=torch.Generator().manual_seed(0), requires_grad=True)
    kl = approx_kl(x, torch.zeros(50))
    assert kl.item() >= 0.0 and not kl.requires_grad


def test_clip_fraction_by_hand():
    old = torch.zeros(4)
    # ratios 1.0, 1.1, 1.3, 0.7: |rho - 1| > 0.2 for the last two
    new = torch.log(torch.tensor([1.0, 1.1, 1.3, 0.7]))
    assert clip_fraction(new, old, 0.2).item() == pytest.approx(0.5)
    assert clip_fraction(new, old, 0.05).item() == pytest.approx(0.75)
    assert clip_fraction(new, old, math.inf).item() == 0.0  # inf: no clipping, nothing clipped
    with pytest.raises(ValueError, match="clip_eps"):
        clip_fraction(new, old, -0.1)


def test_masked_whiten_by_hand():
    x = torch.tensor([[1.0, 3.0, 100.0], [5.0, 7.0, -50.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    # masked entries 1, 3, 5, 7: mean 4, population variance (9 + 1 + 1 + 9) / 4 = 5
    expected = torch.tensor([[-3.0, -1.0, 0.0], [1.0, 3.0, 0.0]]) / math.sqrt(5.0)
    torch.testing.assert_close(masked_whiten(x, mask, eps=0.0), expected)
    # no mask: every entry counts
    flat = torch.tensor([1.0, 3.0, 5.0, 7.0])
    torch.testing.assert_close(masked_whiten(flat, eps=0.0), (flat - 4.0) / math.sqrt(5.0))
    with pytest.raises(ValueError, match="mask"):
        masked_whiten(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="mask"):
        masked_whiten(x, torch.ones(3))


def test_entropy_bonus_with_a_mask_averages_the_counted_positions():
    # [B=1, T=3, A=2]: uniform (log 2), deterministic (0), and a padded uniform position
    logits = torch.tensor([[[0.0, 0.0], [100.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert entropy_bonus(logits, mask).item() == pytest.approx(math.log(2) / 2, abs=1e-6)
    assert entropy_bonus(logits).item() == pytest.approx(2 * math.log(2) / 3, abs=1e-6)
    with pytest.raises(ValueError, match="mask"):
        entropy_bonus(logits, torch.ones(1, 2))
