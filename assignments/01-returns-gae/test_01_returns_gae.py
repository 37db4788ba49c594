"""Grader of assignment 01: returns, advantages and policy gradients.

Every test is one rubric item (``@pytest.mark.points``). The implementation under test comes from the ``impl``
fixture (``--impl=reference|student|PATH``); expected values are computed here, independently, by hand or with
plain-Python loops, and each typical mistake's answer is computed too so that a wrong answer can be named.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rl4llm.assignments.checks import expect, expect_close, expect_scalar, expect_tensor

ASSIGNMENT = "01-returns-gae"


# ----------------------------------------------------------------------------------- independent references


def returns_py(rewards, terminated, gamma, *, use_done=True, shift_done=False):
    """Reward-to-go by a backward loop over a list. The flags give typical mistakes."""
    out, running = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        if shift_done:
            done = terminated[t + 1] if t + 1 < len(rewards) else 0.0
        else:
            done = terminated[t] if use_done else 0.0
        running = rewards[t] + gamma * (1.0 - done) * running
        out[t] = running
    return out


def gae_py(
    r,
    v,
    nv,
    term,
    trunc,
    gamma,
    lam,
    *,
    bootstrap_terminal=False,
    chain_truncation=False,
    bootstrap_truncation=True,
    values_shift=False,
    gamma_in_chain=True,
):
    """GAE by a backward loop over lists; the keyword flags reproduce typical mistakes."""
    n = len(r)
    adv, nxt = [0.0] * n, 0.0
    for t in reversed(range(n)):
        next_v = (v[t + 1] if t + 1 < n else 0.0) if values_shift else nv[t]
        stop_boot = term[t] if not bootstrap_terminal else 0.0
        if not bootstrap_truncation:
            stop_boot = max(stop_boot, trunc[t])
        delta = r[t] + gamma * (1.0 - stop_boot) * next_v - v[t]
        cut = term[t] if chain_truncation else max(term[t], trunc[t])
        nxt = delta + (gamma if gamma_in_chain else 1.0) * lam * (1.0 - cut) * nxt
        adv[t] = nxt
    return adv


def t(x):
    return torch.tensor(x, dtype=torch.float32)


# ----------------------------------------------------------------------------------- discounted returns


@pytest.mark.points(1)
@pytest.mark.tier("shapes")
def test_discounted_returns_shapes(impl):
    """discounted_returns returns a tensor of the rewards' shape, [T] or [T, N]"""
    out = impl.discounted_returns(torch.ones(5), torch.zeros(5), 0.5)
    expect_tensor(out, "discounted_returns(rewards [5], ...)", (5,))
    out = impl.discounted_returns(torch.ones(6, 3), torch.zeros(6, 3), 0.5)
    expect_tensor(out, "discounted_returns(rewards [6, 3], ...)", (6, 3))
    expect(out.is_floating_point(), f"discounted_returns returned dtype {out.dtype}, expected a float tensor")


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_discounted_returns_hand_computed(impl):
    """discounted_returns: two episodes in one stream (hand-computed)"""
    rewards, done, gamma = [1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 0.0, 0.0, 1.0], 0.9
    # G4 = 5, G3 = 4 + .9 * 5 = 8.5, G2 = 3 + .9 * 8.5 = 10.65, G1 = 2 (episode ends), G0 = 1 + .9 * 2 = 2.8
    expected = [2.8, 2.0, 10.65, 8.5, 5.0]
    out = impl.discounted_returns(t(rewards), t(done), gamma)
    expect_close(
        out,
        expected,
        "discounted_returns(r=[1, 2, 3, 4, 5], terminated=[0, 1, 0, 0, 1], gamma=0.9)",
        wrong=[
            (
                returns_py(rewards, done, gamma, use_done=False),
                "lets the return leak across the end of an episode (ignores `terminated`)",
            ),
            (returns_py(rewards, done, gamma, shift_done=True), "uses terminated[t + 1] instead of terminated[t]"),
            (returns_py(rewards, done, 1.0), "does not discount (gamma is ignored)"),
            (np.cumsum(rewards), "accumulates forward in time instead of backward"),
        ],
    )
    # gamma = 0: the return is the reward itself
    expect_close(impl.discounted_returns(t(rewards), t(done), 0.0), rewards, "discounted_returns(..., gamma=0)")


# ----------------------------------------------------------------------------------- GAE


