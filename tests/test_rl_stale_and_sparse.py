"""Section 1.5's stale-rollouts and section 1.6's sparse-reward experiments, and the trainer hook they use.

PPO's ``on_batch`` hook must leave the default training bit-for-bit unchanged; ``logp = None`` must give the plain
policy gradient (checked against REINFORCE's loss written out by hand); the replay hook must hand back the batch
of ``max(0, i - k)``; the per-seed log-log slope must recover an exact power law.
"""

import copy
import math

import numpy as np
import pytest
import torch

from rl4llm.envs import TokenMDPEnv
from rl4llm.experiments import config_from_overrides, run_experiment
from rl4llm.experiments.sparse_reward import loglog_slopes, steps_table
from rl4llm.experiments.stale_rollouts import stale_batches, table
from rl4llm.rl import ActorCritic, PPOConfig, token_ppo_config, train_ppo
from rl4llm.rl.ppo import ppo_update


def _env():
    return TokenMDPEnv(vocab_size=4, horizon=3, reward_mode="terminal", target=(1, 2, 3))


def _params(agent):
    return torch.cat([p.detach().reshape(-1) for p in agent.parameters()])


def test_default_training_is_unchanged_by_an_identity_batch_hook():
    config = token_ppo_config(total_steps=1024, n_envs=4, n_steps=32, seed=3)
    plain = train_ppo(_env, config)
    seen = []

    def identity(iteration, batch, agent):
        seen.append(iteration)
        return batch

    hooked = train_ppo(_env, config, on_batch=identity)
    assert seen == list(range(config.iterations))
    assert torch.equal(_params(plain.agent), _params(hooked.agent))  # bit for bit
    assert plain.curves == hooked.curves
    # the replay hook with k = 0 is the identity too
    fresh = train_ppo(_env, config, on_batch=stale_batches(0))
    assert torch.equal(_params(plain.agent), _params(fresh.agent))


def test_stale_batches_replays_the_batch_of_k_iterations_ago():
    hook = stale_batches(2)
    batches = [{"obs": torch.full((3,), float(i)), "logp": torch.zeros(3)} for i in range(6)]
    used = [hook(i, b, None)["obs"] for i, b in enumerate(batches)]
    assert [u.shape[0] for u in used[:2]] == [0, 0]  # the learner waits: empty batches, no update
    assert [int(u[0]) for u in used[2:]] == [0, 1, 2, 3]  # then each batch once, 2 iterations late
    plain = stale_batches(0, drop_ratio=True)
    out = plain(0, batches[0], None)
    assert out["logp"] is None and batches[0]["logp"] is not None  # the stored batch is not modified
    with pytest.raises(ValueError, match="k must be"):
        stale_batches(-1)


def test_an_empty_batch_makes_no_update():
    config = token_ppo_config(total_steps=1024, n_envs=4, n_steps=32, seed=1)
    start = train_ppo(_env, PPOConfig(total_steps=1, n_envs=4, n_steps=32, seed=1, n_epochs=1)).agent
    waited = train_ppo(
        _env, config, agent=copy.deepcopy(start), on_batch=lambda i, b, a: {k: v[:0] for k, v in b.items()}
    )
    assert torch.equal(_params(waited.agent), _params(start))


def test_batch_hook_answer_is_checked():
    config = PPOConfig(total_steps=64, n_envs=2, n_steps=32, n_epochs=1, seed=0)
    with pytest.raises(ValueError, match="on_batch must return"):
        train_ppo(_env, config, on_batch=lambda i, b, a: {"obs": b["obs"]})
    with pytest.raises(ValueError, match="one per transition"):
        train_ppo(_env, config, on_batch=lambda i, b, a: {**b, "actions": b["actions"][:1]})


def test_logp_none_is_the_plain_policy_gradient():
    # One epoch, one minibatch, SGD with lr 1, no value or entropy term, no advantage normalisation, no
    # gradient clip: the step must equal minus the gradient of REINFORCE's loss -mean(A log pi(a|s)).
    env = _env()
    torch.manual_seed(0)
    agent = ActorCritic(env.observation_space, env.action_space, hidden=8)
    obs = torch.randint(0, 5, (6, 3)).float()
    actions = torch.tensor([0, 1, 2, 3, 1, 2])
    adv = torch.tensor([1.0, -0.5, 2.0, 0.0, -1.0, 0.5])
    stale_logp = torch.full((6,), math.log(0.9))  # a policy very unlike the current one
    batch = {"obs": obs, "actions": actions, "advantages": adv, "returns": torch.zeros(6), "values": torch.zeros(6)}
    config = PPOConfig(
        n_envs=1, n_steps=6, n_epochs=1, n_minibatches=1, vf_coef=0.0, ent_coef=0.0, norm_adv=False, max_grad_norm=1e9
    )

    expected = copy.deepcopy(agent)
    logp = torch.log_softmax(expected.logits(obs), -1).gather(1, actions[:, None]).squeeze(1)
    (-(adv * logp).mean()).backward()
    want = torch.cat([(p - (0 if p.grad is None else p.grad)).detach().reshape(-1) for p in expected.parameters()])

    def step(logp_old):
        a = copy.deepcopy(agent)
        opt = torch.optim.SGD(a.parameters(), lr=1.0)
        ppo_update(a, opt, {**batch, "logp": logp_old}, config, math.inf, torch.Generator().manual_seed(0))
        return _params(a)

    assert torch.allclose(step(None), want, atol=1e-6)
    assert not torch.allclose(step(stale_logp), want, atol=1e-3)  # with the ratio to the stale policy it differs


