"""Grader of assignment 04: maximum-entropy and adversarial inverse RL.

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``). The soft Bellman recursion is checked on a two-state MDP small
enough to enumerate every action sequence by hand (for deterministic dynamics :math:`V_0(s) = \\log \\sum_\\tau
e^{R(\\tau)}`), and on random stochastic MDPs against the reference.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from rl4llm.assignments.checks import expect, expect_close, expect_scalar, fail, to_numpy

ASSIGNMENT = "04-inverse-rl"

E = math.e
# two states, two actions, deterministic: action 0 stays, action 1 switches; reward r = [0, 1]
P2 = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
R2 = np.array([0.0, 1.0])


def soft_vi_py(P, r, H, *, hard=False, next_state_reward=False):
    """Soft value iteration by loops over states and actions; the flags reproduce typical mistakes."""
    S, A = P.shape[0], P.shape[1]
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    for t in reversed(range(H)):
        for s in range(S):
            for a in range(A):
                nxt = sum(P[s, a, s2] * ((r[s2] if next_state_reward else 0.0) + V[t + 1, s2]) for s2 in range(S))
                Q[t, s, a] = (0.0 if next_state_reward else r[s]) + nxt
            V[t, s] = max(Q[t, s]) if hard else math.log(sum(math.exp(q) for q in Q[t, s]))
    return Q, V


def _unpack(out, what):
    if not isinstance(out, tuple) or len(out) != 3:
        fail(f"{what} must return a tuple (Q, V, policy), got {type(out).__name__}")
    return [to_numpy(x, what) for x in out]


@pytest.mark.points(1)
@pytest.mark.tier("shapes")
def test_soft_value_iteration_shapes(impl):
    """soft_value_iteration returns Q [H, S, A], V [H + 1, S] and a policy whose rows sum to 1"""
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=(4, 3))
    Q, V, pi = _unpack(impl.soft_value_iteration(P, rng.normal(size=4), 5), "soft_value_iteration(P [4, 3, 4], ...)")
    expect(Q.shape == (5, 4, 3), f"Q has shape {Q.shape}, expected (H, S, A) = (5, 4, 3)")
    expect(V.shape == (6, 4), f"V has shape {V.shape}, expected (H + 1, S) = (6, 4) (V_H = 0 is included)")
    expect(pi.shape == (5, 4, 3), f"policy has shape {pi.shape}, expected (H, S, A) = (5, 4, 3)")
    expect(
        np.allclose(pi.sum(-1), 1.0, atol=1e-6),
        "the policy's rows do not sum to 1: pi_t(a|s) = exp(Q_t(s, a) - V_t(s)) with V_t the log-sum-exp of Q_t(s, .)",
    )
    expect(np.allclose(V[-1], 0.0), f"V[H] must be 0 (nothing left to collect), got {V[-1]}")


@pytest.mark.points(3)
@pytest.mark.tier("hand-computed")
def test_soft_value_iteration_hand_computed(impl):
    """soft_value_iteration on a two-state MDP, H = 2, against sums over all action sequences"""
    Q, V, pi = _unpack(impl.soft_value_iteration(P2, R2, 2), "soft_value_iteration(P, r=[0, 1], horizon=2)")
    # from s0: staying twice or staying-then-switching gives R = 0 (2 sequences), switching first R = 1 (2):
    # V_0(s0) = log(2 + 2e); from s1 likewise V_0(s1) = log(2e^2 + 2e)
    expected_V = [[math.log(2 + 2 * E), math.log(2 * E * E + 2 * E)], [math.log(2), 1 + math.log(2)], [0.0, 0.0]]
    Qh, Vh = soft_vi_py(P2, R2, 2, hard=True)
    Qn, Vn = soft_vi_py(P2, R2, 2, next_state_reward=True)
    expect_close(
        V,
        expected_V,
        "V of soft_value_iteration",
        wrong=[
            (
                Vh,
                "takes a hard max over actions (ordinary value iteration); the soft value is the "
                "log-sum-exp of Q over actions",
            ),
            (Vn, "collects the reward of the next state; r_t = r(s_t) is the reward of the state acted in"),
        ],
    )
    expected_Q = [[[math.log(2), 1 + math.log(2)], [2 + math.log(2), 1 + math.log(2)]], [[0.0, 0.0], [1.0, 1.0]]]
    expect_close(Q, expected_Q, "Q of soft_value_iteration")
    expected_pi = [[[1 / (1 + E), E / (1 + E)], [E / (1 + E), 1 / (1 + E)]], [[0.5, 0.5], [0.5, 0.5]]]
    expect_close(pi, expected_pi, "the policy of soft_value_iteration (pi_t(a|s) = exp(Q_t(s, a) - V_t(s)))")


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_soft_value_iteration_stochastic_and_stable(impl, ref):
    """soft_value_iteration matches the reference on random stochastic MDPs, and on large rewards"""
    rng = np.random.default_rng(1)
    for S, A, H, scale in ((5, 3, 4, 1.0), (9, 5, 12, 2.0), (6, 2, 30, 50.0)):
        P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
        r = scale * rng.normal(size=S)
        got = _unpack(impl.soft_value_iteration(P, r, H), f"soft_value_iteration on a random MDP ({S} states)")
        want = ref.soft_value_iteration(P, r, H)
        for name, g, w in zip(("Q", "V", "policy"), got, want):
            expect(
                np.all(np.isfinite(g)),
                f"{name} of soft_value_iteration is not finite for rewards of scale "
                f"{scale:g} over {H} steps: compute log-sum-exp stably (subtract the max)",
            )
            expect_close(
                g,
                w,
                f"{name} of soft_value_iteration on a random MDP ({S} states, {A} actions, H = {H})",
                atol=1e-6,
                rtol=1e-6,
            )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_state_visitation_hand_computed(impl):
    """state_visitation_frequencies: the forward pass on the two-state MDP (hand-computed)"""
    pi = np.array([[[1 / (1 + E), E / (1 + E)], [E / (1 + E), 1 / (1 + E)]], [[0.5, 0.5], [0.5, 0.5]]])
    D = to_numpy(impl.state_visitation_frequencies(P2, pi, np.array([1.0, 0.0])), "state_visitation_frequencies")
    # d_0 = [1, 0]; d_1 = pi_0(.|s0) pushed through P = [1/(1+e), e/(1+e)]
    expected = [1 + 1 / (1 + E), E / (1 + E)]
    expect_close(
        D,
        expected,
        "state_visitation_frequencies(P, policy, p0=[1, 0]) with H = 2",
        wrong=[
            ([1.5, 0.5], "uses the policy of the wrong time step (d_{t+1} is d_t pushed through pi_t)"),
            (
                [1 + 1 / (1 + E) + 0.5, E / (1 + E) + 0.5],
                "sums H + 1 distributions d_0 ... d_H; the episode visits d_0 ... d_{H-1}",
            ),
            ([1 / (1 + E), E / (1 + E)], "returns the last distribution instead of the sum over steps"),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_state_visitation_random_mdps(impl, ref):
    """state_visitation_frequencies sums to H and matches the reference on random MDPs and policies"""
    rng = np.random.default_rng(2)
    for S, A, H in ((4, 2, 3), (10, 5, 15)):
        P = rng.dirichlet(np.ones(S), size=(S, A))
        pi = rng.dirichlet(np.ones(A), size=(H, S))
        p0 = rng.dirichlet(np.ones(S))
        D = to_numpy(impl.state_visitation_frequencies(P, pi, p0), "state_visitation_frequencies")
        expect(D.shape == (S,), f"state_visitation_frequencies returned shape {D.shape}, expected (S,) = ({S},)")
        expect_close(
            D.sum(), float(H), f"the total of state_visitation_frequencies over {H} steps (one visit per step)"
        )
        expect_close(
            D,
            ref.state_visitation_frequencies(P, pi, p0),
            f"state_visitation_frequencies on a random MDP ({S} states, H = {H})",
            atol=1e-8,
        )
        D2, d = impl.state_visitation_frequencies(P, pi, p0, return_per_step=True)
        expect_close(
            d,
            ref.state_visitation_frequencies(P, pi, p0, return_per_step=True)[1],
            "the per-step distributions d (return_per_step=True)",
            atol=1e-8,
        )


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_maxent_gradient_hand_computed(impl):
    """maxent_gradient: expert feature counts minus the model's (hand-computed)"""
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    got = impl.maxent_gradient(np.array([2.0, 2.0]), features, np.array([0.5, 1.0, 1.5]))
    # model counts: D @ phi = [0.5 + 1.5, 1 + 1.5] = [2, 2.5]
    expect_close(
        got,
        [0.0, -0.5],
        "maxent_gradient(mu_E=[2, 2], phi, D=[0.5, 1, 1.5])",
        wrong=[([0.0, 0.5], "has the wrong sign: it is mu_E - mu_theta (ascend the log-likelihood)")],
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_discriminator_loss_hand_computed(impl):
    """discriminator_loss: logistic loss, each batch averaged on its own, stable for huge logits"""
    expert, policy = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0, 3.0])
    sp = lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0)  # noqa: E731 - softplus
    expected = (sp(0.0) + sp(-2.0)) / 2 + (sp(0.0) + sp(-1.0) + sp(3.0)) / 3
    got = expect_scalar(impl.discriminator_loss(expert, policy), "discriminator_loss(expert [2], policy [3])")
    expect_close(
        got,
        expected,
        "discriminator_loss",
        wrong=[
            (
                (sp(0.0) + sp(2.0)) / 2 + (sp(0.0) + sp(1.0) + sp(-3.0)) / 3,
                "swaps the labels: expert pairs must get D = sigma(f) -> 1",
            ),
            (
                (sp(0.0) + sp(-2.0) + sp(0.0) + sp(-1.0) + sp(3.0)) / 5,
                "averages over the two batches together; average each batch, then add",
            ),
        ],
    )
    huge = expect_scalar(
        impl.discriminator_loss(torch.tensor([-300.0]), torch.tensor([300.0])), "discriminator_loss([-300], [300])"
    )
    expect(math.isfinite(huge), "discriminator_loss overflows for huge logits: use softplus (or logsigmoid)")
    expect_close(huge, 600.0, "discriminator_loss([-300], [300])", rtol=1e-5)


