"""The training loops of rl4llm.rl: PPO (vector envs, next-step autoreset), REINFORCE, DQN; config validation."""

import math

import numpy as np
import pytest
import torch

from rl4llm.envs import TokenMDPEnv
from rl4llm.rl import (
    ActorCritic,
    DQNConfig,
    PPOConfig,
    QNetwork,
    ReinforceConfig,
    ReplayBuffer,
    epsilon_schedule,
    evaluate,
    token_ppo_config,
    train_dqn,
    train_ppo,
    train_reinforce,
)


def _token_env(horizon=3, vocab=4, mode="terminal"):
    return lambda: TokenMDPEnv(vocab_size=vocab, horizon=horizon, reward_mode=mode)


def test_ppo_masks_gymnasium_reset_steps():
    # Episodes last exactly 3 steps. With next-step autoreset, steps 0-2 are an episode, step 3 is the reset,
    # steps 4-6 the next episode, step 7 the reset: 2 episodes and 6 valid transitions per 8 steps.
    seen = []
    result = train_ppo(
        _token_env(),
        PPOConfig(total_steps=8, n_envs=1, n_steps=8, n_epochs=1, seed=0),
        on_rollout=lambda state: seen.append(state),
    )
    assert result.episode_steps == [3, 7]
    assert seen[0]["obs"].shape == (6, 3)
    # the first observation of each episode is the empty prefix (all padding, token id 4)
    first = seen[0]["obs"][[0, 3]]
    assert torch.all(first == 4)
    # every valid transition's next observation has exactly one more token than its observation
    filled = (seen[0]["obs"] < 4).sum(1)
    filled_next = (seen[0]["next_obs"] < 4).sum(1)
    assert torch.equal(filled_next, filled + 1)
    assert torch.equal(seen[0]["terminated"], torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0]))
    # returns are the fraction of the default target (0, 1, 2) matched, so a multiple of 1/3 in [0, 1]
    for r in result.episode_returns:
        assert 0.0 <= r <= 1.0 and abs(3 * r - round(3 * r)) < 1e-9


def test_ppo_first_minibatch_has_ratio_one():
    # One epoch, one minibatch: the only update is evaluated at the parameters that collected the data, so the
    # ratio is exactly 1: no sample is clipped and the approximate KL is 0 (the loss is the plain policy gradient).
    result = train_ppo("CartPole-v1", PPOConfig(total_steps=256, n_envs=2, n_steps=64, n_epochs=1, seed=0))
    row = result.curves[0]
    assert row["clip_frac"] == 0.0
    assert row["approx_kl"] == pytest.approx(0.0, abs=1e-7)


def test_ppo_is_reproducible_and_reward_fn_replaces_the_reward():
    cfg = PPOConfig(total_steps=96, n_envs=2, n_steps=16, n_epochs=2, seed=3)
    a = train_ppo(_token_env(), cfg)
    b = train_ppo(_token_env(), cfg)
    assert a.episode_returns == b.episode_returns
    for pa, pb in zip(a.agent.parameters(), b.agent.parameters()):
        torch.testing.assert_close(pa, pb)
    calls = []

    def reward_fn(obs, actions, next_obs):
        calls.append(obs.shape[0])
        return torch.zeros(obs.shape[0])

    c = train_ppo(_token_env(), cfg, reward_fn=reward_fn)
    assert calls and all(n > 0 for n in calls)
    # episode returns are still the true environment returns
    assert c.episode_returns[:2] == a.episode_returns[:2]


def test_ppo_callback_runs_after_each_update_and_can_stop_training():
    cfg = PPOConfig(total_steps=10_000, n_envs=2, n_steps=8, seed=0)
    calls = []

    def callback(iteration, info, agent):
        calls.append((iteration, info["env_steps"], agent))
        return iteration < 3 and None  # stop after the third iteration

    result = train_ppo(_token_env(), cfg, callback=callback)
    # after update i the agent has learned from i batches of 16 steps; the third call stops training
    assert [(i, s) for i, s, _ in calls] == [(1, 16), (2, 32), (3, 48)]
    assert len(result.curves) == 3 and all(a is result.agent for _, _, a in calls)
    assert [row["env_steps"] for row in result.curves] == [16, 32, 48]