def test_loglog_slopes_recover_exact_power_laws():
    horizons = np.array([4, 8, 16, 32])
    steps = np.stack([3.0 * horizons**1.5, 10.0 * horizons**0.5, 7.0 * horizons], axis=1)
    steps[2, 2] = np.nan  # a run that never got there: no slope for that seed
    slopes = loglog_slopes(horizons, steps)
    assert np.allclose(slopes[:2], [1.5, 0.5])
    assert np.isnan(slopes[2])
    with pytest.raises(ValueError, match="steps must be"):
        loglog_slopes(horizons, steps[:2])


def test_tables_read_the_flat_metrics_back():
    stale = config_from_overrides("stale-rollouts", staleness="0,3", objectives="clip,pg", seeds=2, seed=5)
    metrics = {f"return_k{k}_{o}_seed{s}": k + s / 10 for k in (0, 3) for o in ("clip", "pg") for s in (5, 6)}
    assert np.allclose(table(metrics, stale)["pg"], [[0.5, 0.6], [3.5, 3.6]])
    sparse = config_from_overrides("sparse-reward", horizons="4,8", seeds=2)
    metrics = {
        f"steps_{m}_T{t}_seed{s}": float(t * (s + 1)) for m in ("dense", "terminal") for t in (4, 8) for s in (0, 1)
    }
    metrics["steps_terminal_T8_seed1"] = None
    got = steps_table(metrics, sparse)
    assert np.allclose(got["dense"], [[4, 8], [8, 16]])
    assert np.isnan(got["terminal"][1, 1])


@pytest.mark.parametrize(
    ("name", "overrides", "word"),
    [
        ("stale-rollouts", {"staleness": "0,-1"}, "staleness"),
        ("stale-rollouts", {"objectives": "clip,sgd"}, "objectives"),
        ("sparse-reward", {"horizons": "8"}, "horizons"),
        ("sparse-reward", {"seeds": 1}, "seeds"),
    ],
)
def test_configs_reject_bad_values(name, overrides, word):
    with pytest.raises(ValueError, match=word):
        config_from_overrides(name, **overrides)


def test_stale_rollouts_small_run_is_reproducible():
    kw = dict(staleness="0,2", seeds=1, total_steps=1024, eval_episodes=4)
    a = run_experiment("stale-rollouts", **kw)
    b = run_experiment("stale-rollouts", **kw)
    keys = [k for k in a.metrics if k != "wall_s"]
    assert {k: a.metrics[k] for k in keys} == {k: b.metrics[k] for k in keys}
    assert set(a.metrics) >= {f"return_k{k}_{o}_mean" for k in (0, 2) for o in ("clip", "ratio", "pg")}
    assert all(0.0 <= a.metrics[f"return_k{k}_{o}_seed0"] <= 1.0 for k in (0, 2) for o in ("clip", "ratio", "pg"))


def test_sparse_reward_small_run_reports_steps_and_slopes():
    res = run_experiment("sparse-reward", horizons="2,4", vocab_size=4, seeds=2, max_steps=2048)
    m = res.metrics
    for mode in ("dense", "terminal"):
        for t in (2, 4):
            for s in (0, 1):
                v = m[f"steps_{mode}_T{t}_seed{s}"]
                assert v is None or (v % 512 == 0 and 512 <= v <= 2048)  # whole batches, within the budget
    assert res.figure is not None


def test_staleness_figure_has_one_or_two_labelled_panels():
    from rl4llm.rl.plots import plot_staleness

    data = {"clip": np.array([[0.9, 1.0], [0.5, 0.6]]), "pg": np.array([[0.8, 0.7], [0.1, 0.2]])}
    for greedy, panels in ((None, 1), (data, 2)):
        fig = plot_staleness([0, 2], data, labels={"clip": "PPO"}, random_return=0.1, greedy=greedy)
        assert len(fig.axes) == panels
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