def _gae_case():
    # two episodes in one stream: steps 0-1 are cut by a time limit at step 1 (truncated), steps 2-4 end for
    # real at step 4 (terminated). next_values[1] is the value of the cut episode's final observation;
    # next_values[4] must be ignored (7.0 makes bootstrapping through the terminal state visible).
    return dict(
        r=[1.0, 2.0, 0.0, 1.0, 3.0],
        v=[0.5, 1.0, 2.0, 1.5, 1.0],
        nv=[1.0, 4.0, 1.5, 1.0, 7.0],
        term=[0.0, 0.0, 0.0, 0.0, 1.0],
        trunc=[0.0, 1.0, 0.0, 0.0, 0.0],
    )


def _call_gae(impl, c, gamma, lam):
    return impl.gae(t(c["r"]), t(c["v"]), t(c["nv"]), t(c["term"]), t(c["trunc"]), gamma, lam)


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_gae_lambda_extremes(impl):
    """gae: lambda = 0 is the TD error, lambda = 1 the Monte-Carlo return minus V (hand-computed)"""
    r, v, nv = [1.0, 0.0, 2.0], [0.5, 1.0, 1.5], [1.0, 1.5, 9.0]
    term, trunc = [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]
    args = (t(r), t(v), t(nv), t(term), t(trunc))
    # delta = [1 + .9 * 1 - .5, 0 + .9 * 1.5 - 1, 2 - 1.5] (no bootstrap from 9.0: the episode terminated)
    td = [1.4, 0.35, 0.5]
    wrong = lambda lam: [
        (
            gae_py(r, v, nv, term, trunc, 0.9, lam, bootstrap_terminal=True),  # noqa: E731
            "bootstraps through a terminal state (uses V(s_{t+1}) where terminated = 1)",
        ),
        (
            gae_py(r, v, nv, term, trunc, 0.9, lam, values_shift=True),
            "uses values[t + 1] instead of next_values[t] for V(s_{t+1})",
        ),
    ]
    expect_close(impl.gae(*args, 0.9, 0.0), td, "gae(..., gamma=0.9, lam=0)", wrong=wrong(0.0))
    # lambda = 1: A_t = G_t - V(s_t) with G = [2.62, 1.8, 2]
    mc = [2.12, 0.8, 0.5]
    expect_close(
        impl.gae(*args, 0.9, 1.0),
        mc,
        "gae(..., gamma=0.9, lam=1)",
        wrong=wrong(1.0)
        + [
            (
                gae_py(r, v, nv, term, trunc, 0.9, 1.0, gamma_in_chain=False),
                "drops gamma from the recursion A_t = delta_t + gamma * lam * A_{t+1}",
            )
        ],
    )


@pytest.mark.points(3)
@pytest.mark.tier("hand-computed")
def test_gae_terminated_vs_truncated(impl):
    """gae: a time-limit cut bootstraps but does not chain; a true end does neither (hand-computed)"""
    c, gamma, lam = _gae_case(), 0.9, 0.8
    # delta = [1.4, 4.6, -0.65, 0.4, 2.0]; A4 = 2, A3 = .4 + .72 * 2, A2 = -.65 + .72 * A3, A1 = 4.6 (cut),
    # A0 = 1.4 + .72 * 4.6
    expected = [4.712, 4.6, 0.6748, 1.84, 2.0]
    args = (c["r"], c["v"], c["nv"], c["term"], c["trunc"], gamma, lam)
    expect_close(
        _call_gae(impl, c, gamma, lam),
        expected,
        "gae on a stream with a truncation and a termination",
        wrong=[
            (
                gae_py(*args, bootstrap_terminal=True),
                "bootstraps through a terminal state (uses V(s_{t+1}) where terminated = 1)",
            ),
            (
                gae_py(*args, chain_truncation=True),
                "chains advantages across a truncation (A_{t+1} of the next episode leaks in where truncated = 1)",
            ),
            (
                gae_py(*args, bootstrap_truncation=False),
                "treats a truncation like a termination (it must still bootstrap from V(s_{t+1}))",
            ),
            (gae_py(*args, chain_truncation=True, bootstrap_terminal=True), "ignores both terminated and truncated"),
            (gae_py(*args, values_shift=True), "uses values[t + 1] instead of next_values[t] for V(s_{t+1})"),
            (
                gae_py(*args, gamma_in_chain=False),
                "drops gamma from the recursion A_t = delta_t + gamma * lam * A_{t+1}",
            ),
        ],
    )