def test_ppo_on_rollout_hook_sees_the_batch_before_the_update_and_can_stop():
    seen = []

    def on_rollout(state):
        seen.append((state["iteration"], state["env_steps"], state["obs"].shape[0]))
        return False

    result = train_ppo(_token_env(), PPOConfig(total_steps=10_000, n_envs=1, n_steps=8, seed=0), on_rollout=on_rollout)
    assert seen == [(0, 8, seen[0][2])] and 0 < seen[0][2] <= 8
    assert result.curves == []


def test_dqn_and_reinforce_follow_the_callback_protocol():
    dqn_calls = []
    train_dqn(
        _token_env(),
        DQNConfig(total_steps=300, learning_starts=50, seed=0),
        callback=lambda i, info, agent: dqn_calls.append((i, info["env_steps"])),
        log_every=100,
    )
    assert dqn_calls == [(1, 100), (2, 200), (3, 300)]
    rf_calls = []
    result = train_reinforce(
        _token_env(),
        ReinforceConfig(total_steps=10_000, episodes_per_batch=2, seed=0),
        callback=lambda i, info, agent: rf_calls.append((i, info["env_steps"])) or i < 2,
    )
    assert [i for i, _ in rf_calls] == [1, 2] and rf_calls[-1][1] == result.env_steps


