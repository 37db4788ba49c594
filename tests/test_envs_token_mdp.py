"""The token-level MDP: gymnasium API, hand-computed returns in both reward modes, termination, validation."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rl4llm  # noqa: F401  (registers the rl4llm/ environments)
from rl4llm.envs.token_mdp import TokenMDPEnv


def rollout(env, actions):
    obs, info = env.reset(seed=0)
    rewards, infos = [], []
    for a in actions:
        obs, r, terminated, truncated, info = env.step(a)
        rewards.append(r)
        infos.append(info)
        if terminated or truncated:
            break
    return obs, rewards, terminated, infos


def test_check_env_passes_in_both_modes():
    check_env(TokenMDPEnv(vocab_size=5, horizon=4), skip_render_check=True)
    check_env(
        TokenMDPEnv(vocab_size=5, horizon=4, reward_mode="dense", prompt=(1, 2), eos_token_id=0), skip_render_check=True
    )


def test_gymnasium_make_uses_the_registered_id():
    env = gymnasium.make("rl4llm/TokenMDP-v0", vocab_size=6, horizon=3)
    assert env.action_space.n == 6
    obs, info = env.reset(seed=1)
    assert obs.shape == (3,) and info["length"] == 0
    env.close()


def test_observation_is_prompt_then_tokens_then_padding():
    env = TokenMDPEnv(vocab_size=4, horizon=3, prompt=(3, 1))
    obs, _ = env.reset()
    assert obs.dtype == np.int64
    assert obs.tolist() == [3, 1, 4, 4, 4]
    obs, _, _, _, info = env.step(2)
    assert obs.tolist() == [3, 1, 2, 4, 4] and info["length"] == 1
    assert env.observation_space.contains(obs)
    assert list(env.observation_space.nvec) == [5] * 5


def test_terminal_mode_hand_computed_return():
    # default target for vocab 4, horizon 4 is (0, 1, 2, 3); actions match at positions 0 and 2 -> 2/4
    env = TokenMDPEnv(vocab_size=4, horizon=4)
    _, rewards, terminated, infos = rollout(env, [0, 3, 2, 0])
    assert rewards == [0.0, 0.0, 0.0, 0.5]
    assert terminated and infos[-1]["tokens"] == (0, 3, 2, 0)


def test_dense_mode_is_potential_differences_with_the_same_return():
    env = TokenMDPEnv(vocab_size=4, horizon=4, reward_mode="dense")
    _, rewards, terminated, _ = rollout(env, [0, 3, 2, 0])
    assert rewards == pytest.approx([0.25, 0.0, 0.25, 0.0])
    assert sum(rewards) == pytest.approx(0.5)


def test_custom_reward_fn_equal_totals_even_with_nonzero_empty_score():
    # F(y) = 10 + number of 1s; terminal gives F(full), dense telescopes from F(empty) := 0 to the same total
    fn = lambda toks: 10.0 + sum(t == 1 for t in toks)  # noqa: E731
    totals = {}
    for mode in ("terminal", "dense"):
        env = TokenMDPEnv(vocab_size=3, horizon=3, reward_fn=fn, reward_mode=mode)
        _, rewards, _, _ = rollout(env, [1, 2, 1])
        totals[mode] = sum(rewards)
        if mode == "dense":
            assert rewards == pytest.approx([11.0, 0.0, 1.0])
    assert totals["terminal"] == pytest.approx(12.0) == pytest.approx(totals["dense"])


def test_eos_terminates_early_and_is_scored():
    seen = []

    def fn(toks):
        seen.append(toks)
        return float(len(toks))

    env = TokenMDPEnv(vocab_size=5, horizon=6, reward_fn=fn, eos_token_id=4)
    obs, rewards, terminated, infos = rollout(env, [1, 2, 4, 1, 1])
    assert terminated and len(rewards) == 3 and rewards[-1] == 3.0
    assert infos[-1]["tokens"] == (1, 2, 4)
    assert obs.tolist() == [1, 2, 4, 5, 5, 5]
    with pytest.raises(RuntimeError):
        env.step(0)


def test_default_reward_penalises_early_eos():
    env = TokenMDPEnv(vocab_size=4, horizon=4, eos_token_id=3)
    _, rewards, _, _ = rollout(env, [0, 1, 2, 3])
    assert rewards[-1] == 1.0
    _, rewards, _, _ = rollout(env, [0, 3])
    assert rewards[-1] == 0.25  # one hit out of the horizon of 4


def test_bad_arguments_name_the_parameter():
    for kwargs, name in [
        ({"vocab_size": 1}, "vocab_size"),
        ({"horizon": 0}, "horizon"),
        ({"reward_mode": "sparse"}, "reward_mode"),
        ({"prompt": (0, 9)}, "prompt"),
        ({"target": (0, 1)}, "target"),
        ({"target": (0, 1, 2, 99, 0, 0, 0, 0)}, "target"),
        ({"eos_token_id": 8}, "eos_token_id"),
        ({"reward_fn": 3}, "reward_fn"),
        ({"render_mode": "human"}, "render_mode"),
    ]:
        with pytest.raises(ValueError, match=name):
            TokenMDPEnv(**kwargs)
    env = TokenMDPEnv(vocab_size=4, horizon=2)
    env.reset()
    with pytest.raises(ValueError, match="action"):
        env.step(4)


def test_render_ansi_shows_prompt_and_prefix():
    env = TokenMDPEnv(vocab_size=4, horizon=3, prompt=(2,), render_mode="ansi")
    env.reset()
    env.step(1)
    assert env.render() == "2 | 1"
