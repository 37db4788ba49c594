"""Grader of assignment 05: RLHF's pure functions (log-probabilities, preference losses, KL control).

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``). Log-probabilities are checked on a hand-made bigram "language
model" whose probabilities are simple fractions, and on a small randomly initialised GPT-2 for padding
invariance; losses against hand-computed values; the KL estimators against the exact KL of two known
distributions.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel  # imported here, not inside a timed item

from rl4llm.assignments.checks import expect, expect_close, expect_scalar, expect_tensor, fail

ASSIGNMENT = "05-rlhf"

L = math.log


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class BigramLM(torch.nn.Module):
    """A causal LM whose next-token logits depend on the current token only (a table ``[V, V]``).

    With ``V = 3``, after token 0 the next token is 0/1/2 with probability 1/6, 2/6, 3/6; after token 1 each
    has probability 1/3; after token 2, 4/6, 1/6, 1/6. Positions do not matter, so padding on the right is
    harmless.
    """

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor([[0.0, L(2), L(3)], [0.0, 0.0, 0.0], [L(4), 0.0, 0.0]]))

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        return SimpleNamespace(logits=self.table[input_ids])


# prompt + response, right-padded (the last column of row 0 is padding, holding token 1)
IDS = torch.tensor([[0, 2, 1, 1], [1, 0, 2, 0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
RESPONSE = torch.tensor([[0, 0, 1, 0], [0, 0, 1, 1]])
TOKEN_LOGP = [[0.0, L(3 / 6), L(1 / 6), 0.0], [0.0, L(1 / 3), L(3 / 6), L(4 / 6)]]


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_token_logprobs_hand_computed(impl):
    """token_logprobs on a bigram model: shift by one, first column and padding are 0 (hand-computed)"""
    model = BigramLM()
    got = impl.token_logprobs(model, IDS, MASK)
    expect_tensor(got, "token_logprobs(model, input_ids [2, 4], attention_mask [2, 4])", (2, 4))
    expect_close(
        got,
        TOKEN_LOGP,
        "token_logprobs",
        wrong=[
            (
                [[0.0, L(3 / 6), L(1 / 6), L(1 / 3)], [0.0, L(1 / 3), L(3 / 6), L(4 / 6)]],
                "scores padding positions (they must be 0 where attention_mask is 0)",
            ),
            (
                [[0.0, L(1 / 6), L(1 / 3), 0.0], [0.0, L(1 / 6), L(1 / 6), L(1 / 6)]],
                "scores token t with the logits at position t (the logits at t - 1 predict token t)",
            ),
        ],
    )
    expect(got.requires_grad, "token_logprobs cut the graph: gradients must flow back to the model")


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_sequence_logprobs_hand_computed(impl):
    """sequence_logprobs sums the response tokens only (hand-computed on the bigram model)"""
    model = BigramLM()
    got = impl.sequence_logprobs(model, IDS, MASK, RESPONSE)
    expect_tensor(got, "sequence_logprobs(model, input_ids [2, 4], ...)", (2,))
    expect_close(
        got,
        [L(1 / 6), L(3 / 6) + L(4 / 6)],
        "sequence_logprobs",
        wrong=[
            (
                [L(3 / 6) + L(1 / 6), L(1 / 3) + L(3 / 6) + L(4 / 6)],
                "sums every token instead of the response tokens (use response_mask)",
            ),
            (
                [L(1 / 3), L(1 / 6) + L(1 / 6)],
                "scores token t with the logits at position t (the logits at t - 1 predict token t)",
            ),
            ([L(1 / 6) / 1, (L(3 / 6) + L(4 / 6)) / 2], "averages instead of summing"),
        ],
    )
    expect(got.requires_grad, "sequence_logprobs cut the graph: gradients must flow back to the model")


def _tiny_gpt2():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=16,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_logprobs_are_invariant_to_left_padding(impl, ref):
    """on a real (tiny, random) GPT-2, a left-padded batch scores like each sequence alone"""
    model = _tiny_gpt2()
    rows = [[1, 5, 7, 3, 9, 12], [1, 4, 4], [1, 8, 6, 2, 11]]
    width = max(map(len, rows))
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.no_grad():
        batch = impl.token_logprobs(model, ids, mask)
        expect_tensor(batch, "token_logprobs on a left-padded batch", tuple(ids.shape))
        alone = [
            impl.token_logprobs(model, torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long))[0] for r in rows
        ]
        unshifted = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
        naive = unshifted[:, :-1].gather(-1, ids[:, 1:, None])[..., 0] * (mask[:, 1:] * mask[:, :-1])
        naive = torch.cat([torch.zeros(len(rows), 1), naive], 1)
        for i, r in enumerate(rows):
            expect_close(
                alone[i],
                ref.token_logprobs(model, torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long))[0],
                f"token_logprobs of sequence {i} alone (no padding)",
                atol=1e-5,
            )
            expect_close(
                batch[i, width - len(r) :],
                alone[i],
                f"token_logprobs of sequence {i} inside a left-padded batch, compared with the same sequence alone",
                atol=1e-4,
                wrong=[
                    (
                        naive[i, width - len(r) :],
                        "does not pass position ids computed from the "
                        "attention mask (with left padding, positions must "
                        "count real tokens only)",
                    )
                ],
            )
            expect_close(
                batch[i, : width - len(r)], np.zeros(width - len(r)), f"token_logprobs on the padding of sequence {i}"
            )
        response = mask.clone()
        response[:, -2:] = 1
        response[:, : width - 2] = 0
        seq = impl.sequence_logprobs(model, ids, mask, response)
        expect_close(
            seq,
            (batch * response).sum(1),
            "sequence_logprobs against the sum of token_logprobs over the response mask",
            atol=1e-4,
        )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_bradley_terry_hand_computed(impl):
    """bradley_terry_loss with and without a margin (hand-computed)"""
    chosen, rejected = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.5, -1.0])
    diffs = [1.0, -0.5, 0.0]
    got = expect_scalar(impl.bradley_terry_loss(chosen, rejected), "bradley_terry_loss(chosen, rejected)")
    expect_close(
        got,
        -sum(L(_sig(d)) for d in diffs) / 3,
        "bradley_terry_loss(chosen, rejected)",
        wrong=[
            (-sum(L(_sig(-d)) for d in diffs) / 3, "swaps chosen and rejected"),
            (-sum(L(_sig(d)) for d in diffs), "sums over the pairs instead of averaging"),
            (sum(L(_sig(d)) for d in diffs) / 3, "has the wrong sign (minimise the negative log-likelihood)"),
            (-sum(L(1 - _sig(d)) for d in diffs) / 3, "uses log(1 - sigma) instead of log sigma"),
        ],
    )
    margin = torch.tensor([0.5, 0.0, 1.0])
    got_m = expect_scalar(impl.bradley_terry_loss(chosen, rejected, margin), "bradley_terry_loss(..., margin)")
    expect_close(
        got_m,
        -(L(_sig(0.5)) + L(_sig(-0.5)) + L(_sig(-1.0))) / 3,
        "bradley_terry_loss(chosen, rejected, margin=[0.5, 0, 1])",
        wrong=[
            (
                -(L(_sig(1.5)) + L(_sig(-0.5)) + L(_sig(1.0))) / 3,
                "adds the margin instead of subtracting it (the chosen reward must win by m)",
            )
        ],
    )
    got_f = expect_scalar(
        impl.bradley_terry_loss(torch.tensor([3.0]), torch.tensor([1.0]), 2.0), "bradley_terry_loss(..., margin=2.0)"
    )
    expect_close(got_f, math.log(2), "bradley_terry_loss([3], [1], margin=2.0) (a float margin)")


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_bradley_terry_is_numerically_stable(impl):
    """bradley_terry_loss stays finite, with the right gradient, for huge reward gaps"""
    chosen = torch.tensor([200.0, -200.0], requires_grad=True)
    loss = impl.bradley_terry_loss(chosen, torch.zeros(2))
    value = expect_scalar(loss, "bradley_terry_loss([200, -200], [0, 0])")
    expect(
        math.isfinite(value),
        f"bradley_terry_loss([200, -200], [0, 0]) = {value}: log(sigmoid(x)) underflows; "
        f"use torch.nn.functional.logsigmoid (or -softplus(-x))",
    )
    expect_close(value, 100.0, "bradley_terry_loss([200, -200], [0, 0])", rtol=1e-4)
    loss.backward()
    expect_close(chosen.grad, [0.0, -0.5], "the gradient of bradley_terry_loss for huge gaps", atol=1e-5)


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_dpo_loss_hand_computed(impl):
    """dpo_loss: log 2 at the reference, and a hand-computed case with beta = 0.5"""
    pc, pr = torch.tensor([-3.0, -7.5]), torch.tensor([-4.0, -1.0])
    at_ref = expect_scalar(impl.dpo_loss(pc, pr, pc.clone(), pr.clone(), 0.1), "dpo_loss at the reference")
    expect_close(at_ref, math.log(2), "dpo_loss when the policy equals the reference")
    pi_c, pi_r = torch.tensor([-2.0, -1.0]), torch.tensor([-5.0, -3.0])
    ref_c, ref_r = torch.tensor([-3.0, -1.0]), torch.tensor([-4.0, -2.0])
    # beta * ((pi_c - ref_c) - (pi_r - ref_r)) = 0.5 * [2, 1]
    got = expect_scalar(impl.dpo_loss(pi_c, pi_r, ref_c, ref_r, 0.5), "dpo_loss(..., beta=0.5)")
    expect_close(
        got,
        -(L(_sig(1.0)) + L(_sig(0.5))) / 2,
        "dpo_loss(..., beta=0.5)",
        wrong=[
            (-(L(_sig(2.0)) + L(_sig(1.0))) / 2, "ignores beta"),
            (-(L(_sig(-1.0)) + L(_sig(-0.5))) / 2, "swaps chosen and rejected (or policy and reference)"),
            (
                -0.5 * (L(_sig(2.0)) + L(_sig(1.0))) / 2,
                "multiplies the loss by beta instead of the log-ratio difference",
            ),
            (-(L(_sig(1.0)) + L(_sig(0.5))), "sums over the pairs instead of averaging"),
        ],
    )


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_dpo_gradient_direction(impl):
    """dpo_loss pushes the chosen log-prob up and the rejected one down, by beta * (1 - sigma) / N"""
    pi_c = torch.tensor([-2.0], requires_grad=True)
    pi_r = torch.tensor([-2.0], requires_grad=True)
    impl.dpo_loss(pi_c, pi_r, torch.tensor([-2.0]), torch.tensor([-2.0]), 2.0).backward()
    expect(pi_c.grad is not None and pi_r.grad is not None, "no gradient reached the policy log-probs")
    expect_close(
        [pi_c.grad.item(), pi_r.grad.item()],
        [-1.0, 1.0],
        "the gradients of dpo_loss with respect to (pi_chosen, pi_rejected) at the reference, beta = 2",
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_kl_estimators_hand_computed(impl):
    """kl_k1, kl_k2, kl_k3 per token (hand-computed)"""
    logp, ref = torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-1.5, -1.0, -0.5])
    x = [-0.5, 1.0, 0.0]  # log ref - log pi
    k1 = impl.kl_k1(logp, ref)
    expect_tensor(k1, "kl_k1(logp [3], ref_logp [3])", (3,))
    expect_close(
        k1, [0.5, -1.0, 0.0], "kl_k1", wrong=[([-0.5, 1.0, 0.0], "has the sign flipped: k1 = logp - ref_logp")]
    )
    expect_close(
        impl.kl_k2(logp, ref),
        [0.125, 0.5, 0.0],
        "kl_k2",
        wrong=[([0.25, 1.0, 0.0], "forgets the factor 1/2"), ([0.5, 1.0, 0.0], "forgets to square")],
    )
    k3 = [math.expm1(v) - v for v in x]
    swapped = [math.expm1(-v) + v for v in x]
    expect_close(
        impl.kl_k3(logp, ref),
        k3,
        "kl_k3",
        wrong=[(swapped, "swaps the policy and the reference: x = log pi_ref - log pi")],
    )


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_kl_estimators_are_unbiased(impl):
    """k1 and k3 average to the exact KL on samples from the policy; k2 and k3 are never negative"""
    gen = torch.Generator().manual_seed(0)
    pi = torch.softmax(torch.randn(10, generator=gen), 0)
    pref = torch.softmax(torch.randn(10, generator=gen), 0)
    exact = float((pi * (pi.log() - pref.log())).sum())
    actions = torch.multinomial(pi, 200_000, replacement=True, generator=gen)
    logp, ref = pi.log()[actions], pref.log()[actions]
    for name in ("kl_k1", "kl_k3"):
        k = getattr(impl, name)(logp, ref)
        expect_tensor(k, f"{name}(logp [200000], ref_logp [200000])", (200_000,))
        mean, se = float(k.mean()), float(k.std()) / math.sqrt(k.numel())
        expect(
            abs(mean - exact) < 5 * se + 1e-6,
            f"{name} averages {mean:.4f} over 200k samples from the policy, "
            f"but KL(pi || pi_ref) = {exact:.4f} (standard error {se:.4f}): "
            f"the estimator is biased",
        )
    for name in ("kl_k2", "kl_k3"):
        k = getattr(impl, name)(logp, ref)
        expect(float(k.min()) >= -1e-6, f"{name} has a negative value ({float(k.min()):.4g}); it must be >= 0")


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_adaptive_kl_controller_updates(impl):
    """AdaptiveKLController: clipped proportional updates (hand-computed)"""
    ctl = impl.AdaptiveKLController(0.1, 6.0, 10_000)
    v1 = ctl.update(9.0, 256)  # error clip(9/6 - 1) = 0.2 -> x (1 + 0.2 * 0.0256)
    expect(v1 is not None, "AdaptiveKLController.update must return the new coefficient")
    expect_close(
        v1,
        0.1 * (1 + 0.2 * 0.0256),
        "the coefficient after update(KL=9, n_steps=256) with target 6",
        wrong=[
            (0.1 * (1 + 0.5 * 0.0256), "does not clip the proportional error to [-0.2, 0.2]"),
            (0.1 + 0.2 * 0.0256, "adds the correction instead of multiplying the coefficient by it"),
            (0.1 * 1.2, "ignores n_steps / horizon"),
            (0.1 * (1 - 0.2 * 0.0256), "moves the coefficient the wrong way (too much KL must raise it)"),
        ],
    )
    expect_close(ctl.value, v1, "ctl.value after an update (the attribute must hold the new coefficient)")
    v2 = ctl.update(5.4, 1000)  # error -0.1 -> x (1 - 0.01)
    expect_close(v2, v1 * 0.99, "the coefficient after a second update(KL=5.4, n_steps=1000)")
    v3 = ctl.update(0.0, 10_000)  # error clipped at -0.2 -> x 0.8
    expect_close(v3, v1 * 0.99 * 0.8, "the coefficient after update(KL=0, n_steps=10000)")


@pytest.mark.points(1)
@pytest.mark.tier("behaviour")
def test_adaptive_kl_controller_reaches_the_target(impl):
    """AdaptiveKLController steers a simulated KL (KL = 2 / beta) to its target"""
    ctl = impl.AdaptiveKLController(2.0, 4.0, 100)
    kl = 2.0 / ctl.value
    for _ in range(300):
        ctl.update(kl, 50)
        kl = 2.0 / ctl.value
    expect(
        abs(kl - 4.0) < 0.05 * 4.0,
        f"after 300 updates the simulated KL is {kl:.3f}, the target is 4 (beta "
        f"{ctl.value:.4f}; the fixed point is beta = 0.5)",
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_kl_penalised_rewards_hand_computed(impl):
    """kl_penalised_rewards: -beta * k1 per token, the score on each response's last token, 0 on padding"""
    score = torch.tensor([2.0, -1.0])
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -1.0, -3.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-2.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # row 1 ends at token 1; token 2 is padding
    out = impl.kl_penalised_rewards(score, logp, ref, mask, 0.1)
    if not isinstance(out, tuple) or len(out) != 2:
        fail(f"kl_penalised_rewards must return a tuple (rewards, kl), got {type(out).__name__}")
    rewards, kl = out
    expect_close(
        kl,
        [[0.5, -1.0, 0.0], [1.0, 0.0, 0.0]],
        "the kl returned by kl_penalised_rewards (k1, 0 on padding)",
        wrong=[([[0.5, -1.0, 0.0], [1.0, 0.0, -2.0]], "does not zero the padding")],
    )
    expect_close(
        rewards,
        [[-0.05, 0.1, 2.0], [-0.1, -1.0, 0.0]],
        "the rewards of kl_penalised_rewards(beta=0.1)",
        wrong=[
            (
                [[-0.05, 0.1, 2.0], [-0.1, 0.0, 0.0]],
                "pays the score at the last column instead of each response's last token (padding!)",
            ),
            ([[0.05, -0.1, 2.0], [0.1, -1.0, 0.0]], "adds the KL instead of subtracting it"),
            ([[-0.05, 0.1, 2.0], [-0.1, -1.0, 0.2]], "does not zero the padding"),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_token_advantages_hand_computed(impl):
    """token_advantages: GAE over right-padded responses that end at their last token (hand-computed)"""
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.4], [1.0, 0.5, 9.0]])  # 9.0 sits on padding: never bootstrap from it
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    out = impl.token_advantages(rewards, values, mask, 1.0, 0.5)
    if not isinstance(out, tuple) or len(out) != 2:
        fail(f"token_advantages must return a tuple (advantages, returns), got {type(out).__name__}")
    adv, ret = out
    # row 0: delta = [-0.3, 0.2, 0.6] -> A = [-0.05, 0.5, 0.6]; row 1: delta = [-0.5, 1.5] -> A = [0.25, 1.5]
    expect_close(
        adv,
        [[-0.05, 0.5, 0.6], [0.25, 1.5, 0.0]],
        "the advantages of token_advantages(gamma=1, gae_lambda=0.5)",
        wrong=[
            (
                [[-0.05, 0.5, 0.6], [4.75, 10.5, 0.0]],
                "bootstraps from the padding after a response's last token (the episode ends there)",
            )
        ],
    )
    expect_close(ret, [[0.45, 0.7, 1.0], [1.25, 2.0, 0.0]], "the returns of token_advantages (A + V, 0 on padding)")