def test_ppo_config_counts_iterations_like_the_lm_trainer():
    cfg = PPOConfig(total_steps=1000, n_envs=4, n_steps=50)
    assert cfg.batch_size == 200 and cfg.iterations == 5
    assert PPOConfig(total_steps=10, n_envs=4, n_steps=50).iterations == 1  # at least one iteration
    with pytest.raises(AttributeError):
        cfg.iterations = 3  # read-only: set total_steps instead


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"clip_eps": -0.1}, "clip_eps"),
        ({"gamma": 1.01}, "gamma"),
        ({"gae_lambda": 2.0}, "gae_lambda"),
        ({"lr": 0.0}, "lr"),
        ({"n_envs": 0}, "n_envs"),
        ({"n_minibatches": 1000}, "n_minibatches"),
        ({"target_kl": -1.0}, "target_kl"),
        ({"norm_adv": 1}, "norm_adv"),
        ({"anneal_clip": 1}, "anneal_clip"),
    ],
)
def test_ppo_config_validation(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        PPOConfig(**kwargs)


def test_ppo_config_accepts_infinite_clip():
    assert math.isinf(PPOConfig(clip_eps=float("inf")).clip_eps)
    # inf means "no clipping" and nothing else: -inf and nan are rejected by both PPO configs
    from rl4llm.rlhf.ppo import PPORLHFConfig

    assert math.isinf(PPORLHFConfig(clip_eps=math.inf).clip_eps)
    for cls in (PPOConfig, PPORLHFConfig):
        for bad in (-math.inf, math.nan):
            with pytest.raises(ValueError, match="clip_eps"):
                cls(clip_eps=bad)
    assert token_ppo_config(seed=2).gamma == 1.0


@pytest.mark.parametrize(
    "cls, kwargs, word",
    [
        (ReinforceConfig, {"baseline": "critic"}, "baseline"),
        (ReinforceConfig, {"gamma": -0.5}, "gamma"),
        (ReinforceConfig, {"episodes_per_batch": 0}, "episodes_per_batch"),
        (DQNConfig, {"eps_fraction": 0.0}, "eps_fraction"),
        (DQNConfig, {"eps_end": 1.5}, "eps_end"),
        (DQNConfig, {"batch_size": 0}, "batch_size"),
        (DQNConfig, {"max_grad_norm": 0.0}, "max_grad_norm"),
    ],
)
def test_other_configs_validation(cls, kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        cls(**kwargs)


def test_trainers_reject_wrong_config_type():
    with pytest.raises(ValueError, match="config"):
        train_ppo(_token_env(), DQNConfig())
    with pytest.raises(ValueError, match="config"):
        train_dqn(_token_env(), PPOConfig())
    with pytest.raises(ValueError, match="config"):
        train_reinforce(_token_env(), PPOConfig())


def test_epsilon_schedule_by_hand():
    assert epsilon_schedule(0, 1000, 1.0, 0.1, 0.5) == 1.0
    assert epsilon_schedule(250, 1000, 1.0, 0.1, 0.5) == pytest.approx(0.55)
    assert epsilon_schedule(900, 1000, 1.0, 0.1, 0.5) == pytest.approx(0.1)


def test_replay_buffer_wraps_around():
    buf = ReplayBuffer(3, (2,))
    for i in range(5):
        buf.add(np.array([i, i]), i % 2, float(i), np.array([i + 1, i + 1]), i == 4)
    assert buf.size == 3
    assert sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0]  # the two oldest were overwritten
    obs, act, rew, nxt, term = buf.sample(8, np.random.default_rng(0))
    torch.testing.assert_close(nxt[:, 0], obs[:, 0] + 1)
    torch.testing.assert_close(term, (rew == 4.0).float())


def test_sparse_first_layer_equals_dense_one_hot():
    env = TokenMDPEnv(vocab_size=20, horizon=5)
    agent = ActorCritic(env.observation_space, env.action_space, hidden=16)
    q_net = QNetwork(env.observation_space, env.action_space, hidden=16)
    obs = torch.randint(0, 21, (7, 5)).float()
    torch.testing.assert_close(agent.logits(obs), agent.actor(agent.encoder(obs)))
    torch.testing.assert_close(agent.value(obs), agent.critic(agent.encoder(obs)).squeeze(-1))
    torch.testing.assert_close(q_net(obs), q_net.q(q_net.encoder(obs)))


def test_reinforce_and_dqn_run_and_log():
    r = train_reinforce(_token_env(), ReinforceConfig(total_steps=60, episodes_per_batch=4, seed=0))
    assert r.env_steps == 60 and len(r.episode_returns) == 20 and len(r.curves) == 5
    d = train_dqn(_token_env(), DQNConfig(total_steps=300, learning_starts=50, seed=0), log_every=100)
    assert d.env_steps == 300 and len(d.curves) == 3 and len(d.episode_returns) == 100
    assert set(d.curves[0]) >= {"env_steps", "mean_return", "epsilon", "loss", "q_mean"}


@pytest.mark.slow
def test_ppo_learns_cartpole_quickly():
    # a uniformly random policy averages about 22 on CartPole; 25k steps of PPO (about 4 s) are enough for > 150
    result = train_ppo("CartPole-v1", PPOConfig(total_steps=25_000, seed=0))
    assert result.final_return() > 150
    assert np.mean(evaluate(result.agent, "CartPole-v1", n_episodes=5)) > 150


@pytest.mark.slow
def test_dqn_and_reinforce_learn_a_small_token_mdp():
    # 4 tokens, 4 positions: a uniform policy matches 1/4 of the target; both learners get (nearly) all of it
    make = _token_env(horizon=4, vocab=4)
    d = train_dqn(
        make,
        DQNConfig(
            total_steps=6000, learning_starts=500, eps_fraction=0.5, target_update=100, lr=1e-3, gamma=1.0, seed=0
        ),
    )
    assert evaluate(d.agent, make, n_episodes=1)[0] >= 0.75
    r = train_reinforce(make, ReinforceConfig(total_steps=6000, gamma=1.0, seed=0))
    assert r.final_return() >= 0.75
