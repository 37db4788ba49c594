"""The tightrope chain and the costs behind Theorems 1.1 (BC, T^2 eps) and 1.4 (DAgger, T eps)."""

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rl4llm  # noqa: F401  (registers the rl4llm/ environments)
from rl4llm.envs.tightrope import CLIMB, TightropeEnv
from rl4llm.imitation import (
    bc_cost_exact,
    dagger_cost_exact,
    simulate_tightrope,
    tightrope_costs,
    train_tightrope_learner,
    walker_table,
)

BC_TABLE = np.array([[0, 1], [0, 1]])  # follow the cue on the rope, and (never having seen a fall) off it
DAGGER_TABLE = np.array([[0, 1], [CLIMB, CLIMB]])  # follow the cue on the rope, climb back when fallen


def test_bc_cost_exact_hand_computed_and_closed_form():
    # T = 2, eps = 0.1: step 1 costs eps = 0.1; step 2 costs 1 - 0.9^2 = 0.19
    assert bc_cost_exact(2, 0.1) == pytest.approx(0.29, abs=1e-12)
    for horizon, eps in [(1, 0.3), (7, 0.05), (100, 0.02), (1000, 0.001)]:
        closed = horizon - (1 - eps) * (1 - (1 - eps) ** horizon) / eps
        assert bc_cost_exact(horizon, eps) == pytest.approx(closed, rel=1e-9)
    assert bc_cost_exact(50, 0.0) == 0.0


def test_dagger_cost_exact_hand_computed_and_linear():
    # T = 2, eps = 0.1: p_1 = 1 -> 0.1; p_2 = 1 - 0.1 = 0.9 -> 0.09
    assert dagger_cost_exact(2, 0.1) == pytest.approx(0.19, abs=1e-12)
    # stationary on-rope probability 1/(1+eps): cost ~ eps T / (1 + eps) for long ropes
    assert dagger_cost_exact(10_000, 0.02) == pytest.approx(0.02 * 10_000 / 1.02, rel=1e-3)


@pytest.mark.parametrize("eps", [0.001, 0.02, 0.1, 0.3])
@pytest.mark.parametrize("horizon", [1, 2, 10, 100, 1000])
def test_exact_costs_respect_the_theorems_bounds(horizon, eps):
    bc, dg = bc_cost_exact(horizon, eps), dagger_cost_exact(horizon, eps)
    assert bc <= horizon**2 * eps + 1e-12  # Theorem 1.1 (C = 0: the expert pays nothing)
    assert dg <= horizon * eps + 1e-12  # Theorem 1.4
    assert dg <= bc + 1e-12
    assert bc <= horizon  # nobody pays more than 1 per step


def test_quadratic_regime_ends_near_eps_t_one():
    eps = 0.01
    # small eps T: eps T (T+1) / 2 to first order, so doubling T multiplies the cost by ~4
    assert bc_cost_exact(10, eps) == pytest.approx(eps * 10 * 11 / 2, rel=0.05)
    assert bc_cost_exact(20, eps) / bc_cost_exact(10, eps) == pytest.approx(4, rel=0.1)
    # eps T >> 1: T - 1/eps, so doubling T about doubles the cost
    assert bc_cost_exact(4000, eps) == pytest.approx(4000 - (1 - eps) / eps, rel=1e-6)
    assert bc_cost_exact(4000, eps) / bc_cost_exact(2000, eps) == pytest.approx(2, rel=0.03)


@pytest.mark.parametrize("table, exact", [(BC_TABLE, bc_cost_exact), (DAGGER_TABLE, dagger_cost_exact)])
def test_vectorised_simulator_matches_the_exact_cost(table, exact):
    horizon, eps = 30, 0.05
    costs = simulate_tightrope(table, horizon, eps, 20_000, np.random.default_rng(0))
    se = costs.std() / math.sqrt(costs.size)
    assert abs(costs.mean() - exact(horizon, eps)) < 4 * se