def _preferences(gen: torch.Generator, n_responses: int = 40, d: int = 8, n_pairs: int = 3000):
    phi = torch.randn(n_responses, d, generator=gen)
    w_star = torch.randn(d, generator=gen)
    gold = phi @ w_star
    i = torch.randint(0, n_responses, (n_pairs,), generator=gen)
    j = (i + torch.randint(1, n_responses, (n_pairs,), generator=gen)) % n_responses
    prefer_i = torch.rand(n_pairs, generator=gen) < torch.sigmoid(gold[i] - gold[j])  # Bradley-Terry labels
    chosen, rejected = torch.where(prefer_i, i, j), torch.where(prefer_i, j, i)
    return phi, w_star, gold, chosen, rejected


def _ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(len(x))
    r[np.argsort(x)] = np.arange(len(x))
    return r


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_reward_model_and_dpo_learn_from_preferences(impl):
    """your Bradley-Terry loss fits a reward model and your DPO loss aligns a policy, from noisy comparisons"""
    gen = torch.Generator().manual_seed(0)
    phi, w_star, gold, chosen, rejected = _preferences(gen)
    train, test = slice(0, 2500), slice(2500, None)
    w = torch.zeros(phi.shape[1], requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(300):
        loss = impl.bradley_terry_loss(phi[chosen[train]] @ w, phi[rejected[train]] @ w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        r = phi @ w
        c, rj = chosen[test], rejected[test]
        agree = float(((r[c] > r[rj]) == (gold[c] > gold[rj])).float().mean())
        cos = float(torch.nn.functional.cosine_similarity(w, w_star, 0))
    expect(
        agree > 0.9 and cos > 0.9,
        f"the reward model fitted with your bradley_terry_loss ranks {agree:.0%} of "
        f"held-out pairs like the gold reward (cosine to the true weights {cos:.2f}); "
        f"expected > 90% and > 0.9",
    )
    n = phi.shape[0]
    theta = torch.zeros(n, requires_grad=True)
    ref_logp = torch.full((n,), -math.log(n))
    opt = torch.optim.Adam([theta], lr=0.05)
    for _ in range(300):
        logp = torch.log_softmax(theta, 0)
        loss = impl.dpo_loss(
            logp[chosen[train]], logp[rejected[train]], ref_logp[chosen[train]], ref_logp[rejected[train]], 0.5
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pi = torch.softmax(theta, 0)
        gain = float(pi @ gold) - float(gold.mean())
        rho = float(np.corrcoef(_ranks(theta.numpy()), _ranks(gold.numpy()))[0, 1])
    expect(
        rho > 0.8 and gain > 1.0,
        f"after DPO with your dpo_loss, the policy's log-probabilities rank-correlate "
        f"{rho:.2f} with the gold reward and raise its expected gold reward by {gain:.2f} "
        f"over the reference; expected > 0.8 and > 1",
    )
