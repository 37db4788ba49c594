"""Grader of assignment 03: behaviour cloning and DAgger on the tightrope.

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``). Expected costs come from closed forms derived independently of the
recursions the student writes:

* behaviour cloning: :math:`J = T - (1-\\epsilon)(1 - (1-\\epsilon)^T)/\\epsilon`;
* DAgger: :math:`p_t = 1/(1+\\epsilon) + (-\\epsilon)^{t-1}\\,\\epsilon/(1+\\epsilon)` solves
  :math:`p_{t+1} = 1 - \\epsilon p_t`, so :math:`J = \\epsilon T/(1+\\epsilon) + \\epsilon^2 (1 - (-\\epsilon)^T)/(1+\\epsilon)^2`.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rl4llm.assignments.checks import expect, expect_close, expect_scalar

ASSIGNMENT = "03-imitation"


def bc_closed_form(T: int, eps: float) -> float:
    if eps == 0:
        return 0.0
    return T - (1 - eps) * (1 - (1 - eps) ** T) / eps


def dagger_closed_form(T: int, eps: float) -> float:
    return eps * T / (1 + eps) + eps**2 * (1 - (-eps) ** T) / (1 + eps) ** 2


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_bc_loss_hand_computed(impl):
    """bc_loss: mean negative log-likelihood of the expert's actions (hand-computed)"""
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    actions = torch.tensor([0, 2])
    # log softmax: row 1 picks 2 - log(e^2 + 2), row 2 picks 0 - log(2 + e)
    nll = [-(2 - math.log(math.exp(2) + 2)), math.log(2 + math.e)]
    got = expect_scalar(impl.bc_loss(logits, actions), "bc_loss(logits [2, 3], actions [2])")
    p = torch.softmax(logits, 1)
    expect_close(
        got,
        sum(nll) / 2,
        "bc_loss",
        wrong=[
            (-(2.0 + 0.0) / 2, "forgets the log-sum-exp (normalisation) term of the log-softmax"),
            (sum(nll), "sums over the examples instead of averaging"),
            (-sum(nll) / 2, "has the wrong sign (minimise the negative log-likelihood)"),
            (-(p[0, 0] + p[1, 2]).item() / 2, "uses probabilities instead of log-probabilities"),
            (
                (math.log(math.exp(2) + 2) - 0.0 + math.log(2 + math.e) - 0.0) / 2,
                "picks the wrong column (index the logits with the expert's action)",
            ),
        ],
    )