@pytest.mark.points(2)
@pytest.mark.tier("randomised")
def test_gae_random_batches_match_reference(impl, ref):
    """gae and discounted_returns match the reference on random [T, N] batches with random episode ends"""
    gen = torch.Generator().manual_seed(1)
    for T, N, gamma, lam in ((64, 8, 0.99, 0.95), (17, 3, 0.9, 0.5), (40, 1, 1.0, 1.0)):
        r = torch.randn(T, N, generator=gen)
        v, nv = torch.randn(T, N, generator=gen), torch.randn(T, N, generator=gen)
        u = torch.rand(T, N, generator=gen)
        term, trunc = (u < 0.1).float(), ((u >= 0.1) & (u < 0.18)).float()
        got = impl.gae(r, v, nv, term, trunc, gamma, lam)
        expect_tensor(got, f"gae on a [{T}, {N}] batch", (T, N))
        expect_close(
            got,
            ref.gae(r, v, nv, term, trunc, gamma, lam),
            f"gae on a random [{T}, {N}] batch (gamma={gamma}, lam={lam})",
            atol=1e-4,
            rtol=1e-4,
        )
        got1 = impl.gae(r[:, 0], v[:, 0], nv[:, 0], term[:, 0], trunc[:, 0], gamma, lam)
        expect_close(
            got1,
            ref.gae(r[:, 0], v[:, 0], nv[:, 0], term[:, 0], trunc[:, 0], gamma, lam),
            f"gae on a random [{T}] segment",
            atol=1e-4,
            rtol=1e-4,
        )
        expect_close(
            impl.discounted_returns(r, term, gamma),
            ref.discounted_returns(r, term, gamma),
            f"discounted_returns on a random [{T}, {N}] batch",
            atol=1e-4,
            rtol=1e-4,
        )


# ----------------------------------------------------------------------------------- REINFORCE and DQN


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_reinforce_loss_value_and_gradient(impl):
    """reinforce_loss: value and gradient by hand; no gradient into the returns or the baseline"""
    logp = torch.tensor([-1.0, -0.5, -2.0], requires_grad=True)
    returns = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    baseline = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    loss = impl.reinforce_loss(logp, returns, baseline)
    # -mean(logp * (G - b)) = -mean([-1 * 1, -0.5 * -2, -2 * -0.5]) = -1/3
    value = expect_scalar(loss, "reinforce_loss(logp, returns, baseline)")
    weights = np.array([1.0, -2.0, -0.5])
    lp = np.array([-1.0, -0.5, -2.0])
    expect_close(
        value,
        -1.0 / 3.0,
        "reinforce_loss(logp, returns, baseline)",
        wrong=[
            (1.0 / 3.0, "has the wrong sign (the loss is minus the surrogate objective)"),
            (-(lp * weights).sum(), "sums over the batch instead of averaging"),
            (-(lp * np.array([3.0, 0.0, 1.5])).mean(), "adds the baseline instead of subtracting it"),
            (-(lp * np.array([2.0, -1.0, 0.5])).mean(), "ignores the baseline"),
        ],
    )
    loss.backward()
    expect_close(logp.grad, -weights / 3.0, "the gradient of reinforce_loss with respect to logp")
    expect(
        baseline.grad is None or float(baseline.grad.abs().max()) == 0.0,
        "reinforce_loss lets gradient flow into the baseline; treat it as a constant (detach it)",
    )
    expect(
        returns.grad is None or float(returns.grad.abs().max()) == 0.0,
        "reinforce_loss lets gradient flow into the returns; treat them as constants (detach them)",
    )
    no_baseline = impl.reinforce_loss(logp.detach(), returns.detach())
    expect_close(
        no_baseline, -(lp * np.array([2.0, -1.0, 0.5])).mean(), "reinforce_loss(logp, returns) without a baseline"
    )