@pytest.mark.parametrize("table, exact", [(BC_TABLE, bc_cost_exact), (DAGGER_TABLE, dagger_cost_exact)])
def test_gymnasium_env_agrees_with_the_vectorised_simulator(table, exact):
    horizon, eps, n = 10, 0.2, 3000
    env = gymnasium.make("rl4llm/Tightrope-v0", horizon=horizon, eps=eps)
    env_costs = []
    for ep in range(n):
        obs, _ = env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(int(table[obs[0], obs[1]]))
            total -= reward
            done = terminated or truncated
        env_costs.append(total)
    env_costs = np.array(env_costs)
    sim = simulate_tightrope(table, horizon, eps, 20_000, np.random.default_rng(1))
    se = math.sqrt(env_costs.var() / n + sim.var() / sim.size)
    assert abs(env_costs.mean() - sim.mean()) < 4 * se
    assert abs(env_costs.mean() - exact(horizon, eps)) < 4 * env_costs.std() / math.sqrt(n)


def test_env_passes_the_checker_and_pays_the_0_1_cost_against_the_expert():
    env = TightropeEnv(horizon=5, eps=0.1)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    # acting as the expert never costs anything and never falls
    for _ in range(5):
        a = env.expert_action()
        obs, reward, terminated, truncated, info = env.step(a)
        assert reward == 0.0 and info["on_rope"] and obs[0] == 0
    assert truncated and not terminated
    # leaning against the wind costs 1 and makes the walker fall; climbing back costs 0
    env.reset(seed=4)
    wrong = 1 - env.expert_action()
    obs, reward, *_ = env.step(wrong)
    assert reward == -1.0 and obs[0] == 1 and env.expert_action() == CLIMB
    obs, reward, *_ = env.step(CLIMB)
    assert reward == 0.0 and obs[0] == 0


@pytest.mark.parametrize("horizon", [4, 32, 256])
def test_learned_walkers_have_the_analysed_tables(horizon):
    # BC has never seen a fall: it follows the cue everywhere and never climbs; DAgger has, and climbs
    assert walker_table(train_tightrope_learner(horizon, 0.05, "bc", seed=0)).tolist() == BC_TABLE.tolist()
    assert walker_table(train_tightrope_learner(horizon, 0.05, "dagger", seed=0)).tolist() == DAGGER_TABLE.tolist()


def test_tightrope_costs_match_the_analysis():
    horizon, eps = 40, 0.02
    bc = tightrope_costs(horizon, eps, "bc", n_rollouts=8000, seed=1)
    dg = tightrope_costs(horizon, eps, "dagger", n_rollouts=8000, seed=1)
    assert bc == pytest.approx(bc_cost_exact(horizon, eps), rel=0.06)
    assert dg == pytest.approx(eps * horizon, rel=0.15)  # DAgger ~ eps T
    assert bc / dg > 10
    # same seed, same number
    assert tightrope_costs(horizon, eps, "bc", n_rollouts=500, seed=3) == tightrope_costs(
        horizon, eps, "bc", n_rollouts=500, seed=3
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="ppo"), "method"),
        (dict(eps=0.5), "eps"),
        (dict(eps=-0.1), "eps"),
        (dict(horizon=0), "horizon"),
        (dict(n_rollouts=0), "n_rollouts"),
        (dict(seed=-1), "seed"),
    ],
)
def test_tightrope_costs_rejects_bad_arguments(kwargs, match):
    args = dict(horizon=10, eps=0.1, method="bc", n_rollouts=10, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        tightrope_costs(**args)


def test_bad_arguments_elsewhere():
    with pytest.raises(TypeError, match="horizon"):
        bc_cost_exact(2.5, 0.1)
    with pytest.raises(ValueError, match="eps"):
        dagger_cost_exact(10, 0.7)
    with pytest.raises(ValueError, match="table"):
        simulate_tightrope(np.array([0, 1, 2]), 10, 0.1, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="eps"):
        TightropeEnv(horizon=5, eps=0.5)
    with pytest.raises(ValueError, match="action"):
        env = TightropeEnv()
        env.reset(seed=0)
        env.step(3)