@pytest.mark.points(1)
@pytest.mark.tier("randomised")
def test_bc_loss_matches_cross_entropy(impl):
    """bc_loss equals cross-entropy on random logits, large ones included, with the same gradient"""
    gen = torch.Generator().manual_seed(0)
    for scale in (1.0, 100.0):
        logits = (scale * torch.randn(64, 5, generator=gen)).requires_grad_(True)
        actions = torch.randint(0, 5, (64,), generator=gen)
        got = impl.bc_loss(logits, actions)
        expect_close(
            got,
            F.cross_entropy(logits, actions),
            f"bc_loss on random logits of scale {scale:g}",
            atol=1e-4,
            rtol=1e-4,
            hint="(with large logits, exp overflows: use log_softmax or logsumexp)",
        )
        (grad,) = torch.autograd.grad(got, logits)
        expected = (torch.softmax(logits, 1) - F.one_hot(actions, 5)) / 64
        expect_close(grad, expected, f"the gradient of bc_loss on random logits of scale {scale:g}", atol=1e-5)


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_beta_schedule(impl):
    """beta_schedule: beta_1 = 1, then p^(i - 1)"""
    cases = [
        ((1, 0.5), 1.0),
        ((2, 0.5), 0.5),
        ((3, 0.5), 0.25),
        ((1, 0.0), 1.0),
        ((2, 0.0), 0.0),
        ((4, 1.0), 1.0),
        ((5, 0.9), 0.9**4),
    ]
    got = [impl.beta_schedule(i, p) for (i, p), _ in cases]
    expect(
        all(isinstance(g, (int, float)) for g in got),
        f"beta_schedule must return a float; got {[type(g).__name__ for g in got]}",
    )
    expect_close(
        got,
        [e for _, e in cases],
        "beta_schedule(i, p) for (i, p) in " + str([c for c, _ in cases]),
        wrong=[
            ([p**i for (i, p), _ in cases], "is off by one: beta_i = p^(i - 1), so beta_1 = 1"),
            (
                [1 - p ** (i - 1) for (i, p), _ in cases],
                "gives the learner's share instead of the expert's (beta is the expert's probability)",
            ),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_bc_cost_small_horizons(impl):
    """bc_cost_exact: small horizons by hand, and eps = 0"""
    got = [impl.bc_cost_exact(1, 0.1), impl.bc_cost_exact(3, 0.1), impl.bc_cost_exact(5, 0.0)]
    # T = 3: (1 - .9) + (1 - .81) + (1 - .729) = 0.561
    expected = [0.1, 0.561, 0.0]
    expect_close(
        got,
        expected,
        "[bc_cost_exact(1, 0.1), bc_cost_exact(3, 0.1), bc_cost_exact(5, 0.0)]",
        wrong=[
            ([0.0, 0.29, 0.0], "sums t = 0..T-1 instead of t = 1..T"),
            ([0.1 * 1 / 2, 0.1 * 9 / 2, 0.0], "uses the approximation eps T^2 / 2 instead of the exact sum"),
            ([0.1, 0.6, 0.0], "uses the approximation eps T (T + 1) / 2 instead of the exact sum"),
            ([0.1, 0.271, 0.0], "returns the cost of the last step instead of the total"),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_dagger_cost_small_horizons(impl):
    """dagger_cost_exact: small horizons by hand (the walker climbs back at once)"""
    got = [impl.dagger_cost_exact(1, 0.1), impl.dagger_cost_exact(2, 0.1), impl.dagger_cost_exact(3, 0.1)]
    # p = 1, 0.9, 0.91: cost 0.1, 0.1 + 0.09, + 0.091
    expected = [0.1, 0.19, 0.281]
    expect_close(
        got,
        expected,
        "[dagger_cost_exact(T, 0.1) for T in (1, 2, 3)]",
        wrong=[
            (
                [0.1, 0.19, 0.271],
                "lets a fallen walker stay down (p_{t+1} = (1 - eps) p_t): the "
                "DAgger walker climbs back, p_{t+1} = 1 - eps p_t",
            ),
            ([0.1, 0.2, 0.3], "returns the bound eps T instead of the exact sum"),
            ([0.0, 0.1, 0.19], "counts the steps from 0 (the first step costs eps)"),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_exact_costs_match_closed_forms(impl):
    """both exact costs match closed forms over random horizons and error rates; BC grows like T^2"""
    rng = np.random.default_rng(0)
    for _ in range(25):
        T, eps = int(rng.integers(1, 400)), float(rng.uniform(0.001, 0.45))
        expect_close(
            impl.bc_cost_exact(T, eps), bc_closed_form(T, eps), f"bc_cost_exact({T}, {eps:.4f})", rtol=1e-6, atol=1e-8
        )
        expect_close(
            impl.dagger_cost_exact(T, eps),
            dagger_closed_form(T, eps),
            f"dagger_cost_exact({T}, {eps:.4f})",
            rtol=1e-6,
            atol=1e-8,
        )
    # small eps * T: doubling the horizon about quadruples BC's cost but only doubles DAgger's
    ratio_bc = impl.bc_cost_exact(40, 1e-4) / impl.bc_cost_exact(20, 1e-4)
    ratio_dagger = impl.dagger_cost_exact(40, 1e-4) / impl.dagger_cost_exact(20, 1e-4)
    expect(
        3.6 < ratio_bc < 4.1 and 1.9 < ratio_dagger < 2.1,
        f"doubling T from 20 to 40 at eps = 1e-4 should multiply BC's cost by about 4 and DAgger's by 2; got "
        f"{ratio_bc:.2f} and {ratio_dagger:.2f}",
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_soft_cross_entropy_hand_computed(impl):
    """soft_cross_entropy: cross-entropy to label distributions over labelled positions only (hand-computed)"""
    L = math.log
    logits = torch.tensor([[[0.0, 0.0, L(2)], [L(3), 0.0, 0.0]], [[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]]])
    targets = torch.tensor([[[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # the last position is padding
    # softmax rows: [1/4, 1/4, 1/2], [3/5, 1/5, 1/5], [1/3, 1/3, 1/3]; padding: -log(1 / (e^5 + 2))
    ce = [0.5 * L(4) + 0.5 * L(2), -L(3 / 5), L(3)]
    pad = L(math.exp(5) + 2)
    got = expect_scalar(impl.soft_cross_entropy(logits, targets, mask), "soft_cross_entropy(logits [2, 2, 3], ...)")
    expect_close(
        got,
        sum(ce) / 3,
        "soft_cross_entropy",
        wrong=[
            ((sum(ce) + pad) / 4, "averages over every position, padding included (use the mask)"),
            (sum(ce) / 4, "divides by the number of positions B * T instead of the labelled ones"),
            (sum(ce), "sums instead of averaging over the labelled positions"),
            (
                (L(4) + ce[1] + ce[2]) / 3,
                "uses the most likely label only (the targets are distributions: weight every word's log-probability)",
            ),
        ],
    )
    empty = expect_scalar(impl.soft_cross_entropy(logits, targets, torch.zeros(2, 2)), "soft_cross_entropy(mask 0)")
    expect(
        math.isfinite(empty) and empty == 0.0,
        f"soft_cross_entropy with no labelled position must be 0, got "
        f"{empty} (divide by max(1, number of labelled positions))",
    )


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_learned_walkers_match_the_theory(impl, monkeypatch):
    """BC and DAgger walkers trained with your loss and schedule cost what the theory says"""
    from rl4llm.imitation.tightrope import tightrope_costs

    # importlib, not `import ... as`: the package re-exports a function called `dagger` over the module's name
    dagger_module = importlib.import_module("rl4llm.imitation.dagger")
    policy_module = importlib.import_module("rl4llm.imitation.policy")

    monkeypatch.setattr(policy_module, "bc_loss", impl.bc_loss)
    monkeypatch.setattr(dagger_module, "beta_schedule", impl.beta_schedule)
    T, eps = 20, 0.1
    bc = tightrope_costs(T, eps, "bc", n_rollouts=2000, seed=0)
    dagger = tightrope_costs(T, eps, "dagger", n_rollouts=2000, seed=0)
    bc_theory, dagger_theory = bc_closed_form(T, eps), dagger_closed_form(T, eps)
    expect(
        abs(bc - bc_theory) < 0.1 * bc_theory + 0.2,
        f"the behaviour-cloned walker costs {bc:.2f} over T = {T} steps; theory says {bc_theory:.2f}. "
        f"(Is bc_loss a proper cross-entropy? The learner is fitted by minimising it.)",
    )
    expect(
        abs(dagger - dagger_theory) < 0.15 * dagger_theory + 0.2,
        f"the DAgger walker costs {dagger:.2f} over T = {T} steps; theory says {dagger_theory:.2f}. "
        f"(Does beta_schedule hand control to the learner, so that DAgger sees falls?)",
    )
    expect(bc > 3 * dagger, f"DAgger ({dagger:.2f}) should cost far less than BC ({bc:.2f}) on the tightrope")