@pytest.mark.points(1)
@pytest.mark.tier("hand-computed")
def test_adversarial_reward_forms(impl):
    """adversarial_reward: the logit (AIRL) and -log(1 - D) (GAIL) forms (hand-computed)"""
    f = torch.tensor([-2.0, 0.0, 3.0])
    logit = impl.adversarial_reward(f, "logit")
    expect_close(logit, [-2.0, 0.0, 3.0], "adversarial_reward(f, 'logit') (log D - log(1 - D) = f)")
    sp = [math.log1p(math.exp(x)) for x in (-2.0, 0.0, 3.0)]
    expect_close(
        impl.adversarial_reward(f, "gail"),
        sp,
        "adversarial_reward(f, 'gail') (-log(1 - D))",
        wrong=[([math.log(1 / (1 + math.exp(-x))) for x in (-2.0, 0.0, 3.0)], "returns log D instead of -log(1 - D)")],
    )
    logit.add_(1.0)
    expect_close(
        f,
        [-2.0, 0.0, 3.0],
        "the logits after changing the returned 'logit' reward in place (return a copy, not the input tensor)",
    )


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_maxent_irl_recovers_a_reward_that_explains_the_expert(impl, ref, monkeypatch):
    """MaxEnt IRL on your functions matches the expert's feature counts and its reward guides like the true one"""
    from rl4llm.envs.gridworld import GridWorldEnv

    maxent = importlib.import_module("rl4llm.irl.maxent")
    env = GridWorldEnv()
    P, phi, p0, H = env.P, env.features, env.p0, env.horizon
    _, _, expert_pi = ref.soft_value_iteration(P, env.reward * 3.0, H)  # a near-optimal, Boltzmann expert
    rng = np.random.default_rng(0)
    states = np.zeros((200, H), dtype=np.int64)
    for i in range(200):
        s = int(rng.choice(len(p0), p=p0))
        for t in range(H):
            states[i, t] = s
            a = int(rng.choice(P.shape[1], p=expert_pi[t, s]))
            s = int(rng.choice(P.shape[0], p=P[s, a]))
    for name in ("soft_value_iteration", "state_visitation_frequencies", "maxent_gradient"):
        monkeypatch.setattr(maxent, name, getattr(impl, name))
    result = maxent.maxent_irl(P, phi, p0, states, lr=0.05, n_iters=150)
    first, last = result.history[0]["grad_norm"], result.history[-1]["grad_norm"]
    expect(
        last < 0.1 * first,
        f"the feature-matching gap went from {first:.3f} to {last:.3f} in 150 steps; it "
        f"should shrink more than tenfold (is the gradient's sign right?)",
    )

    def true_return(reward):
        _, _, pi = ref.soft_value_iteration(P, reward, H)
        return float(ref.state_visitation_frequencies(P, pi, p0) @ env.reward)

    learned, expert = true_return(result.reward), true_return(env.reward * 3.0)
    uniform = float(ref.state_visitation_frequencies(P, np.full((H,) + P.shape[:2], 1 / P.shape[1]), p0) @ env.reward)
    expect(
        learned > uniform + 0.8 * (expert - uniform),
        f"the soft-optimal policy of the learned reward earns a true return of {learned:.2f}; the expert earns "
        f"{expert:.2f} and a uniform policy {uniform:.2f}",
    )
