"""benchmarks/scale.py: the reduced CPU run works, and the JSON the book's appendix glues has its keys.

The reduced run launches the benchmark in a subprocess (tens of seconds): its tests are ``slow``; the quick suite
checks the committed JSON against the keys the benchmark declares. TRL's arm runs only where ``trl`` is installed
(``requirements-bench.txt``); elsewhere the test checks that it is reported as skipped. The DeepSpeed ZeRO-2/3
recipes (``configs/accelerate/zero2.yaml``, ``zero3.yaml``) run TRL's arm on two CPU processes where both ``trl``
and ``deepspeed`` are installed; CI installs neither, so there those tests are skipped.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK_JSON = ROOT / "book" / "appendix-scaling.json"


def _module():
    spec = importlib.util.spec_from_file_location("scale_benchmark", ROOT / "benchmarks" / "scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run_benchmark(out: Path, *args: str) -> tuple[dict, str]:
    """``benchmarks/scale.py --reduced --device cpu --iterations 1 ARGS --out OUT``: the JSON it wrote, its stdout."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--reduced", "--device", "cpu", "--iterations", "1"]
        + [*args, "--out", str(out)],
        env={**os.environ, "RL4LLM_QUIET": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(out.read_text()), res.stdout


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory):
    return _run_benchmark(tmp_path_factory.mktemp("scale") / "scale.json", "--processes", "1")


HAS_TRL = importlib.util.find_spec("trl") is not None


@pytest.mark.slow
def test_reduced_run_measures_every_arm(reduced_run):
    result, stdout = reduced_run
    expected = ["ppo-rlhf", "grpo"] + (["trl-grpo"] if HAS_TRL else [])
    assert [r["trainer"] for r in result["runs"]] == expected
    assert all(r["processes"] == 1 and r["device"] == "cpu" and r["iterations"] == 1 for r in result["runs"])
    # GRPO arms: 4 groups of 4 completions, each 1 to 32 tokens long
    for run in result["runs"][1:]:
        assert run["batch_size"] == 16 and 16 <= run["tokens"] <= 16 * 32, run
        # tokens and wall_s are rounded (to 1 and to 0.01 s): a short run's ratio carries their rounding
        rounding = 0.5 / run["tokens"] + 0.005 / run["wall_s"]
        assert run["tokens_per_s"] == pytest.approx(run["tokens"] / run["wall_s"], rel=0.02 + rounding)
        assert run["parameters"] == result["runs"][0]["parameters"]  # the same GPT-2 folder
    assert result["grpo"] == {"group_size": 4, "prompts_per_iter": 4, "n_minibatches": 2, "max_new_tokens": 32}
    for name in expected:
        assert name in stdout


@pytest.mark.slow
def test_reduced_run_measures_ppo_rlhf(reduced_run):
    result, stdout = reduced_run
    run = result["runs"][0]
    assert run["trainer"] == "ppo-rlhf" and run["processes"] == 1 and run["device"] == "cpu"
    assert run["iterations"] == 1 and run["batch_size"] == 16
    # tokens: 16 responses of 1 to 28 tokens each
    assert 16 <= run["tokens"] <= 16 * 28
    assert run["tokens_per_s"] == pytest.approx(run["tokens"] / run["wall_s"], rel=0.02)
    assert run["peak_rss_mb"] > 0 and run["peak_gpu_mb"] == 0.0
    # 2 layers of width 128 over a 400-token vocabulary: embeddings + 2 blocks + final norm (tied head)
    d, v, p = 128, 400, 64
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    assert run["parameters"] == v * d + p * d + 2 * block + 2 * d
    assert "ppo-rlhf" in stdout and "tokens/s" in stdout


@pytest.mark.slow
def test_skipped_trainers_are_reported(reduced_run):
    result, stdout = reduced_run
    if not HAS_TRL:
        assert "trl-grpo" in result["skipped"] and "trl-grpo: skipped" in stdout
        assert "requirements-bench.txt" in result["skipped"]["trl-grpo"]
    else:
        assert result["skipped"] == {}


@pytest.mark.slow
def test_book_json_has_the_keys_the_benchmark_writes(reduced_run):
    result, _ = reduced_run
    book = json.loads(BOOK_JSON.read_text())
    mod = _module()
    assert set(book) == set(result) == set(mod.TOP_KEYS)
    for run in book["runs"] + result["runs"]:
        assert set(run) == set(mod.RUN_KEYS)
    assert set(book["model_config"]) == set(result["model_config"])
    assert set(book["ppo"]) == set(result["ppo"]) and book["grpo"] == result["grpo"]
    assert book["setting"] == "reduced"


