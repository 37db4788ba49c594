"""Logged datasets (chapter 2): the documented layout, episode bookkeeping, reproducibility, validation."""

from __future__ import annotations

import numpy as np
import pytest

from rl4llm.offline.cartpole import log_cartpole
from rl4llm.offline.dataset import OfflineDataset, collect_dataset, epsilon_greedy, table_policy
from rl4llm.offline.tabular import TabularEnv, cliff_walk, epsilon_greedy_probs, safe_route


def safe_dataset(n_episodes: int = 3, epsilon: float = 0.0, horizon: int = 50, seed: int = 0):
    mdp = cliff_walk()
    env = TabularEnv(mdp, horizon=horizon)
    probs = epsilon_greedy_probs(safe_route(mdp), 4, epsilon)
    return mdp, collect_dataset(env, table_policy(probs), n_episodes, seed=seed)


def test_layout_of_a_deterministic_route():
    mdp, ds = safe_dataset(n_episodes=2)
    # the safe route takes 12 moves: 3 up, 6 right, 3 down, and only the 12th (entering the goal) pays +10
    assert len(ds) == 24
    assert ds.observations.dtype == np.int64 and ds.observations.shape == (24,)
    assert ds.actions.tolist()[:12] == [0] * 3 + [1] * 6 + [2] * 3
    assert ds.rewards.dtype == np.float32 and ds.rewards.sum() == 20.0 and ds.rewards[11] == 10.0
    assert ds.terminations.tolist() == ([False] * 11 + [True]) * 2
    assert not ds.truncations.any()
    np.testing.assert_array_equal(ds.next_observations[:11], ds.observations[1:12])  # s_{t+1} is the next s_t
    assert ds.next_observations[11] == mdp.info["goal"]
    np.testing.assert_allclose(ds.episode_returns(), [10.0, 10.0])
    np.testing.assert_allclose(ds.episode_returns(gamma=0.5), [10 * 0.5**11] * 2)
    counts = ds.action_counts(mdp.n_states, mdp.n_actions)
    assert counts.sum() == 24 and counts[mdp.info["start"], 0] == 2 and (counts > 0).sum() == 12


def test_time_limit_gives_truncations_not_terminations():
    _, ds = safe_dataset(n_episodes=2, horizon=5)
    assert len(ds) == 10
    assert ds.truncations.tolist() == [False] * 4 + [True] + [False] * 4 + [True]
    assert not ds.terminations.any()
    assert ds.episode_ends.sum() == 2


def test_same_seed_same_data_and_noise_widens_coverage():
    mdp, a = safe_dataset(n_episodes=20, epsilon=0.3, seed=4)
    _, b = safe_dataset(n_episodes=20, epsilon=0.3, seed=4)
    _, c = safe_dataset(n_episodes=20, epsilon=0.3, seed=5)
    for name in ("observations", "actions", "rewards", "terminations", "truncations"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert len(a) != len(c) or not np.array_equal(a.actions, c.actions)
    _, clean = safe_dataset(n_episodes=20, epsilon=0.0, seed=4)
    pairs = lambda ds: (ds.action_counts(mdp.n_states, 4) > 0).sum()  # noqa: E731
    assert pairs(a) > pairs(clean) == 12


def test_epsilon_greedy_rate():
    policy = epsilon_greedy(lambda obs: 0, n_actions=4, epsilon=0.4)
    rng = np.random.default_rng(0)
    actions = np.array([policy(None, rng) for _ in range(20_000)])
    # P(action 0) = 0.6 + 0.4 / 4 = 0.7
    assert np.mean(actions == 0) == pytest.approx(0.7, abs=0.015)
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy(lambda obs: 0, 4, -0.1)


def test_featurize_save_load_concatenate(tmp_path):
    mdp, ds = safe_dataset(n_episodes=1)
    feats = ds.featurize(mdp.features)
    assert feats.observations.dtype == np.float32 and feats.observations.shape == (12, 11)
    np.testing.assert_array_equal(feats.observations[0], mdp.features[mdp.info["start"]])
    path = ds.save(tmp_path / "data.npz")
    back = OfflineDataset.load(path)
    np.testing.assert_array_equal(back.next_observations, ds.next_observations)
    np.testing.assert_array_equal(back.terminations, ds.terminations)
    both = OfflineDataset.concatenate([ds, back])
    assert len(both) == 24 and both.episode_ends.sum() == 2


def test_cartpole_logs_have_the_documented_layout():
    import gymnasium

    from rl4llm.rl import ActorCritic

    env = gymnasium.make("CartPole-v1")
    agent = ActorCritic(env.observation_space, env.action_space)  # untrained: short episodes
    ds = log_cartpole(agent, epsilon=0.5, n_episodes=3, seed=0)
    assert ds.observations.dtype == np.float32 and ds.observations.shape[1:] == (4,)
    assert ds.observations.shape == ds.next_observations.shape
    assert np.all(ds.rewards == 1.0) and ds.episode_ends.sum() == 3 and ds.episode_ends[-1]
    inside = ~ds.episode_ends[:-1]  # within an episode, the next observation is the next row's observation
    np.testing.assert_array_equal(ds.next_observations[:-1][inside], ds.observations[1:][inside])
    assert ds.info["epsilon"] == 0.5


def base_fields(n: int = 3) -> dict:
    return {
        "observations": np.zeros(n, dtype=np.int64),
        "actions": np.zeros(n, dtype=np.int64),
        "rewards": np.zeros(n),
        "next_observations": np.zeros(n, dtype=np.int64),
        "terminations": np.zeros(n, dtype=bool),
        "truncations": np.zeros(n, dtype=bool),
    }


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"rewards": np.zeros(2)}, ValueError, "rewards must have N = 3"),
        ({"actions": np.zeros(3)}, TypeError, "actions must be integers"),
        ({"actions": np.array([0, -1, 0])}, ValueError, "actions must be >= 0"),
        ({"rewards": np.array([0.0, np.nan, 0.0])}, ValueError, "rewards must be finite"),
        ({"terminations": np.array([0, 2, 0])}, ValueError, "terminations must be booleans"),
        ({"next_observations": np.zeros((3, 2))}, ValueError, "next_observations must have the shape"),
        ({"actions": np.zeros(0, dtype=np.int64)}, ValueError, "non-empty"),
    ],
)
def test_validation_errors_name_the_field(change, error, match):
    with pytest.raises(error, match=match):
        OfflineDataset(**{**base_fields(), **change})


def test_collect_and_counts_validate_arguments():
    mdp, ds = safe_dataset(n_episodes=1)
    env = TabularEnv(mdp)
    with pytest.raises(ValueError, match="n_episodes"):
        collect_dataset(env, lambda o, r: 0, 0)
    with pytest.raises(TypeError, match="env"):
        collect_dataset("CartPole-v1", lambda o, r: 0, 1)
    with pytest.raises(ValueError, match="n_states"):
        ds.action_counts(5, 4)
    with pytest.raises(ValueError, match="probs"):
        table_policy(np.ones((2, 2)))
