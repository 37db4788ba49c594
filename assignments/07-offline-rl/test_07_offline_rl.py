"""Grader of assignment 07: exact policy evaluation and CQL's conservative penalty.

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``). Policy evaluation is checked on a three-state MDP solved by hand,
and on random MDPs against the Bellman equations themselves (not against another solver); the penalty against
hand-computed values and its analytic gradient, softmax minus one-hot.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rl4llm.assignments.checks import expect, expect_close, expect_scalar, fail, to_numpy
from rl4llm.offline.tabular import TabularMDP, cliff_walk, safe_route

ASSIGNMENT = "07-offline-rl"


def _three_state_mdp() -> TabularMDP:
    """s0 -a0-> s1 (r 0), s0 -a1-> s2 (r 1, terminal); s1 -a0-> s0 (r 2), s1 -a1-> s2 (r -1); gamma 0.5.

    The terminal state s2 would lead back to s0 if an episode could continue from it (it cannot): a solver that
    forgets to stop at terminal states lets value flow back from there.
    """
    P = np.zeros((3, 2, 3))
    R = np.zeros((3, 2, 3))
    P[0, 0, 1], P[0, 1, 2], P[1, 0, 0], P[1, 1, 2] = 1, 1, 1, 1
    R[0, 1, 2], R[1, 0, 0], R[1, 1, 2] = 1.0, 2.0, -1.0
    P[2, :, 0] = 1.0
    return TabularMDP(P=P, R=R, terminal=np.array([False, False, True]), p0=np.array([1.0, 0.0, 0.0]), gamma=0.5)


def _evaluate_unmasked(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    """V of the typical mistake: solving the Bellman system as if terminal states continued."""
    r_bar = (mdp.P * mdp.R).sum(-1)
    P_pi = np.einsum("sa,sat->st", policy, mdp.P)
    return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, (policy * r_bar).sum(1))


def _unpack(out, what: str):
    if not isinstance(out, tuple) or len(out) != 2:
        fail(f"{what} must return a tuple (V, Q), got {type(out).__name__}")
    return to_numpy(out[0], what + "[0] (V)"), to_numpy(out[1], what + "[1] (Q)")


@pytest.mark.points(1)
@pytest.mark.tier("shapes")
def test_evaluate_policy_shapes(impl):
    """evaluate_policy returns V [S] and Q [S, A], zero value on terminal states"""
    mdp = cliff_walk()
    uniform = np.full((mdp.n_states, mdp.n_actions), 1 / mdp.n_actions)
    V, Q = _unpack(impl.evaluate_policy(mdp, uniform), "evaluate_policy(cliff_walk(), uniform)")
    expect(V.shape == (mdp.n_states,), f"V has shape {V.shape}, expected (S,) = ({mdp.n_states},)")
    expect(
        Q.shape == (mdp.n_states, mdp.n_actions),
        f"Q has shape {Q.shape}, expected (S, A) = {(mdp.n_states, mdp.n_actions)}",
    )
    expect(np.allclose(V[mdp.terminal], 0.0), "V must be 0 on terminal states (entering one ends the return)")


@pytest.mark.points(3)
@pytest.mark.tier("hand-computed")
def test_evaluate_policy_hand_computed(impl):
    """evaluate_policy on a three-state MDP with a terminal state (solved by hand)"""
    mdp = _three_state_mdp()
    policy = np.array([[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])
    # V1 = 2 + V0 / 2 and V0 = (V1 / 2) / 2 + 1 / 2, so V0 = 8/7 and V1 = 18/7
    V, Q = _unpack(impl.evaluate_policy(mdp, policy), "evaluate_policy")
    expect_close(
        V,
        [8 / 7, 18 / 7, 0.0],
        "V of evaluate_policy on the three-state MDP",
        wrong=[
            (
                _evaluate_unmasked(mdp, policy),
                "lets value flow back out of the terminal state (mask the "
                "columns of terminal states: entering one ends the return)",
            )
        ],
        hint="(V = (I - gamma P_pi)^-1 r_pi with P_pi(s, s') = sum_a pi(a|s) P(s'|s, a))",
    )
    expect_close(
        Q[:2],
        [[9 / 7, 1.0], [18 / 7, -1.0]],
        "Q of evaluate_policy on the non-terminal states (Q = r_bar + gamma P (V on non-terminal states))",
    )


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_evaluate_policy_satisfies_bellman(impl):
    """on random MDPs with terminal states, V and Q satisfy the Bellman expectation equations"""
    rng = np.random.default_rng(0)
    for S, A, gamma in ((5, 2, 0.9), (12, 4, 0.99), (8, 3, 0.0)):
        P = rng.dirichlet(np.ones(S), size=(S, A))
        R = rng.normal(size=(S, A, S))
        terminal = np.zeros(S, dtype=bool)
        terminal[rng.choice(S, 2, replace=False)] = True
        p0 = np.where(terminal, 0.0, 1.0) / (~terminal).sum()
        mdp = TabularMDP(P=P, R=R, terminal=terminal, p0=p0, gamma=gamma)
        policy = rng.dirichlet(np.ones(A), size=S)
        V, Q = _unpack(impl.evaluate_policy(mdp, policy), "evaluate_policy")
        r_bar = (P * R).sum(-1)
        live = ~terminal
        expect_close(V[terminal], np.zeros(2), f"V on the terminal states of a random MDP ({S} states)")
        expect_close(
            Q[live],
            (r_bar + gamma * P @ (V * live))[live],
            f"Q against r_bar + gamma sum_s' P (1 - term(s')) V(s') on a random MDP ({S} states, gamma {gamma})",
            atol=1e-8,
            rtol=1e-8,
        )
        expect_close(
            V[live],
            (policy * Q).sum(1)[live],
            f"V against sum_a pi(a|s) Q(s, a) on a random MDP ({S} states, gamma {gamma})",
            atol=1e-8,
            rtol=1e-8,
        )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_cql_penalty_hand_computed(impl):
    """cql_penalty: log-sum-exp of all actions minus the logged action, averaged (hand-computed)"""
    q = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    actions = torch.tensor([2, 1])
    lse0 = 3 + math.log(1 + math.exp(-1) + math.exp(-2))
    expected = ((lse0 - 3.0) + math.log(3)) / 2
    got = expect_scalar(impl.cql_penalty(q, actions), "cql_penalty(q [2, 3], actions [2])")
    expect_close(
        got,
        expected,
        "cql_penalty",
        wrong=[
            (0.0, "takes a hard max over the actions; the penalty uses the soft maximum, log-sum-exp"),
            (-expected, "has the wrong sign (the soft maximum minus the logged action's value)"),
            (2 * expected, "sums over the batch instead of averaging"),
            (((2.0 - 3.0) + 0.0) / 2, "uses the mean over actions instead of the log-sum-exp"),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_cql_penalty_gradient_and_stability(impl):
    """cql_penalty: gradient softmax minus one-hot, log A for equal values, finite for huge values"""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(32, 5, generator=gen).requires_grad_(True)
    actions = torch.randint(0, 5, (32,), generator=gen)
    value = impl.cql_penalty(q, actions)
    expect(
        expect_scalar(value, "cql_penalty") >= 0.0,
        "cql_penalty is negative; a log-sum-exp is at least its largest term, so the penalty is >= 0",
    )
    (grad,) = torch.autograd.grad(value, q)
    expected = (torch.softmax(q, 1) - torch.nn.functional.one_hot(actions, 5)) / 32
    expect_close(
        grad,
        expected,
        "the gradient of cql_penalty (it must lower every action by its softmax weight and raise the logged one)",
        atol=1e-6,
    )
    flat = expect_scalar(
        impl.cql_penalty(torch.full((4, 6), 2.5), torch.tensor([0, 1, 2, 5])), "cql_penalty with equal values"
    )
    expect_close(flat, math.log(6), "cql_penalty when all 6 actions have the same value (log 6)")
    huge = expect_scalar(
        impl.cql_penalty(torch.tensor([[1000.0, 0.0]]), torch.tensor([1])), "cql_penalty([[1000, 0]], [1])"
    )
    expect(math.isfinite(huge), "cql_penalty overflows for large values: use torch.logsumexp")
    expect_close(huge, 1000.0, "cql_penalty([[1000, 0]], [1])", rtol=1e-5)


def _log_cliff_walk(mdp: TabularMDP, rng: np.random.Generator, n_episodes: int = 30, horizon: int = 50):
    """Episodes of the safe route made epsilon-greedy (epsilon = 0.1), as tensors."""
    S, A = mdp.n_states, mdp.n_actions
    behaviour = np.full((S, A), 0.1 / A)
    behaviour[np.arange(S), safe_route(mdp)] += 0.9
    rows = []
    for _ in range(n_episodes):
        s = int(np.argmax(mdp.p0))
        for _ in range(horizon):
            a = int(rng.choice(A, p=behaviour[s]))
            s2 = int(rng.choice(S, p=mdp.P[s, a]))
            rows.append((s, a, mdp.R[s, a, s2], s2, float(mdp.terminal[s2])))
            s = s2
            if mdp.terminal[s2]:
                break
    s, a, r, s2, done = (np.array(x) for x in zip(*rows))
    return (
        torch.as_tensor(s),
        torch.as_tensor(a),
        torch.as_tensor(r, dtype=torch.float32),
        torch.as_tensor(s2),
        torch.as_tensor(done, dtype=torch.float32),
        behaviour,
    )


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_cql_beats_fitted_q_iteration_on_a_logged_cliff_walk(impl):
    """with your penalty, offline Q-learning stops over-estimating and beats the behaviour, by your evaluation"""
    mdp = cliff_walk()
    s, a, r, s2, done, behaviour = _log_cliff_walk(mdp, np.random.default_rng(0))
    start = int(np.argmax(mdp.p0))
    results = {}
    for alpha in (0.0, 1.0):
        gen = torch.Generator().manual_seed(0)
        Q = (8 * torch.rand(mdp.n_states, mdp.n_actions, generator=gen)).requires_grad_(True)  # optimistic init
        opt = torch.optim.Adam([Q], lr=0.1)
        for _ in range(30):
            with torch.no_grad():
                y = r + mdp.gamma * (1 - done) * Q[s2].max(1).values
            for _ in range(50):
                q = Q[s]
                loss = 0.5 * ((q.gather(1, a[:, None])[:, 0] - y) ** 2).mean()
                if alpha > 0:
                    loss = loss + alpha * impl.cql_penalty(q, a)
                opt.zero_grad()
                loss.backward()
                opt.step()
        greedy = np.eye(mdp.n_actions)[Q.detach().argmax(1).numpy()]
        V, _ = _unpack(impl.evaluate_policy(mdp, greedy), "evaluate_policy")
        results[alpha] = (float(Q.detach()[start].max()) - V[start], V[start])
    V_behaviour, _ = _unpack(impl.evaluate_policy(mdp, behaviour), "evaluate_policy")
    (fqi_over, _fqi_true), (cql_over, cql_true) = results[0.0], results[1.0]
    expect(
        cql_over < 0.5 * fqi_over,
        f"over-estimation at the start (predicted minus true value of the greedy "
        f"policy): {fqi_over:.2f} without the penalty, {cql_over:.2f} with it; the "
        f"penalty should at least halve it",
    )
    expect(
        cql_true > V_behaviour[start] - 0.5,
        f"the greedy policy of CQL is worth {cql_true:.2f} from the start, "
        f"the behaviour {V_behaviour[start]:.2f}: CQL should do about as well "
        f"as the data or better",
    )