def test_book_json_has_the_keys_the_benchmark_declares():
    book = json.loads(BOOK_JSON.read_text())
    mod = _module()
    assert set(book) == set(mod.TOP_KEYS)
    assert book["runs"]
    for run in book["runs"]:
        assert set(run) == set(mod.RUN_KEYS)
    assert book["ppo"] == {k: mod.SETTINGS["reduced"][k] for k in mod.PPO_KEYS}
    assert book["grpo"] == mod.GRPO_SETTINGS["reduced"]
    assert book["setting"] == "reduced"
    # every arm measured with 1 process and 2 data-parallel processes on CPU; rl4llm's under both FSDP configs
    # (fsdp.yaml, fsdp-zero2.yaml), TRL's under ZeRO-2 and ZeRO-3 (the appendix glues each)
    keys = sorted((r["trainer"], r["processes"], r["engine"], r["config"]) for r in book["runs"])
    expected = [(t, 1, "single", None) for t in mod.TRAINERS] + [(t, 2, "allreduce", "multi-cpu") for t in mod.TRAINERS]
    expected += [(t, 2, "fsdp", c) for t in ("ppo-rlhf", "grpo") for c in ("fsdp", "fsdp-zero2")]
    expected += [("trl-grpo", 2, "deepspeed-zero2", "zero2"), ("trl-grpo", 2, "deepspeed-zero3", "zero3")]
    assert keys == sorted(expected, key=str)
    assert all(r["device"] == "cpu" and r["tokens_per_s"] > 0 for r in book["runs"])
    # FSDP and ZeRO partition the policy's Adam states over the 2 processes; data parallelism keeps them whole in
    # each (the reduced GPT-2's dimensions are all even, so the halves are exact)
    for r in book["runs"]:
        whole = r["engine"] in ("single", "allreduce")
        assert r["adam_state_per_process"] == (r["parameters"] if whole else r["parameters"] // 2), r


HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
CONFIGS = ROOT / "configs" / "accelerate"


def _gpt2_parameters(d=128, v=400, p=64, layers=2):
    """Parameters of the reduced GPT-2 by hand: embeddings + blocks + final norm (tied head)."""
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    return v * d + p * d + layers * block + 2 * d


@pytest.fixture(scope="module")
def zero_run(tmp_path_factory):
    configs = [str(CONFIGS / "zero2.yaml"), str(CONFIGS / "zero3.yaml")]
    out = tmp_path_factory.mktemp("scale-zero") / "scale.json"
    return _run_benchmark(out, "--trainers", "trl-grpo", "--processes", "2", "--accelerate-config", *configs)


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_TRL and HAS_DEEPSPEED), reason="needs trl and deepspeed (requirements-bench.txt)")
def test_trl_arm_runs_under_zero2_and_zero3_on_two_cpu_processes(zero_run):
    """TRL's GRPOTrainer under DeepSpeed ZeRO-2 and ZeRO-3, two CPU processes each (about a minute).

    Independent expectations: the engine is the ZeRO stage DeepSpeed's own engine reports; Adam's first moment
    holds half of the parameters (counted by hand) in each process, since both stages partition the optimiser
    states over the two processes (data parallelism would hold all of them: the committed JSON's all-reduce row);
    and how the gradients are reduced does not change what the first iteration samples from the same weights and
    seed, so the token counts agree.
    """
    result, stdout = zero_run
    runs = result["runs"]
    assert [r["engine"] for r in runs] == ["deepspeed-zero2", "deepspeed-zero3"]  # one row each
    assert result["skipped"] == {}
    params = _gpt2_parameters()
    for run in runs:
        assert run["trainer"] == "trl-grpo" and run["processes"] == 2 and run["device"] == "cpu"
        assert run["iterations"] == 1 and run["batch_size"] == 16 and 16 <= run["tokens"] <= 16 * 32, run
        assert run["parameters"] == params and run["peak_rss_mb"] > 0
        rounding = 0.5 / run["tokens"] + 0.005 / run["wall_s"]
        assert run["tokens_per_s"] == pytest.approx(run["tokens"] / run["wall_s"], rel=0.02 + rounding)
    for run in runs:
        assert run["adam_state_per_process"] == params // 2, run  # 456,192 is even: no padding
    assert len({r["tokens"] for r in runs}) == 1
    assert "deepspeed-zero2" in stdout and "deepspeed-zero3" in stdout


@pytest.mark.slow
def test_grpo_arm_under_both_fsdp_configs_holds_half_of_adam_per_process(tmp_path):
    """rl4llm's GRPO under ``fsdp.yaml`` and ``fsdp-zero2.yaml`` on 2 CPU processes (about 30 s): each row names
    its config, and each process holds half of the policy's Adam state (the parameters counted by hand, all of
    whose dimensions are even), as ZeRO does for TRL's trainer."""
    configs = [str(CONFIGS / "fsdp.yaml"), str(CONFIGS / "fsdp-zero2.yaml")]
    result, _ = _run_benchmark(
        tmp_path / "scale.json", "--trainers", "grpo", "--processes", "2", "--accelerate-config", *configs
    )
    runs = result["runs"]
    assert [(r["engine"], r["config"]) for r in runs] == [("fsdp", "fsdp"), ("fsdp", "fsdp-zero2")]
    for run in runs:
        assert run["parameters"] == _gpt2_parameters()
        assert run["adam_state_per_process"] == _gpt2_parameters() // 2
    assert len({r["tokens"] for r in runs}) == 1  # the same samples: only when the weights are gathered differs


def test_deepspeed_configs_are_measured_for_trl_only(tmp_path, capsys):
    """rl4llm's trainers refuse DeepSpeed: under a ZeRO config the benchmark lists them as skipped, runs nothing."""
    mod = _module()
    assert mod._is_deepspeed(str(CONFIGS / "zero2.yaml")) and mod._is_deepspeed(str(CONFIGS / "zero3.yaml"))
    assert not mod._is_deepspeed(str(CONFIGS / "multi-cpu.yaml")) and not mod._is_deepspeed(None)
    out = tmp_path / "scale.json"
    zero = [str(CONFIGS / "zero2.yaml"), str(CONFIGS / "zero3.yaml")]
    argv = ["--reduced", "--device", "cpu", "--trainers", "ppo-rlhf", "grpo", "--processes", "2"]
    assert mod.main([*argv, "--accelerate-config", *zero, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["runs"] == []
    assert sorted(result["skipped"]) == sorted(f"{t} ({c})" for t in ("ppo-rlhf", "grpo") for c in zero)
    assert all("launcher_engine" in why for why in result["skipped"].values())
    assert "nothing measured" in capsys.readouterr().out