@pytest.mark.points(2)
@pytest.mark.tier("hand-computed")
def test_dqn_targets_hand_computed(impl):
    """dqn_targets: r + gamma * max_a' Q(s', a'), no bootstrap at a terminal state, no gradient (hand-computed)"""
    rewards = torch.tensor([1.0, 0.0, -1.0])
    next_q = torch.tensor([[1.0, 3.0], [2.0, 0.5], [5.0, 4.0]], requires_grad=True)
    done = torch.tensor([0.0, 0.0, 1.0])
    y = impl.dqn_targets(rewards, next_q, done, 0.9)
    expect_tensor(y, "dqn_targets(rewards [3], next_q_target [3, 2], ...)", (3,))
    expect_close(
        y,
        [3.7, 1.8, -1.0],
        "dqn_targets(...)",
        wrong=[
            ([3.7, 1.8, 3.5], "bootstraps through a terminal state"),
            ([2.8, 1.125, -1.0], "averages over the next actions instead of taking the max"),
            ([1.9, 0.45, -1.0], "takes the min over the next actions instead of the max"),
            ([1.9, 1.8, -1.0], "takes the Q-value of the first action instead of the max"),
            ([4.0, 2.0, -1.0], "does not discount (gamma is ignored)"),
        ],
    )
    expect(
        not y.requires_grad,
        "dqn_targets returns a tensor that requires grad: the target must be a constant "
        "(detach it, or compute it under torch.no_grad())",
    )
    # a boolean terminated mask works too
    y2 = impl.dqn_targets(rewards, next_q.detach(), done.bool(), 0.5)
    expect_close(y2, [2.5, 1.0, -1.0], "dqn_targets(..., terminated as a bool tensor, gamma=0.5)")


# ----------------------------------------------------------------------------------- behaviour


def _corridor_batch(probs: np.ndarray, rng: np.random.Generator, n_episodes: int, length: int, limit: int):
    """Episodes of a softmax policy on a corridor: start at 0, +1 at the right end (terminated), time limit."""
    S, A, R, NS, TERM, TRUNC = [], [], [], [], [], []
    returns = []
    for _ in range(n_episodes):
        s, total = 0, 0.0
        for step in range(limit):
            a = int(rng.random() < probs[s, 1])  # 1 = right, 0 = left
            s2 = min(s + 1, length - 1) if a == 1 else max(s - 1, 0)
            done = s2 == length - 1
            r = 1.0 if done else 0.0
            S.append(s), A.append(a), R.append(r), NS.append(s2)
            TERM.append(float(done)), TRUNC.append(float(not done and step == limit - 1))
            total += r
            s = s2
            if done:
                break
        returns.append(total)
    return (
        np.array(S),
        np.array(A),
        np.array(R),
        np.array(NS),
        np.array(TERM),
        np.array(TRUNC),
        float(np.mean(returns)),
    )


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.tier("behaviour")
def test_actor_critic_learns_the_corridor(impl):
    """an actor-critic built on your gae and reinforce_loss learns to walk right down a corridor"""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    length, limit, gamma, lam = 7, 30, 0.95, 0.9
    logits = torch.zeros(length, 2, requires_grad=True)
    values = torch.zeros(length, requires_grad=True)
    opt = torch.optim.Adam([logits, values], lr=0.1)
    first = None
    for _ in range(60):
        probs = torch.softmax(logits.detach(), -1).numpy()
        S, A, R, NS, TERM, TRUNC, mean_return = _corridor_batch(probs, rng, 16, length, limit)
        first = mean_return if first is None else first
        s, a, ns = torch.as_tensor(S), torch.as_tensor(A), torch.as_tensor(NS)
        with torch.no_grad():
            v, nv = values[s].clone(), values[ns].clone()
        adv = impl.gae(t(R), v, nv, t(TERM), t(TRUNC), gamma, lam)
        logp = torch.log_softmax(logits[s], -1).gather(1, a[:, None]).squeeze(1)
        loss = impl.reinforce_loss(logp, adv.detach()) + 0.5 * ((values[s] - (adv + v).detach()) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    greedy = torch.softmax(logits.detach(), -1)[:-1, 1]
    expect(
        bool((greedy > 0.5).all()),
        f"after training, the policy should prefer 'right' in every state; its "
        f"probabilities of 'right' are {np.round(greedy.numpy(), 2).tolist()}",
    )
    probs = torch.softmax(logits.detach(), -1).numpy()
    lengths = []
    for _ in range(20):
        S, *_ = _corridor_batch(probs, rng, 1, length, limit)
        lengths.append(len(S))
    expect(
        np.mean(lengths) < 1.5 * (length - 1),
        f"after training, episodes take {np.mean(lengths):.1f} steps on average; the shortest path takes {length - 1}",
    )
