"""Chapter 5 experiments: configuration checks, shared stage defaults, a tiny rlhf run through the result cache."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from rl4llm.cache import clear_memory_cache
from rl4llm.config import ConfigError, field_spec
from rl4llm.experiments import config_from_overrides, get_experiment, result_key, run_experiment, save_result
from rl4llm.rlhf.stages import StagesConfig, stages_config_from

TINY_RLHF = dict(n_pairs=60, heldout_pairs=20, rm_steps=10, iterations=3, batch_size=16, n_minibatches=2, eval_every=2)
STAGE_EXPERIMENTS = ("rlhf", "dpo", "overoptimization")


def test_experiment_configs_validate():
    with pytest.raises(ValueError, match="kl_coef"):
        config_from_overrides("rlhf", kl_coef=-0.1)
    with pytest.raises(ConfigError, match="rm_train_pairs") as info:
        config_from_overrides("rlhf", rm_train_pairs=10_000)
    assert info.value.field == "rm_train_pairs"
    with pytest.raises(ValueError, match="kl_coefs"):
        config_from_overrides("overoptimization", kl_coefs=())
    with pytest.raises(ValueError, match="bon_max_n"):
        config_from_overrides("overoptimization", bon_pool=64, bon_max_n=128)
    with pytest.raises(ValueError, match="beta"):
        config_from_overrides("dpo", beta=0.0)
    # the three experiments share the preference data: same data key for the same seed
    keys = {stages_config_from(config_from_overrides(name)).data_key() for name in STAGE_EXPERIMENTS}
    assert len(keys) == 1


def test_stage_fields_are_the_stages_own_declarations():
    """The experiments cannot drift from StagesConfig: same defaults (but the one overridden on purpose), same
    range and help, and the stages built from their default configs are the chapter's."""
    stage_fields = {f.name: f for f in dataclasses.fields(StagesConfig)}
    for name in STAGE_EXPERIMENTS:
        for f in dataclasses.fields(get_experiment(name).config_cls):
            if f.name in stage_fields and f.name != "seed":
                assert field_spec(f) is field_spec(stage_fields[f.name]), (name, f.name)
    assert stages_config_from(config_from_overrides("rlhf")) == StagesConfig()
    assert stages_config_from(config_from_overrides("dpo")) == StagesConfig()
    assert stages_config_from(config_from_overrides("overoptimization")) == StagesConfig(rm_train_pairs=1000)
    assert stages_config_from(config_from_overrides("rlhf", n_pairs=900, seed=3)) == StagesConfig(n_pairs=900, seed=3)


def test_result_key_depends_on_the_configuration():
    a = config_from_overrides("rlhf", kl_coef=0.1)
    assert result_key("rlhf", a) == result_key("rlhf", config_from_overrides("rlhf"))
    assert result_key("rlhf", a) != result_key("rlhf", config_from_overrides("rlhf", kl_coef=0.2))


@pytest.mark.slow
def test_tiny_rlhf_run_is_cached_and_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path))
    clear_memory_cache()
    first = run_experiment("rlhf", cache=True, **TINY_RLHF)
    assert first.artifacts["from_cache"] is False
    m = first.metrics
    for key in ("rm_accuracy", "sft_gold_reward", "rlhf_gold_reward", "rlhf_proxy_reward", "kl", "wall_s"):
        assert key in m
    assert m["sft_gold_reward"] == pytest.approx(0.0, abs=1e-12)  # SFT is the zero of the scale
    assert [r["iteration"] for r in first.curves if "eval_gold" in r] == [0, 2, 3]
    # the stages and the result went through rl4llm.cache, under its folder
    assert len(list((tmp_path / "rlhf").glob("data-*.pt"))) == 1
    assert len(list((tmp_path / "results").glob("rlhf-*.pt"))) == 1
    # the second call loads the same numbers and the same policy from disk
    clear_memory_cache()
    second = run_experiment("rlhf", cache=True, **TINY_RLHF)
    assert second.artifacts["from_cache"] is True
    assert second.metrics == json.loads(json.dumps(m))
    assert second.curves == json.loads(json.dumps(first.curves))
    for a, b in zip(first.artifacts["policy"].state_dict().values(), second.artifacts["policy"].state_dict().values()):
        assert torch.equal(a, b)
    # the experiment's files, as the CLI writes them
    out = save_result(second, tmp_path / "run")
    assert json.loads((out / "metrics.json").read_text())["kl"] == pytest.approx(m["kl"])
    assert (out / "figure.png").stat().st_size > 0
    clear_memory_cache()


def test_online_dpo_rounds_must_divide_the_steps():
    assert config_from_overrides("dpo", online_rounds=5).online_rounds == 5  # 300 steps, 2,500 pairs
    with pytest.raises(ConfigError, match="online_rounds") as info:
        config_from_overrides("dpo", online_rounds=7)
    assert info.value.field == "online_rounds"
    with pytest.raises(ConfigError, match="online_rounds"):
        config_from_overrides("dpo", n_pairs=30, heldout_pairs=20, steps=20, online_rounds=20)  # 10 pairs only


@pytest.mark.slow
def test_online_dpo_labels_fresh_pairs_of_the_current_policy(tmp_path, monkeypatch):
    """With a noiseless, near-deterministic labeller the chosen response of every pair whose gold rewards differ
    has the higher gold reward; online DPO logs the same steps as offline DPO and evaluates at the same steps."""
    from rl4llm.experiments.dpo import label_fresh_pairs
    from rl4llm.rlhf.stages import gold_of, prepare_stages

    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path))
    clear_memory_cache()
    tiny = dict(n_pairs=60, heldout_pairs=20, rm_steps=10, sft_steps=10)
    stages = prepare_stages(StagesConfig(label_temperature=1e-4, label_noise=0.0, **tiny))
    chosen, rejected = label_fresh_pairs(
        stages.sft_model, stages, 200, torch.Generator().manual_seed(1), np.random.default_rng(1)
    )
    assert len(chosen) == len(rejected) == 200
    gc, gr = gold_of(stages.tokenizer, chosen), gold_of(stages.tokenizer, rejected)
    assert (gc != gr).sum() > 20 and np.all(gc[gc != gr] > gr[gc != gr])
    small = dict(n_pairs=60, heldout_pairs=20, steps=20, eval_every=10, batch_size=8)
    online = run_experiment("dpo", online_rounds=2, **small)
    offline = run_experiment("dpo", **small)
    assert [r["step"] for r in online.curves] == [r["step"] for r in offline.curves]
    assert [r["step"] for r in online.curves if "eval_gold" in r] == [0, 10, 20]
    assert online.metrics["dpo_gold_reward"] != offline.metrics["dpo_gold_reward"]  # other pairs, other policy
    clear_memory_cache()
