"""Grader of assignment 08: RL with verifiable rewards (group advantages, loss aggregation, GRPO's loss, pass@k).

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``). Advantages and aggregations are checked on hand-computed cases and
invariants, pass@k against counting subsets, and the behavioural item trains a tiny two-token policy on a
verifiable addition task with the student's functions and checks that its exact pass@1 rises.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rl4llm.assignments.checks import expect, expect_close, expect_scalar, expect_tensor, fail, to_numpy

ASSIGNMENT = "08-rlvr"


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_group_advantages_grpo(impl):
    """group_advantages: GRPO (mean baseline, group std) on a hand-computed group"""
    adv = expect_tensor(
        impl.group_advantages(
            torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]), 4, baseline="mean", scale="group", eps=0.0
        ),
        "group_advantages(8 rewards, 4)",
        shape=(8,),
    )
    # group 1: mean 0.25, Bessel std 0.5; group 2: mean 0.5, Bessel std sqrt(1/3)
    s = math.sqrt(1 / 3)
    expected = [1.5, -0.5, -0.5, -0.5, 0.5 / s, 0.5 / s, -0.5 / s, -0.5 / s]
    pop = math.sqrt(0.1875)
    expect_close(
        adv,
        expected,
        "GRPO advantages",
        atol=1e-4,
        wrong=[
            (
                [0.75 / pop, -0.25 / pop, -0.25 / pop, -0.25 / pop, 1, 1, -1, -1],
                "uses the population std (divide by G); GRPO's std is Bessel-corrected (G - 1)",
            ),
            ([0.75, -0.25, -0.25, -0.25, 0.5, 0.5, -0.5, -0.5], "does not divide by the group's std"),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_group_advantages_rloo(impl):
    """group_advantages: RLOO's leave-one-out baseline ([1, 0, 0, 1] -> [2/3, -2/3, -2/3, 2/3])"""
    adv = impl.group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 4, baseline="loo", scale="none")
    expect_close(
        adv,
        [2 / 3, -2 / 3, -2 / 3, 2 / 3],
        "RLOO advantages of [1, 0, 0, 1]",
        wrong=[
            (
                [0.5, -0.5, -0.5, 0.5],
                "subtracts the mean of the whole group, the sample itself included (that is GRPO's baseline)",
            )
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_group_advantages_dr_grpo_and_batch_scale(impl):
    """group_advantages: Dr. GRPO (no scaling) and the batch-std scale"""
    r = torch.tensor([1.0, 0.0, 3.0, 5.0])
    expect_close(
        impl.group_advantages(r, 2, baseline="mean", scale="none"),
        [0.5, -0.5, -1.0, 1.0],
        "Dr. GRPO advantages of [1, 0, 3, 5] with G = 2",
    )
    batch = impl.group_advantages(r, 2, baseline="mean", scale="batch", eps=0.0)
    expect_close(
        batch,
        (torch.tensor([0.5, -0.5, -1.0, 1.0]) / r.std()).tolist(),
        "batch-scaled advantages",
        atol=1e-4,
        hint="divide by the Bessel std of all B rewards",
    )
    same = impl.group_advantages(torch.tensor([1.0, 1.0, 0.0, 0.0]), 2)
    expect_close(
        same,
        [0.0, 0.0, 0.0, 0.0],
        "GRPO advantages of groups whose rewards are all equal",
        hint="a group with equal rewards has std 0; eps keeps the division finite and the advantage is 0",
    )


@pytest.mark.points(1)
@pytest.mark.tier("randomised")
def test_group_advantages_invariants(impl):
    """group_advantages: mean-baseline advantages sum to 0 in every group; loo = mean x G/(G-1)"""
    r = torch.randint(0, 2, (48,), generator=torch.Generator().manual_seed(3)).float()
    for g in (2, 4, 6):
        adv = to_numpy(impl.group_advantages(r, g, baseline="mean", scale="group"), "advantages")
        expect(abs(adv.reshape(-1, g).sum(1)).max() < 1e-4, f"advantages must sum to 0 within each group (G={g})")
        loo = to_numpy(impl.group_advantages(r, g, baseline="loo", scale="none"), "loo advantages")
        mean = to_numpy(impl.group_advantages(r, g, baseline="mean", scale="none"), "mean advantages")
        expect_close(loo, mean * g / (g - 1), f"RLOO vs mean baseline (G={g})", atol=1e-5)


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_aggregate_token_loss_modes(impl):
    """aggregate_token_loss: the three modes on a hand-computed ragged batch"""
    per_token = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    got = expect_scalar(impl.aggregate_token_loss(per_token, mask, "seq-mean-token-mean"), "seq-mean-token-mean")
    expect_close(got, 3.0, "seq-mean-token-mean", wrong=[(2.5, "averages over all tokens (that is token-mean)")])
    got = expect_scalar(impl.aggregate_token_loss(per_token, mask, "token-mean"), "token-mean")
    expect_close(got, 2.5, "token-mean", wrong=[(3.0, "averages per sequence first")])
    got = expect_scalar(impl.aggregate_token_loss(per_token, mask, "seq-mean-token-sum-norm"), "sum-norm")
    expect_close(
        got,
        1.25,
        "seq-mean-token-sum-norm (max_len defaults to T = 4)",
        wrong=[(2.5, "divides by the number of tokens instead of B x max_len")],
    )
    got = expect_scalar(impl.aggregate_token_loss(per_token, mask, "seq-mean-token-sum-norm", max_len=5), "max_len")
    expect_close(got, 1.0, "seq-mean-token-sum-norm with max_len = 5")
    noisy = per_token.clone()
    noisy[0, 3] = 99.0
    got = expect_scalar(impl.aggregate_token_loss(noisy, mask, "token-mean"), "token-mean with junk on padding")
    expect_close(got, 2.5, "token-mean must ignore values where mask is 0")


@pytest.mark.points(1)
@pytest.mark.tier("randomised")
def test_aggregate_token_loss_modes_agree_on_full_sequences(impl):
    """aggregate_token_loss: the three modes agree when every sequence has the full length"""
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    for mode in ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"):
        got = expect_scalar(impl.aggregate_token_loss(x, torch.ones(4, 6), mode), mode)
        expect_close(got, float(x.mean()), f"{mode} on full-length sequences", atol=1e-5)


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_grpo_loss_hand_computed(impl):
    """grpo_loss: clipped surrogate per token plus kl_coef x k3, and its statistics"""
    logp = torch.tensor([[0.5, 0.0]])
    ref = torch.tensor([[0.0, math.log(2.0)]])
    out = impl.grpo_loss(
        logp,
        torch.zeros(1, 2),
        ref,
        torch.tensor([1.0]),
        torch.ones(1, 2),
        clip_eps=0.2,
        kl_coef=0.1,
        loss_agg="token-mean",
    )
    if not isinstance(out, tuple) or len(out) != 2:
        fail("grpo_loss must return (loss, stats)")
    loss, stats = out
    k3 = [math.exp(-0.5) + 0.5 - 1, 2.0 - math.log(2.0) - 1]
    expected = (-1.2 - 1.0 + 0.1 * sum(k3)) / 2
    expect_close(
        expect_scalar(loss, "loss"),
        expected,
        "grpo_loss",
        wrong=[
            ((-math.exp(0.5) - 1.0 + 0.1 * sum(k3)) / 2, "does not clip the ratio at 1 + clip_eps"),
            ((-1.2 - 1.0 - 0.1 * sum(k3)) / 2, "subtracts the KL penalty instead of adding it"),
            ((-1.2 - 1.0 + 0.1 * (0.5 - math.log(2.0))) / 2, "uses k1 = logp - ref_logp, not k3"),
        ],
    )
    expect(
        isinstance(stats, dict) and "clip_frac" in stats and "kl" in stats,
        "stats must be a dict with 'clip_frac' and 'kl'",
    )
    expect_close(stats["clip_frac"], 0.5, "stats['clip_frac'] (one of two tokens is clipped)")
    expect_close(stats["kl"], sum(k3) / 2, "stats['kl'] (mean k3 per token)")


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_grpo_loss_zero_at_start_but_gradient_is_not(impl):
    """grpo_loss: reads 0 at ratio 1 with mean-zero advantages, but its gradient does not vanish"""
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    logp = torch.log_softmax(logits, -1)
    old = logp.detach().clone()
    loss, _ = impl.grpo_loss(
        logp, old, old, torch.tensor([1.0, -1.0, 0.5, -0.5]), torch.ones(4, 3), loss_agg="token-mean"
    )
    expect_close(expect_scalar(loss, "loss"), 0.0, "grpo_loss at ratio 1 with advantages summing to 0", atol=1e-6)
    loss.backward()
    expect(
        logits.grad is not None and float(logits.grad.abs().sum()) > 1e-3,
        "the gradient of grpo_loss must flow to logp (do not detach logp)",
    )


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_pass_at_k_matches_enumeration(impl):
    """pass_at_k: equals the share of k-subsets with a correct sample; stable for large n"""
    for n in (1, 3, 6):
        for c in range(n + 1):
            for k in range(1, n + 1):
                samples = [1] * c + [0] * (n - c)
                subsets = list(itertools.combinations(range(n), k))
                exact = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
                expect_close(float(impl.pass_at_k(n, c, k)), exact, f"pass_at_k({n}, {c}, {k})", atol=1e-9)
    expect_close(
        float(impl.pass_at_k(2000, 1, 20)),
        0.01,
        "pass_at_k(2000, 1, 20)",
        atol=1e-9,
        hint="compute 1 - prod(1 - k / i) instead of huge binomial coefficients",
    )
    with pytest.raises(ValueError):
        impl.pass_at_k(4, 1, 5)


def _two_token_policy_pass_at_1(logits1, logits2, answers):
    """Exact pass@1 of the tabular policy: P(first digit) x P(second digit | first) of the right answer."""
    p1 = torch.softmax(logits1, -1)
    p2 = torch.softmax(logits2, -1)
    idx = torch.arange(len(answers))
    tens, units = answers // 10, answers % 10
    return float((p1[idx, tens] * p2[idx, tens, units]).mean())


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_grpo_with_your_functions_raises_pass_at_1(impl):
    """behaviour: GRPO built from your functions lifts the exact pass@1 of a tabular two-digit 'LM'"""
    gen = torch.Generator().manual_seed(0)
    pairs = [(a, b) for a in range(10) for b in range(10)]
    answers = torch.tensor([a + b for a, b in pairs])  # two tokens: tens digit, units digit
    logits1 = torch.zeros(len(pairs), 10, requires_grad=True)
    logits2 = torch.zeros(len(pairs), 10, 10, requires_grad=True)
    opt = torch.optim.Adam([logits1, logits2], lr=0.1)
    before = _two_token_policy_pass_at_1(logits1, logits2, answers)
    g, n_prompts = 8, 32
    for _ in range(150):
        prompts = torch.randint(0, len(pairs), (n_prompts,), generator=gen).repeat_interleave(g)
        with torch.no_grad():
            d1 = torch.multinomial(torch.softmax(logits1[prompts], -1), 1, generator=gen).squeeze(-1)
            d2 = torch.multinomial(torch.softmax(logits2[prompts, d1], -1), 1, generator=gen).squeeze(-1)
        rewards = ((d1 * 10 + d2) == answers[prompts]).float()
        adv = impl.group_advantages(rewards, g, baseline="mean", scale="group")
        lp1 = torch.log_softmax(logits1[prompts], -1).gather(1, d1[:, None])
        lp2 = torch.log_softmax(logits2[prompts, d1], -1).gather(1, d2[:, None])
        logp = torch.cat([lp1, lp2], 1)
        loss, _ = impl.grpo_loss(
            logp,
            logp.detach(),
            logp.detach(),
            adv,
            torch.ones_like(logp),
            clip_eps=0.2,
            kl_coef=0.0,
            loss_agg="seq-mean-token-mean",
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _two_token_policy_pass_at_1(logits1, logits2, answers)
    expect(
        after > before + 0.3,
        f"pass@1 went from {before:.3f} to {after:.3f}; GRPO should lift it by more "
        f"than 0.3 in 150 iterations (check the sign of the advantages and the loss)",
    )
