"""Data parallelism through Accelerate on CPU (gloo): the same gradient as one process, files written once."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rl4llm.distributed import Runtime, is_main_process, make_runtime, resolve_device, world

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = Path(sys.executable).with_name("accelerate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(n: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``accelerate launch`` with ``n`` CPU processes (torch.distributed.run underneath; gloo backend)."""
    env = {**os.environ, "RL4LLM_QUIET": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [
        str(ACCELERATE),
        "launch",
        "--multi_gpu",
        "--num_processes",
        str(n),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        *args,
    ]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_default_path_has_no_runtime(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert make_runtime() is None  # one CPU process, float32: the trainers' original code path
    assert world() == (0, 1) and is_main_process()
    rt = make_runtime("cpu", "bf16")
    assert rt is not None and rt.world_size == 1 and rt.device.type == "cpu"


def test_launcher_environment_decides_the_main_process(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert world() == (1, 2) and not is_main_process()


def test_bad_device_and_precision_name_the_parameter():
    with pytest.raises(ValueError, match="device"):
        make_runtime("tpu")
    with pytest.raises(ValueError, match="mixed_precision"):
        make_runtime("cpu", "fp8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="shards"):
        Runtime(torch.device("cpu"), rank=0, world_size=2, shards=3)


def test_rollout_shards_do_not_depend_on_the_number_of_processes():
    def seeds(rt):
        return [(rows, g.initial_seed()) for rows, g in rt.shard_plan(16, seed=3, iteration=2)]

    alone = seeds(Runtime(torch.device("cpu"), shards=4))
    rank0 = seeds(Runtime(torch.device("cpu"), rank=0, world_size=2, shards=4))
    rank1 = seeds(Runtime(torch.device("cpu"), rank=1, world_size=2, shards=4))
    assert [r for r, _ in alone] == [4, 4, 4, 4]
    assert sorted(rank0 + rank1) == sorted(alone) and not set(rank0) & set(rank1)
    with pytest.raises(ValueError, match="batch_size"):
        Runtime(torch.device("cpu"), shards=3).shard_plan(16, seed=0, iteration=1)


def test_single_process_reductions_are_identities():
    rt = Runtime(torch.device("cpu"))
    assert rt.token_share(7) == 1.0
    assert rt.mean_over_ranks({"a": 1.5}) == {"a": 1.5}
    x = torch.tensor([1.0, 2.0])
    assert torch.equal(rt.sum(x), x)


def test_bf16_autocast_on_cpu():
    rt = Runtime(torch.device("cpu"), mixed_precision="bf16")
    layer = torch.nn.Linear(4, 4)
    with rt.autocast():
        y = layer(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16
    with Runtime(torch.device("cpu")).autocast():
        assert layer(torch.ones(2, 4)).dtype == torch.float32


def test_two_processes_step_with_the_one_process_gradient(tmp_path):
    """One PPO-RLHF update on the same global batch (two rollout shards): 1 process vs 2 gloo processes, with
    rl4llm's all-reduce and with the policy and the critic sharded by FSDP (weights gathered for sampling)."""
    a, b, c = _one_two_and_fsdp("_ppo_grad_worker.py", tmp_path)
    assert (a["world_size"], b["world_size"], c["world_size"]) == (1, 2, 2)
    assert (b["engine"], c["engine"]) == ("allreduce", "fsdp")
    for other in (b, c):
        _assert_same_gradient(a["grads"], other["grads"])
        # the logged rollout statistics of the global batch agree too
        for key in ("proxy", "length", "kl"):
            assert other["row"][key] == pytest.approx(a["row"][key], abs=1e-6)
        # after the update (a policy step and a critic step), the same policy and critic weights
        for wa, wb in zip(a["weights"], other["weights"], strict=True):
            torch.testing.assert_close(wb, wa, rtol=0, atol=1e-4)


def _launch_config(config: str, n: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``accelerate launch --config_file configs/accelerate/<config>`` with ``n`` CPU processes."""
    env = {**os.environ, "RL4LLM_QUIET": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [str(ACCELERATE), "launch", "--config_file", str(ROOT / "configs" / "accelerate" / config)]
    cmd += ["--num_processes", str(n), "--main_process_port", str(_free_port()), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _one_two_and_fsdp(worker: str, tmp_path: Path) -> tuple[dict, dict, dict]:
    """Run ``tests/<worker>`` as one plain process, as 2 gloo processes summing their gradients, and as 2
    processes under the FSDP config (sharded policy); the three saved results."""
    script = ROOT / "tests" / worker
    env = {**os.environ, "RL4LLM_QUIET": "1", "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = _launch_config("multi-cpu.yaml", 2, str(script), str(tmp_path / "two.pt"), cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    fsdp = _launch_config("fsdp.yaml", 2, str(script), str(tmp_path / "fsdp.pt"), cwd=tmp_path)
    assert fsdp.returncode == 0, fsdp.stderr[-3000:]
    return tuple(torch.load(tmp_path / f"{k}.pt") for k in ("one", "two", "fsdp"))


def _assert_same_gradient(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b) > 0
    assert max(float(g.abs().max()) for g in a) > 1e-3  # a real gradient, not zeros
    for ga, gb in zip(a, b, strict=True):
        assert ga.shape == gb.shape  # whole tensors (FSDP shards gathered)
        torch.testing.assert_close(gb, ga, rtol=0, atol=1e-5)


def test_dpo_two_processes_step_with_the_one_process_gradient(tmp_path):
    """One DPO step on 8 pairs: the book's default path (no runtime) vs 2 gloo processes scoring 4 pairs each,
    with rl4llm's all-reduce and with the policy sharded by FSDP."""
    a, b, c = _one_two_and_fsdp("_dpo_grad_worker.py", tmp_path)
    assert (a["world_size"], b["world_size"], c["world_size"]) == (1, 2, 2)
    assert (b["engine"], c["engine"]) == ("allreduce", "fsdp")
    for other in (b, c):
        _assert_same_gradient(a["grads"], other["grads"])
        # the logged loss, implicit-reward accuracy and margin are those of all 8 pairs, for both steps
        for la, lb in zip(a["log"], other["log"], strict=True):
            assert lb == pytest.approx(la, abs=1e-5)
        for wa, wb in zip(a["weights"], other["weights"], strict=True):  # two Adam steps later, the same weights
            torch.testing.assert_close(wb, wa, rtol=0, atol=1e-4)


@pytest.mark.slow  # a plain run and two 2-process launches, three GRPO updates each
def test_grpo_two_processes_step_with_the_one_process_gradient(tmp_path):
    """One GRPO update per loss aggregation (GRPO: mean over sequences; Dr. GRPO: token sum over a fixed width;
    RLOO: mean over tokens) on chapter 7's checkpoint: 2 rollout shards of whole groups in 1 process vs 2
    processes (all-reduce, and FSDP with the weights gathered for sampling)."""
    a, b, c = _one_two_and_fsdp("_grpo_grad_worker.py", tmp_path)
    assert (a["world_size"], b["world_size"], c["world_size"]) == (1, 2, 2)
    assert (b["engine"], c["engine"]) == ("allreduce", "fsdp")
    for other in (b, c):
        assert set(a["methods"]) == set(other["methods"]) == {"grpo", "dr-grpo", "rloo"}
        for method, ra in a["methods"].items():
            rb = other["methods"][method]
            _assert_same_gradient(ra["grads"], rb["grads"])
            for key in ("reward", "zero_adv_frac", "length", "loss"):  # statistics of the global batch
                assert rb["row"][key] == pytest.approx(ra["row"][key], abs=1e-6), (method, key)


@pytest.mark.slow  # a plain run and one 2-process launch
def test_grpo_under_the_zero2_like_fsdp_config_steps_with_the_one_process_gradient(tmp_path):
    """``fsdp-zero2.yaml`` (gradients and Adam moments sharded, weights kept gathered from forward to backward,
    ZeRO-2's partitioning): the launcher's setting reaches the runtime, and the GRPO update is the one-process
    update."""
    script = ROOT / "tests" / "_grpo_grad_worker.py"
    env = {**os.environ, "RL4LLM_QUIET": "1", "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one.pt")], cwd=tmp_path, env=env, capture_output=True, timeout=600
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = _launch_config("fsdp-zero2.yaml", 2, str(script), str(tmp_path / "two.pt"), cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"{k}.pt") for k in ("one", "two"))
    assert (b["world_size"], b["engine"], b["reshard_after_forward"]) == (2, "fsdp", False)
    assert a["reshard_after_forward"] is True  # the default of a runtime without FSDP settings
    for method, ra in a["methods"].items():
        _assert_same_gradient(ra["grads"], b["methods"][method]["grads"])


def test_engine_follows_the_accelerate_config(monkeypatch):
    """FSDP config -> the sharded engine; DeepSpeed -> a clear error; a hand-made gradient sum refuses FSDP."""
    from rl4llm.distributed import launcher_engine

    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert launcher_engine() == "allreduce"
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert launcher_engine() == "fsdp"
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    with pytest.raises(ValueError, match="DeepSpeed .ZeRO stage 3"):
        launcher_engine()
    rt = Runtime(torch.device("cpu"), rank=0, world_size=2, shards=2, engine="fsdp")
    assert rt.sharded
    with pytest.raises(ValueError, match="engine 'fsdp' reduces the gradients itself"):
        rt.sum_gradients([torch.nn.Parameter(torch.ones(2))])
    with pytest.raises(ValueError, match="engine"):
        Runtime(torch.device("cpu"), engine="zero")
    alone = Runtime(torch.device("cpu"), engine="fsdp")  # one process: nothing to shard
    model = torch.nn.Linear(2, 2)
    assert not alone.sharded and alone.prepare(model) is model


def test_grpo_loss_shares_sum_to_one_over_ranks():
    """Two ranks' shares under each aggregation, by hand: rows 2 and 1, tokens 5 and 1, widths 3 and 2."""
    from rl4llm.rlvr.grpo import loss_share

    class TwoRanks:  # rank 0's view of two ranks; the other rank's numbers are fixed
        shards = world_size = 2
        other = {"rows": 1.0, "tokens": 1.0, "width": 2.0}

        def token_share(self, n):
            n = float(n)
            return n / (n + (self.other["tokens"] if n == 5.0 else self.other["rows"]))

        def max(self, t):
            return torch.maximum(t, torch.tensor(self.other["width"], dtype=t.dtype))

    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # 2 rows, 5 tokens, width 3
    rt = TwoRanks()
    assert loss_share("token-mean", mask, rt) == pytest.approx(5 / 6)
    assert loss_share("seq-mean-token-mean", mask, rt) == pytest.approx(2 / 3)
    # token sum / (B_r T_r) weighted to token sum / (B T_max): (2 * 3) / (3 * 3)
    assert loss_share("seq-mean-token-sum-norm", mask, rt) == pytest.approx(6 / 9)
    with pytest.raises(ValueError, match="loss_agg"):
        loss_share("sum", mask, rt)


def test_cat_completions_keeps_log_probs():
    """Two shards re-padded into one batch: each row's completion log-probs are unchanged."""
    from rl4llm.rlvr.evaluation import completion_logprobs, sample_completions
    from rl4llm.rlvr.grpo import cat_completions
    from rl4llm.rlvr.pretrain import load_reasoning_lm
    from rl4llm.rlvr.task import train_problems

    model, tok = load_reasoning_lm()
    problems = train_problems(4, np.random.default_rng(0))
    parts = [
        sample_completions(model, tok, problems[:2], generator=torch.Generator().manual_seed(1), max_new_tokens=6),
        sample_completions(model, tok, problems[2:], generator=torch.Generator().manual_seed(2), max_new_tokens=30),
    ]
    both = cat_completions(parts, tok.pad_token_id)
    assert both.texts == parts[0].texts + parts[1].texts
    with torch.no_grad():
        whole = completion_logprobs(model, both)
        for i, part in enumerate(parts):
            lp = completion_logprobs(model, part)
            rows = whole[2 * i : 2 * i + 2, : lp.shape[1]]
            torch.testing.assert_close(rows, lp, rtol=0, atol=1e-5)
            assert float(whole[2 * i : 2 * i + 2, lp.shape[1] :].abs().sum()) == 0.0


@pytest.mark.slow
def test_accelerate_launch_rlhf_writes_one_metrics_json(tmp_path):
    out = tmp_path / "run"
    res = _launch(
        2,
        "-m",
        "rl4llm.cli",
        "run",
        "rlhf",
        "--out",
        str(out),
        "--n-pairs",
        "40",
        "--heldout-pairs",
        "10",
        "--rm-steps",
        "2",
        "--iterations",
        "2",
        "--batch-size",
        "8",
        "--n-minibatches",
        "2",
        "--eval-every",
        "2",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("wrote ") == 1  # rank 0 alone writes and reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sft_gold_reward"] == pytest.approx(0.0, abs=1e-12)
    assert {"rlhf_gold_reward", "kl", "rm_accuracy"} <= set(metrics)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "curves.csv", "figure.png", "metrics.json"]


@pytest.mark.parametrize("name", ["rlhf", "dpo", "overoptimization", "helpful-harmless"])
def test_language_model_experiments_take_model_and_device(name):
    from rl4llm.config import ConfigError
    from rl4llm.experiments import config_from_overrides
    from rl4llm.rlhf.stages import stages_config_from

    config = config_from_overrides(name)
    assert (config.model, config.device) == ("tiny", "cpu")  # the book's default path
    with pytest.raises(ConfigError) as err:
        config_from_overrides(name, device="tpu")
    assert err.value.field == "device"
    with pytest.raises(ValueError, match="model"):
        config_from_overrides(name, model="")
    assert stages_config_from(config_from_overrides(name, model="gpt2")).model == "gpt2"


def test_ppo_rlhf_runs_under_bf16_autocast_on_cpu():
    import copy

    from rl4llm.lm import load_tiny_gpt2
    from rl4llm.rlhf.ppo import PPORLHFConfig, train_ppo_rlhf
    from rl4llm.rlhf.reward_model import RewardModel, ValueModel
    from rl4llm.rlhf.rollout import special_ids
    from rl4llm.rlhf.stages import gold_of

    policy, tok = load_tiny_gpt2()
    policy.requires_grad_(True)
    ref = copy.deepcopy(policy)
    critic = ValueModel.from_reward_model(RewardModel.from_lm(policy))
    before = [p.detach().clone() for p in policy.parameters()]
    config = PPORLHFConfig(iterations=1, batch_size=8, n_minibatches=2, n_epochs=1, max_new_tokens=10)
    bos, eos, pad = special_ids(tok)
    rt = Runtime(torch.device("cpu"), mixed_precision="bf16")
    history = train_ppo_rlhf(
        policy,
        ref,
        critic,
        lambda b: torch.as_tensor(gold_of(tok, b), dtype=torch.float32),
        config,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        runtime=rt,
    )
    row = history.rows[0]
    assert all(np.isfinite(v) for v in row.values())
    assert all(p.dtype == torch.float32 for p in policy.parameters())  # autocast: float32 weights, bf16 compute
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_whitening_with_summed_statistics_is_whitening_of_the_global_batch():
    """Two ranks holding the same rows: summing the statistics over them (``total`` doubles each sum) must whiten
    as the one-process whitening of both ranks' rows together."""
    from rl4llm.rl import masked_whiten

    x = torch.tensor([[1.0, -2.0, 4.0], [0.5, 3.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    both = masked_whiten(torch.cat([x, x]), torch.cat([mask, mask]))
    torch.testing.assert_close(masked_whiten(x, mask, total=lambda t: 2 * t), both[:2])
    with pytest.raises(ValueError, match="total"):
        masked_whiten(x, mask, total=3)


@pytest.mark.slow
def test_accelerate_launch_dpo_writes_one_metrics_json(tmp_path):
    out = tmp_path / "run"
    args = ["--steps", "2", "--eval-every", "2", "--batch-size", "8", "--n-pairs", "40", "--heldout-pairs", "10"]
    res = _launch_config("multi-cpu.yaml", 2, "-m", "rl4llm.cli", "run", "dpo", "--out", str(out), *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("wrote ") == 1  # rank 0 alone writes and reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sft_gold_reward"] == pytest.approx(0.0, abs=1e-12)
    assert {"dpo_gold_reward", "kl", "heldout_implicit_accuracy"} <= set(metrics)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "curves.csv", "figure.png", "metrics.json"]


@pytest.mark.slow
def test_accelerate_launch_grpo_fsdp_on_a_bpe_gpt2_writes_one_metrics_json(tmp_path):
    """Chapter 7's GRPO under the FSDP config, on a locally saved random GPT-2 with a BPE tokenizer."""
    from rl4llm.lm.policies import save_random_gpt2

    folder = save_random_gpt2(tmp_path / "gpt2", n_layer=2, n_embd=32, n_head=2, n_positions=128)
    out = tmp_path / "run"
    args = ["--model", str(folder), "--iterations", "2", "--group-size", "2", "--prompts-per-iter", "2"]
    args += ["--n-minibatches", "1", "--eval-problems", "4", "--eval-samples", "1", "--eval-every", "2"]
    res = _launch_config("fsdp.yaml", 2, "-m", "rl4llm.cli", "run", "grpo", "--out", str(out), *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("wrote ") == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["completion_tokens"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "curves.csv", "figure.png", "metrics.json"]


@pytest.mark.slow
def test_accelerate_launch_rlhf_under_fsdp_writes_one_metrics_json(tmp_path):
    """The whole ``rlhf`` experiment under the FSDP config: policy and critic sharded over 2 processes, the
    evaluations on the gathered weights, one set of files written by rank 0."""
    out = tmp_path / "run"
    args = ["--n-pairs", "40", "--heldout-pairs", "10", "--rm-steps", "2", "--iterations", "2", "--batch-size", "8"]
    args += ["--n-minibatches", "2", "--eval-every", "1"]
    res = _launch_config("fsdp.yaml", 2, "-m", "rl4llm.cli", "run", "rlhf", "--out", str(out), *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("wrote ") == 1  # rank 0 alone writes and reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sft_gold_reward"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["kl"] > 0  # the policy moved away from the SFT policy
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "curves.csv", "figure.png", "metrics.json"]
    curves = (out / "curves.csv").read_text().splitlines()
    assert len(curves) == 1 + 3  # header, then the SFT row and both iterations


def test_ppo_rlhf_under_fsdp_needs_sharded_models():
    """A sharded runtime with an unsharded policy would leave each rank with its share of the gradient only."""
    import copy

    from rl4llm.lm import load_tiny_gpt2
    from rl4llm.rlhf.ppo import PPORLHFConfig, train_ppo_rlhf
    from rl4llm.rlhf.reward_model import RewardModel, ValueModel

    policy, _ = load_tiny_gpt2()
    critic = ValueModel.from_reward_model(RewardModel.from_lm(policy))
    rt = Runtime(torch.device("cpu"), rank=0, world_size=2, shards=2, engine="fsdp")
    config = PPORLHFConfig(iterations=1, batch_size=8)
    with pytest.raises(ValueError, match="policy must be sharded by runtime.prepare"):
        train_ppo_rlhf(
            policy, copy.deepcopy(policy), critic, lambda b: b, config, bos_id=0, eos_id=1, pad_id=2, runtime=rt
        )


@pytest.mark.parametrize(
    "name",
    [
        "rlhf",
        "dpo",
        "overoptimization",
        "helpful-harmless",
        "grpo",
        "rlvr",
        "pass-at-k",
        "verifier-hacking",
        "length-bias",
    ],
)
def test_cuda_without_a_gpu_is_a_config_error_naming_device(name, monkeypatch):
    """``--device cuda`` on a machine without a GPU stops at the config (one line from the CLI, exit code 2),
    before any stage trains; ``auto`` falls back to the CPU."""
    from rl4llm.config import ConfigError
    from rl4llm.experiments import config_from_overrides

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no GPU is visible") as err:
        config_from_overrides(name, device="cuda")
    assert err.value.field == "device"
    assert config_from_overrides(name, device="auto").device == "auto"
    assert resolve_device("auto") == torch.device("cpu")
