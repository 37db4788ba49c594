"""Returns and GAE (rl4llm.rl.returns) against hand-computed cases and invariants."""

import pytest
import torch

from rl4llm.rl import discounted_returns, gae

# One short stream used by several cases: three steps, gamma = lambda = 0.5.
REWARDS = torch.tensor([1.0, 0.0, 2.0])
VALUES = torch.tensor([0.5, 0.4, 0.3])
NEXT_VALUES = torch.tensor([0.4, 0.9, 0.7])
ZERO = torch.zeros(3)


def test_discounted_returns_by_hand():
    # G3 = 4; G2 = 3 + 0.5 * 4 = 5; step 1 ended the episode: G1 = 2; G0 = 1 + 0.5 * 2 = 2
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0])
    terminated = torch.tensor([0.0, 1.0, 0.0, 0.0])
    out = discounted_returns(rewards, terminated, 0.5)
    torch.testing.assert_close(out, torch.tensor([2.0, 2.0, 5.0, 4.0]))


def test_discounted_returns_gamma_limits():
    rewards = torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(discounted_returns(rewards, torch.zeros(3), 0.0), rewards)
    torch.testing.assert_close(discounted_returns(rewards, torch.zeros(3), 1.0), torch.tensor([6.0, 5.0, 3.0]))


def test_gae_lambda_zero_is_the_td_error():
    gamma = 0.9
    terminated = torch.tensor([0.0, 0.0, 1.0])
    out = gae(REWARDS, VALUES, NEXT_VALUES, terminated, ZERO, gamma, 0.0)
    td = REWARDS + gamma * (1 - terminated) * NEXT_VALUES - VALUES
    torch.testing.assert_close(out, td)
    # the same by hand: 1 + 0.9 * 0.4 - 0.5, 0 + 0.9 * 0.9 - 0.4, 2 - 0.3 (terminated: no bootstrap)
    torch.testing.assert_close(out, torch.tensor([0.86, 0.41, 1.7]))


def test_gae_without_episode_end_by_hand():
    # delta = [0.7, 0.05, 2.05]; A2 = 2.05, A1 = 0.05 + 0.25 * 2.05, A0 = 0.7 + 0.25 * A1
    out = gae(REWARDS, VALUES, NEXT_VALUES, ZERO, ZERO, 0.5, 0.5)
    torch.testing.assert_close(out, torch.tensor([0.840625, 0.5625, 2.05]))


def test_gae_termination_stops_bootstrap_and_chaining():
    terminated = torch.tensor([0.0, 1.0, 0.0])
    out = gae(REWARDS, VALUES, NEXT_VALUES, terminated, ZERO, 0.5, 0.5)
    # delta1 = 0 - 0.4 (V(s2) ignored), A1 = delta1 (not chained to the next episode), A0 = 0.7 + 0.25 * A1
    torch.testing.assert_close(out, torch.tensor([0.6, -0.4, 2.05]))


def test_gae_truncation_bootstraps_but_does_not_chain():
    truncated = torch.tensor([0.0, 1.0, 0.0])
    out = gae(REWARDS, VALUES, NEXT_VALUES, ZERO, truncated, 0.5, 0.5)
    # delta1 = 0 + 0.5 * 0.9 - 0.4 = 0.05 (bootstraps), A1 = delta1 (cut), A0 = 0.7 + 0.25 * 0.05
    torch.testing.assert_close(out, torch.tensor([0.7125, 0.05, 2.05]))


def test_gae_lambda_one_is_monte_carlo_return_minus_value():
    rewards = torch.tensor([1.0, -2.0, 0.5, 3.0])
    values = torch.tensor([0.3, -0.1, 0.8, 1.2])
    next_values = torch.cat([values[1:], torch.tensor([9.0])])  # the last V is never used: terminated
    terminated = torch.tensor([0.0, 0.0, 0.0, 1.0])
    out = gae(rewards, values, next_values, terminated, torch.zeros(4), 0.9, 1.0)
    expected = discounted_returns(rewards, terminated, 0.9) - values
    torch.testing.assert_close(out, expected)


def test_gae_batched_equals_per_column():
    gen = torch.Generator().manual_seed(0)
    t, n = 7, 4
    rewards = torch.randn(t, n, generator=gen)
    values = torch.randn(t, n, generator=gen)
    next_values = torch.randn(t, n, generator=gen)
    terminated = (torch.rand(t, n, generator=gen) < 0.2).float()
    truncated = (torch.rand(t, n, generator=gen) < 0.2).float() * (1 - terminated)
    batched = gae(rewards, values, next_values, terminated, truncated, 0.97, 0.9)
    assert batched.shape == (t, n)
    for j in range(n):
        column = gae(rewards[:, j], values[:, j], next_values[:, j], terminated[:, j], truncated[:, j], 0.97, 0.9)
        torch.testing.assert_close(batched[:, j], column)


def test_gae_accepts_bool_flags_and_lists():
    out = gae([1.0, 0.0, 2.0], [0.5, 0.4, 0.3], [0.4, 0.9, 0.7], [False, True, False], [False] * 3, 0.5, 0.5)
    torch.testing.assert_close(out, torch.tensor([0.6, -0.4, 2.05]))


@pytest.mark.parametrize(
    "kwargs, word", [({"gamma": 1.5}, "gamma"), ({"lam": -0.1}, "lam"), ({"gamma": float("nan")}, "gamma")]
)
def test_gae_rejects_bad_coefficients(kwargs, word):
    args = dict(gamma=0.9, lam=0.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        gae(REWARDS, VALUES, NEXT_VALUES, ZERO, ZERO, **args)


def test_gae_rejects_bad_shapes():
    with pytest.raises(ValueError, match="values"):
        gae(REWARDS, VALUES[:2], NEXT_VALUES, ZERO, ZERO, 0.9, 0.9)
    with pytest.raises(ValueError, match=r"\[T\] or \[T, N\]"):
        gae(
            torch.zeros(2, 2, 2),
            torch.zeros(2, 2, 2),
            torch.zeros(2, 2, 2),
            torch.zeros(2, 2, 2),
            torch.zeros(2, 2, 2),
            0.9,
            0.9,
        )
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(REWARDS, ZERO, -0.5)
