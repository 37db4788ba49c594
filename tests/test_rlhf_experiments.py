"""Chapter 5 experiments: configuration checks, shared stage defaults, a tiny rlhf run through the result cache."""

import dataclasses
import json

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
