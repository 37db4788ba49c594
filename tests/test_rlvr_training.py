"""Chapter 7's checkpoint, sampler, GRPO trainer, the PPO arm's prompted rollouts, and experiment configs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from rl4llm.config import ConfigError
from rl4llm.lm import CheckpointError
from rl4llm.prompting.task import Query
from rl4llm.rlhf.rollout import response_logprobs, sample_prompted_sequences
from rl4llm.rlvr import GRPOConfig, load_reasoning_lm, train_grpo
from rl4llm.rlvr.analysis import verifier_reward_fn
from rl4llm.rlvr.evaluation import completion_logprobs, evaluate_pass_at_k, sample_completions
from rl4llm.rlvr.pretrain import CHECKPOINT_DIR
from rl4llm.rlvr.task import held_out_problems, prompt_text


@pytest.fixture(scope="module")
def lm():
    return load_reasoning_lm()


def test_checkpoint_is_small_and_verified(tmp_path):
    size = sum(p.stat().st_size for p in CHECKPOINT_DIR.iterdir())
    assert size < 2_000_000
    bad = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINT_DIR, bad)
    (bad / "tokenizer.json").write_text((bad / "tokenizer.json").read_text().replace("#", "$"))
    with pytest.raises(CheckpointError):
        load_reasoning_lm(bad)


def test_sampler_groups_and_logprobs(lm):
    model, tok = lm
    q = held_out_problems(2)
    flat = [q[0]] * 3 + [q[1]] * 3
    gen = torch.Generator().manual_seed(0)
    c = sample_completions(model, tok, flat, generator=gen)
    assert len(c.texts) == 6 and c.samples.prompt_length == len(tok.encode(prompt_text(q[0])))
    assert torch.equal(c.mask.sum(1), torch.as_tensor(c.lengths, dtype=torch.float32))
    # the per-token log-probs of the completions sum to the substrate's sequence log-prob
    from rl4llm.lm import sequence_logprobs

    seq = sequence_logprobs(model, c.samples.input_ids, c.samples.attention_mask, c.samples.response_mask)
    assert torch.allclose(completion_logprobs(model, c).sum(1), seq, atol=1e-5)


def test_prompted_ppo_rollout_lines_up_with_completions(lm):
    model, tok = lm
    q = held_out_problems(4)
    prompts = [tok.encode(prompt_text(x)) for x in q]
    batch, start = sample_prompted_sequences(
        model, prompts, 32, tok.eos_token_id, tok.pad_token_id, generator=torch.Generator().manual_seed(1)
    )
    assert start == len(prompts[0]) - 1
    assert float(batch.response_mask[:, :start].sum()) == 0.0
    assert bool((batch.response_mask[:, start] == 1).all())
    lp = response_logprobs(model, batch)
    assert float(lp[:, :start].abs().sum()) == 0.0
    # the reward function reads the prompt back from the batch and verifies the response
    rewards = verifier_reward_fn(tok, len(prompts[0]))(batch)
    texts = [tok.decode(ids[len(prompts[0]) :].tolist()) for ids in batch.input_ids]
    from rl4llm.rlvr.task import verify

    assert torch.equal(rewards, torch.as_tensor(verify(q, texts), dtype=torch.float32))


def test_verifier_reward_fn_on_a_hand_built_batch(lm):
    _, tok = lm
    from rl4llm.rlhf.rollout import SequenceBatch

    q = Query(47, 38, "+")
    rows = [
        tok.encode(prompt_text(q)) + tok.encode(t, bos=False) + [tok.eos_token_id]
        for t in ("7+8=15;4+3+1=8#85", "7+8=15;4+3=7#75")
    ]
    width = max(map(len, rows))
    ids = torch.full((2, width), tok.pad_token_id)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    att = (ids != tok.pad_token_id).long()
    batch = SequenceBatch(ids, att, att[:, 1:].float())
    assert verifier_reward_fn(tok, 7)(batch).tolist() == [1.0, 0.0]
    assert verifier_reward_fn(tok, 7, "last-digit")(batch).tolist() == [1.0, 1.0]


def _tiny(**kw) -> GRPOConfig:
    return GRPOConfig(**{"iterations": 2, "group_size": 2, "prompts_per_iter": 2, "n_minibatches": 1, **kw})


def test_train_grpo_is_reproducible(lm):
    model, tok = lm
    import copy

    outs = []
    for _ in range(2):
        pol = copy.deepcopy(model)
        h = train_grpo(pol, model, tok, _tiny(kl_coef=0.05, seed=3))
        outs.append(
            (
                [{k: v for k, v in r.items() if k != "wall_s"} for r in h.rows],
                torch.cat([p.detach().flatten() for p in pol.parameters()]),
            )
        )
    a, b = (np.array([[r[k] for k in sorted(r)] for r in rows], dtype=float) for rows, _ in outs)
    np.testing.assert_array_equal(a, b)  # NaN (no correct completion) equals NaN here
    assert torch.equal(outs[0][1], outs[1][1])
    other = copy.deepcopy(model)
    train_grpo(other, model, tok, _tiny(kl_coef=0.05, seed=4))
    assert not torch.equal(outs[0][1], torch.cat([p.detach().flatten() for p in other.parameters()]))


def test_train_grpo_needs_a_reference_for_kl(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="ref_model"):
        train_grpo(model, None, tok, _tiny(kl_coef=0.1))


def test_grpo_config_validation():
    with pytest.raises(ConfigError) as e:
        GRPOConfig(group_size=1)
    assert e.value.field == "group_size"
    with pytest.raises(ConfigError) as e:
        GRPOConfig(baseline="median")
    assert e.value.field == "baseline"
    with pytest.raises(ValueError, match="n_minibatches"):
        GRPOConfig(group_size=3, prompts_per_iter=3, n_minibatches=2)
    with pytest.raises(ValueError, match="method"):
        GRPOConfig.for_method("ppo2")
    c = GRPOConfig.for_method("rloo", seed=2)
    assert (c.baseline, c.scale, c.seed) == ("loo", "none", 2)
    assert GRPOConfig(clip_eps=float("inf")).clip_eps == float("inf")


@pytest.mark.parametrize(
    "name, bad",
    [
        ("rlvr", {"methods": ("grpo", "sac")}),
        ("rlvr", {"n_seeds": 0}),
        ("pass-at-k", {"n_samples": 0}),
        ("length-bias", {"group_size": 1}),
        ("verifier-hacking", {"verifier": "exact"}),
    ],
)
def test_experiment_configs_validate(name, bad):
    from rl4llm.experiments import get_experiment

    exp = get_experiment(name)
    exp.config_cls()  # the defaults are valid
    with pytest.raises(ValueError) as e:
        exp.config_cls(**bad)
    assert getattr(e.value, "field", list(bad)[0]) == list(bad)[0]


@pytest.mark.slow
def test_grpo_raises_held_out_pass_at_1(lm):
    model, tok = lm
    import copy

    pol = copy.deepcopy(model)
    before = evaluate_pass_at_k(pol, tok, n_problems=200, n_samples=2, seed=0)["pass_at_k"][1]
    train_grpo(pol, None, tok, GRPOConfig(iterations=15, n_epochs=2, seed=0))
    after = evaluate_pass_at_k(pol, tok, n_problems=200, n_samples=2, seed=0)["pass_at_k"][1]
    assert after > before + 0.05, (before, after)
    assert isinstance(np.float64(after), np.floating)


def test_ppo_with_prompts_trains_and_is_reproducible(lm):
    """Chapter 5's trainer with ``prompt_fn``: runs on the verifier's reward, same seed same numbers."""
    import copy

    from rl4llm.rlhf.ppo import PPORLHFConfig, train_ppo_rlhf
    from rl4llm.rlhf.reward_model import RewardModel, ValueModel
    from rl4llm.rlvr.task import train_problems

    model, tok = lm
    config = PPORLHFConfig(
        iterations=2,
        batch_size=4,
        n_minibatches=2,
        n_epochs=1,
        lr=3e-4,
        critic_lr=3e-4,
        kl_coef=0.05,
        max_new_tokens=32,
        seed=0,
    )
    seen: list[int] = []

    def prompt_fn(n: int, rng) -> list[list[int]]:
        seen.append(n)
        return [tok.encode(prompt_text(q)) for q in train_problems(n, rng)]

    rows = []
    for _ in range(2):
        pol = copy.deepcopy(model)
        torch.manual_seed(0)  # the critic's new head is initialised from the global generator
        critic = ValueModel.from_reward_model(RewardModel.from_lm(pol))
        h = train_ppo_rlhf(
            pol,
            model,
            critic,
            verifier_reward_fn(tok, 7),
            config,
            bos_id=tok.bos_token_id,
            eos_id=tok.eos_token_id,
            pad_id=tok.pad_token_id,
            prompt_fn=prompt_fn,
        )
        rows.append(np.array([[r[k] for k in sorted(r)] for r in h.rows], dtype=float))
    assert seen == [4, 4, 4, 4]
    np.testing.assert_array_equal(rows[0], rows[1])
    assert np.all(np.isfinite(rows[0]))


def test_rlvr_config_maps_batch_size_and_optional_knobs_onto_grpo():
    from rl4llm.experiments import get_experiment

    cls = get_experiment("rlvr").config_cls
    base = cls().overrides()
    assert "scale" not in base and "loss_agg" not in base  # each method keeps its own
    assert base["prompts_per_iter"] == 8 and base["n_epochs"] == 1
    o = cls(group_size=16, batch_size=64, scale="none", loss_agg="token-mean").overrides()
    assert (o["group_size"], o["prompts_per_iter"], o["scale"], o["loss_agg"]) == (16, 4, "none", "token-mean")
    # a named method's own choices give way to the explicit ones
    g = GRPOConfig.for_method("grpo", **o)
    assert (g.baseline, g.scale, g.loss_agg) == ("mean", "none", "token-mean")
    with pytest.raises(ConfigError) as e:
        cls(group_size=8, batch_size=60)
    assert e.value.field == "batch_size"
    with pytest.raises(ConfigError) as e:
        cls(scale="median")
    assert e.value.field == "scale"


def test_kl_to_reference_is_zero_for_the_same_policy_and_positive_after_a_change(lm):
    import copy

    from rl4llm.rlvr.analysis import kl_to_reference

    model, tok = lm
    assert kl_to_reference(model, model, tok, n=8, seed=0) == 0.0  # k3 of identical log-probs is exactly 0
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.lm_head.weight.mul_(1.5)  # sharper next-token distributions: a different policy
    kl = kl_to_reference(other, model, tok, n=8, seed=0)
    assert kl > 0.0
    assert kl == kl_to_reference(other, model, tok, n=8, seed=0)  # its own generator: reproducible
    with pytest.raises(ValueError, match="n"):
        kl_to_reference(model, model, tok, n=0)


def test_knob_plots_draw_labelled_axes_and_reject_unknown_columns():
    from rl4llm.rlvr.plots import plot_knob_run, plot_knob_sweep

    curves = [{"iteration": i, "reward": 0.1 * i, "zero_adv_frac": 0.5 / i} for i in range(1, 6)]
    fig = plot_knob_sweep([(2, curves, 0.5), (8, curves, 0.6)], knob="G", diagnostic="zero_adv_frac", sft_pass_at_1=0.4)
    axes = fig.get_axes()
    assert len(axes) == 3 and all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    assert [t.get_text() for t in axes[2].get_legend().get_texts()] == ["G = 2", "G = 8"]
    fig = plot_knob_run(curves, diagnostic="zero_adv_frac", name="run", reference=curves)
    assert len(fig.get_axes()) == 2
    with pytest.raises(ValueError, match="diagnostic"):
        plot_knob_run(curves, diagnostic="entropy", name="run")
