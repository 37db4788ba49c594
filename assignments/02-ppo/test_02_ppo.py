"""Grader of assignment 02: proximal policy optimisation.

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``); expected values are computed by hand here, and the answers of
typical mistakes too, so that a wrong answer can be named.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rl4llm.assignments.checks import expect, expect_close, expect_scalar

ASSIGNMENT = "02-ppo"

EPS = 0.2
# four samples, one per case of the clipped objective (epsilon = 0.2):
#   A > 0, ratio 1.5 (clipped at 1.2)   A > 0, ratio 0.5 (unclipped)
#   A < 0, ratio 1.5 (unclipped)        A < 0, ratio 0.5 (clipped at 0.8)
RATIO = [1.5, 0.5, 1.5, 0.5]
ADV = [2.0, 1.0, -1.0, -0.5]


def _clip_case(requires_grad: bool = False):
    logp_old = torch.full((4,), -1.0)
    logp_new = (logp_old + torch.log(torch.tensor(RATIO))).detach().requires_grad_(requires_grad)
    return logp_new, logp_old, torch.tensor(ADV)


def surrogate(ratio, adv, eps, mode="min"):
    """The mean surrogate (to maximise) of a list of ratios, by hand; ``mode`` reproduces typical mistakes."""
    terms = []
    for r, a in zip(ratio, adv):
        unclipped, clipped = r * a, min(max(r, 1 - eps), 1 + eps) * a
        terms.append(
            {
                "min": min(unclipped, clipped),
                "max": max(unclipped, clipped),
                "clipped": clipped,
                "unclipped": unclipped,
            }[mode]
        )
    return sum(terms) / len(terms)


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_clip_loss_at_the_old_policy(impl):
    """ppo_clip_loss at ratio 1: minus the mean advantage, and the plain policy gradient"""
    logp = torch.tensor([-1.0, -2.0, -0.5, -1.5], requires_grad=True)
    adv = torch.tensor([1.0, -2.0, 0.5, 3.0])
    loss = impl.ppo_clip_loss(logp, logp.detach().clone(), adv, EPS)
    value = expect_scalar(loss, "ppo_clip_loss(logp, logp, A, 0.2)")
    expect_close(
        value,
        -0.625,
        "ppo_clip_loss when logp_new == logp_old",
        wrong=[
            (0.625, "has the wrong sign (the loss is minus the clipped surrogate)"),
            (-2.5, "sums over the batch instead of averaging"),
        ],
    )
    loss.backward()
    expect(logp.grad is not None, "no gradient reached logp_new: is the loss built from it?")
    expect_close(
        logp.grad,
        (-adv / 4).numpy(),
        "the gradient of ppo_clip_loss at ratio 1 (it must be the policy gradient -A / B)",
    )


@pytest.mark.points(3)
@pytest.mark.tier("hand-computed")
def test_clip_loss_four_cases(impl):
    """ppo_clip_loss: the pessimistic min over the four sign/ratio cases (hand-computed)"""
    logp_new, logp_old, adv = _clip_case()
    loss = expect_scalar(impl.ppo_clip_loss(logp_new, logp_old, adv, EPS), "ppo_clip_loss")
    # min terms: 2.4, 0.5, -1.5, -0.4 -> mean 0.25
    expect_close(
        loss,
        -0.25,
        "ppo_clip_loss on the four cases (epsilon = 0.2)",
        wrong=[
            (
                -surrogate(RATIO, ADV, EPS, "clipped"),
                "uses only the clipped term: the objective is the min of the clipped and the unclipped term",
            ),
            (-surrogate(RATIO, ADV, EPS, "max"), "takes the max of the two terms instead of the min"),
            (-surrogate(RATIO, ADV, EPS, "unclipped"), "does not clip the ratio"),
            (0.25, "has the wrong sign (the loss is minus the clipped surrogate)"),
            (-surrogate([1 / r for r in RATIO], ADV, EPS), "inverts the ratio: it is exp(logp_new - logp_old)"),
            (-4 * 0.25, "sums over the batch instead of averaging"),
        ],
    )
    inf = expect_scalar(impl.ppo_clip_loss(logp_new, logp_old, adv, math.inf), "ppo_clip_loss(..., inf)")
    expect_close(inf, -surrogate(RATIO, ADV, EPS, "unclipped"), "ppo_clip_loss with clip_eps = inf (no clipping)")


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_clip_loss_gradient_vanishes_when_clipped(impl):
    """ppo_clip_loss: zero gradient where the clipped term is the min; none into logp_old or A"""
    logp_new, logp_old, adv = _clip_case(requires_grad=True)
    logp_old.requires_grad_(True)
    adv.requires_grad_(True)
    impl.ppo_clip_loss(logp_new, logp_old, adv, EPS).backward()
    expect(logp_new.grad is not None, "no gradient reached logp_new: is the loss built from it?")
    # d/dlogp of -(1/4) * ratio * A where the unclipped term is the min, 0 where the clipped term is
    expected = [0.0, -0.25 * 1.0 * 0.5, -0.25 * -1.0 * 1.5, 0.0]
    expect_close(
        logp_new.grad,
        expected,
        "the gradient of ppo_clip_loss with respect to logp_new",
        wrong=[
            (
                [-0.25 * a * r for r, a in zip(RATIO, ADV)],
                "lets gradient through where the ratio is clipped (use the min with the clipped term)",
            )
        ],
    )
    expect(
        logp_old.grad is None or float(logp_old.grad.abs().max()) == 0.0,
        "ppo_clip_loss lets gradient flow into logp_old; the old policy is a constant (detach it)",
    )
    expect(
        adv.grad is None or float(adv.grad.abs().max()) == 0.0,
        "ppo_clip_loss lets gradient flow into the advantages; they are constants (detach them)",
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_clipped_value_loss_hand_computed(impl):
    """clipped_value_loss: the max of the clipped and unclipped squared errors, halved (hand-computed)"""
    values = torch.tensor([1.0, 2.0, 0.0, 3.0])
    old = torch.tensor([0.5, 2.5, 0.0, 0.5])
    returns = torch.tensor([2.0, 1.0, 1.0, 0.5])
    # unclipped: [1, 1, 1, 6.25]; clipped values [0.7, 2.3, 0, 0.7] -> [1.69, 1.69, 1, 0.04]
    unclipped, clipped = np.array([1.0, 1.0, 1.0, 6.25]), np.array([1.69, 1.69, 1.0, 0.04])
    got = expect_scalar(impl.clipped_value_loss(values, old, returns, EPS), "clipped_value_loss(..., 0.2)")
    expect_close(
        got,
        0.5 * np.maximum(unclipped, clipped).mean(),
        "clipped_value_loss(..., clip_eps=0.2)",
        wrong=[
            (0.5 * np.minimum(unclipped, clipped).mean(), "takes the min instead of the max"),
            (
                0.5 * clipped.mean(),
                "uses only the clipped error (the max with the unclipped one keeps the loss pessimistic)",
            ),
            (np.maximum(unclipped, clipped).mean(), "forgets the factor 1/2"),
            (0.5 * unclipped.mean(), "does not clip the value"),
        ],
    )
    plain = expect_scalar(impl.clipped_value_loss(values, old, returns, None), "clipped_value_loss(..., None)")
    expect_close(plain, 0.5 * unclipped.mean(), "clipped_value_loss with clip_eps=None (plain regression)")
    plain_inf = expect_scalar(impl.clipped_value_loss(values, old, returns, math.inf), "clipped_value_loss(inf)")
    expect_close(plain_inf, 0.5 * unclipped.mean(), "clipped_value_loss with clip_eps=inf (plain regression)")


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_entropy_bonus_hand_computed(impl):
    """entropy_bonus: log 4 for a uniform row, finite for a zero-probability action (hand-computed)"""
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0, -1e9]])
    # row 2 has probabilities [1/2, 1/4, 1/4, 0]: H = 0.5 log 2 + 0.5 log 4
    h = [math.log(4), 0.5 * math.log(2) + 0.5 * math.log(4)]
    got = expect_scalar(impl.entropy_bonus(logits), "entropy_bonus(logits [2, 4])")
    expect_close(
        got,
        sum(h) / 2,
        "entropy_bonus",
        wrong=[
            (sum(h), "sums over the batch instead of averaging"),
            (-sum(h) / 2, "has the wrong sign (entropy is -sum p log p, which is >= 0)"),
            (sum(h) / 2 / math.log(2), "uses log base 2; use the natural log"),
        ],
        hint="(a nan usually means 0 * log 0: compute log-probabilities with log_softmax)",
    )


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_normalize_advantages(impl):
    """normalize_advantages: zero mean, unit spread; a batch of one is only centred"""
    adv = torch.tensor([1.0, 2.0, 3.0, 4.0])
    got = impl.normalize_advantages(adv)
    centred = np.array([-1.5, -0.5, 0.5, 1.5])
    sample_std, population_std = math.sqrt(5 / 3), math.sqrt(5 / 4)
    # torch.Tensor.std is the sample standard deviation; np.std is the population one: both are accepted
    a = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    ok_population = a.shape == (4,) and np.allclose(a, centred / (population_std + 1e-8), atol=1e-5)
    if not ok_population:
        expect_close(
            got,
            centred / (sample_std + 1e-8),
            "normalize_advantages([1, 2, 3, 4])",
            wrong=[
                (centred, "only centres the advantages (divide by their standard deviation)"),
                (np.array([1.0, 2.0, 3.0, 4.0]) / sample_std, "does not subtract the mean"),
            ],
        )
    one = impl.normalize_advantages(torch.tensor([3.0]))
    expect_close(one, [0.0], "normalize_advantages of a single advantage (no standard deviation: only centre it)")


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_losses_match_reference_on_random_batches(impl, ref):
    """the four losses and the clip-loss gradient match the reference on random batches"""
    gen = torch.Generator().manual_seed(3)
    for n, eps in ((256, 0.2), (33, 0.1), (8, 0.3)):
        logp_old = -torch.rand(n, generator=gen) * 3
        logp_new = (logp_old + 0.5 * torch.randn(n, generator=gen)).requires_grad_(True)
        adv = torch.randn(n, generator=gen)
        got = impl.ppo_clip_loss(logp_new, logp_old, adv, eps)
        expect_close(
            got,
            ref.ppo_clip_loss(logp_new, logp_old, adv, eps),
            f"ppo_clip_loss on a random batch of {n} (clip_eps={eps})",
            atol=1e-5,
            rtol=1e-4,
        )
        (grad,) = torch.autograd.grad(got, logp_new)
        (ref_grad,) = torch.autograd.grad(ref.ppo_clip_loss(logp_new, logp_old, adv, eps), logp_new)
        expect_close(grad, ref_grad, f"the gradient of ppo_clip_loss on a random batch of {n}", atol=1e-6, rtol=1e-4)
        v, old, ret = (torch.randn(n, generator=gen) for _ in range(3))
        for c in (eps, None):
            expect_close(
                impl.clipped_value_loss(v, old, ret, c),
                ref.clipped_value_loss(v, old, ret, c),
                f"clipped_value_loss on a random batch of {n} (clip_eps={c})",
                atol=1e-5,
                rtol=1e-4,
            )
        logits = 3 * torch.randn(n, 6, generator=gen)
        expect_close(
            impl.entropy_bonus(logits),
            ref.entropy_bonus(logits),
            f"entropy_bonus on random [{n}, 6] logits",
            atol=1e-5,
            rtol=1e-4,
        )
        got_norm = impl.normalize_advantages(adv)
        expect_close(got_norm.mean(), 0.0, f"the mean of normalize_advantages on a random batch of {n}", atol=1e-5)
        spread = float(got_norm.std())
        expect(
            abs(spread - 1.0) < 0.02 or abs(spread - math.sqrt(n / (n - 1))) < 0.02,
            f"normalize_advantages on a random batch of {n} has standard deviation {spread:.4f}, expected 1",
        )


def _one_update(clip_loss, eps: float):
    """Forty Adam steps of a softmax bandit policy on one batch: the inner loop of a PPO update."""
    gen = torch.Generator().manual_seed(0)
    logits0 = torch.tensor([0.5, 0.0, 0.0, -0.5])
    p0 = torch.softmax(logits0, 0)
    actions = torch.multinomial(p0, 512, replacement=True, generator=gen)
    reward = torch.tensor([1.0, 0.0, 0.3, -1.0])
    r = reward[actions]
    adv = r - r.mean()
    logp_old = torch.log_softmax(logits0, 0)[actions]
    theta = logits0.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=0.05)
    for _ in range(40):
        loss = clip_loss(torch.log_softmax(theta, 0)[actions], logp_old, adv, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
    p1 = torch.softmax(theta.detach(), 0)
    kl = float((p1 * (p1.log() - p0.log())).sum())
    return kl, float(p0 @ reward), float(p1 @ reward)


@pytest.mark.points(2)
@pytest.mark.tier("behaviour")
def test_one_ppo_update_stays_near_the_old_policy(impl):
    """one PPO update (40 Adam steps on a batch) improves the policy but stays near the old one"""
    kl_clip, before, after = _one_update(impl.ppo_clip_loss, EPS)
    kl_free, _, _ = _one_update(impl.ppo_clip_loss, math.inf)
    expect(
        after > before + 0.05,
        f"the update did not improve the policy: expected reward {before:.3f} before, "
        f"{after:.3f} after (does the loss push up actions with positive advantage?)",
    )
    expect(
        kl_clip < 0.4 * kl_free,
        f"with clip_eps=0.2 the update moved KL(new || old) = {kl_clip:.3f}, almost as "
        f"far as without clipping ({kl_free:.3f}): the clipping does not stop the "
        f"update once the ratio leaves [1 - eps, 1 + eps]",
    )


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_ppo_with_your_losses_learns_cartpole(impl, monkeypatch):
    """the package's PPO trainer running on your four losses learns CartPole"""
    import rl4llm.rl.ppo as ppo

    for name in ("ppo_clip_loss", "clipped_value_loss", "entropy_bonus", "normalize_advantages"):
        monkeypatch.setattr(ppo, name, getattr(impl, name))
    result = ppo.train_ppo("CartPole-v1", ppo.PPOConfig(total_steps=40_000, seed=0))
    final = result.final_return()
    expect(
        final >= 200,
        f"after 40k steps, PPO with your losses reaches a mean return of {final:.1f} on CartPole "
        f"(the reference reaches 500, the maximum, with seeds 0-4; a random policy about 22)",
    )
