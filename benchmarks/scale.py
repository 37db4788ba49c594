"""Scale benchmark: tokens per second and peak memory of PPO-RLHF and GRPO on a GPT-2, for 1 and N processes.

    python benchmarks/scale.py                          # GPT-2 124M configuration, chapters 5 and 7's settings
    python benchmarks/scale.py --reduced --processes 1 2 --out scale.json     # the CPU-sized run (tested)
    python benchmarks/scale.py --reduced --trainers grpo trl-grpo              # some arms only
    python benchmarks/scale.py --trainers trl-grpo --accelerate-config configs/accelerate/zero2.yaml   # GPUs
    python benchmarks/scale.py --reduced --device cpu --processes 1 2 --accelerate-config \
        configs/accelerate/multi-cpu.yaml configs/accelerate/zero2.yaml configs/accelerate/zero3.yaml   # the book's

The policy is a randomly initialised GPT-2 of the 124M configuration (``transformers.GPT2Config()``, its 50,257-token
output layer included; no download, throughput does not depend on the weights; sampled ids beyond the local
tokenizer decode to nothing) with a byte-level BPE tokenizer trained on the review language
(:func:`rl4llm.lm.build_bpe_tokenizer`), saved to a temporary folder and loaded through ``--model FOLDER`` like a
real checkpoint. The reward is the exact gold reward of the decoded text. Each measurement runs
:func:`rl4llm.rlhf.ppo.train_ppo_rlhf` for ``--iterations`` iterations of ``--batch-size`` rollouts (the global
batch, split over the processes) under ``accelerate launch`` (for N > 1) and reports

* ``tokens_per_s``: response tokens sampled and trained on per second of wall time, over all processes;
* ``peak_rss_mb``: peak resident memory summed over the processes (CPU), ``peak_gpu_mb``: peak allocated GPU memory
  of the busiest device (GPU runs);
* ``wall_s``: wall time of the training loop, from the first rollout to the last update (model loading and
  wrapping the model in its engine excluded: TRL's clock starts at its ``on_train_begin`` callback, after
  ``trainer.train()`` has built the engine, DeepSpeed's included);
* ``engine``: how the gradients were reduced: ``single`` (one process), ``allreduce`` (data parallelism),
  ``fsdp``, or ``deepspeed-zero2`` / ``deepspeed-zero3`` (the stage DeepSpeed's engine reports);
* ``config``: the Accelerate config file's name without ``.yaml`` (``None``: one process, or ``--multi_gpu``
  without a file);
* ``adam_state_per_process``: elements of the policy's Adam first-moment buffer held by the busiest process (the
  second moment is as large): every parameter under data parallelism, about ``1/N`` of them under FSDP (both
  configs) and ZeRO-2 / ZeRO-3. For ``trl-grpo`` it is read from the PyTorch optimiser under Accelerate's and
  DeepSpeed's wrappers; rl4llm's trainers build their Adam inside the training function, on the parameters the
  process holds (a shard under FSDP), so it is counted from those parameters, one moment entry per entry.

Each N-process measurement runs once per ``--accelerate-config`` file (plain data parallelism without one).
rl4llm's own trainers refuse DeepSpeed (:func:`rl4llm.distributed.launcher_engine`): a DeepSpeed config is
measured for ``trl-grpo`` only and the other arms are listed as skipped under it. DeepSpeed ZeRO runs on CPU
processes too (DeepSpeed's CPU accelerator, selected when no GPU is visible, and the PyTorch AdamW the trainer
creates, since the configs name no DeepSpeed optimiser); the first run on a machine compiles DeepSpeed's
shared-memory communication op (tens of seconds, before the timed loop).

Three arms (``--trainers``), each on the same GPT-2 folder:

* ``ppo-rlhf``: chapter 5's PPO on the review language (above);
* ``grpo``: chapter 7's :func:`rl4llm.rlvr.train_grpo` on the reasoning task at the chapter's settings (``G``
  completions of each of ``prompts_per_iter`` problems per iteration, two minibatches, the exact verifier), the
  prompts read through :class:`rl4llm.lm.policies.TaskTokenizer`;
* ``trl-grpo``: TRL's ``GRPOTrainer`` on the same problems, model folder and verifier (a Python reward function),
  configured to the same batch: ``num_generations = G``, a generation batch of all the iteration's completions
  split into the same number of optimiser steps (``steps_per_generation``), the same completion length, GRPO's
  sequence-mean loss, no KL term. Optional: ``pip install -r requirements-bench.txt``; without ``trl`` the arm is
  reported as skipped.

The table goes to stdout and everything to ``--out`` (JSON). Timings on a shared machine vary with its load:
compare rows of one run only.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The chapter's PPO settings (rl4llm.experiments.rlhf) and the reduced CPU setting.
SETTINGS = {
    "full": {
        "model": {"vocab_size": 50257},
        "batch_size": 64,
        "n_minibatches": 2,
        "n_epochs": 2,
        "max_new_tokens": 28,
        "iterations": 3,
    },
    "reduced": {
        "model": {"n_layer": 2, "n_embd": 128, "n_head": 4, "n_positions": 64},
        "batch_size": 16,
        "n_minibatches": 2,
        "n_epochs": 2,
        "max_new_tokens": 28,
        "iterations": 2,
    },
}
#: Keys of one measured run in the JSON (the book's appendix reads them).
RUN_KEYS = (
    "trainer",
    "processes",
    "device",
    "mixed_precision",
    "iterations",
    "batch_size",
    "tokens",
    "wall_s",
    "tokens_per_s",
    "peak_rss_mb",
    "peak_gpu_mb",
    "parameters",
    "engine",
    "config",
    "adam_state_per_process",
)
#: Keys of the JSON's "ppo" entry: the PPORLHFConfig fields the setting fixes.
PPO_KEYS = ("batch_size", "n_minibatches", "n_epochs", "max_new_tokens")
#: Chapter 7's GRPO settings (rl4llm.rlvr.GRPOConfig defaults) and the reduced CPU setting (the same 16
#: completions per iteration as the reduced PPO batch); the JSON's "grpo" entry.
GRPO_SETTINGS = {
    "full": {"group_size": 8, "prompts_per_iter": 8, "n_minibatches": 2, "max_new_tokens": 32},
    "reduced": {"group_size": 4, "prompts_per_iter": 4, "n_minibatches": 2, "max_new_tokens": 32},
}
#: The arms, in the order they run.
TRAINERS = ("ppo-rlhf", "grpo", "trl-grpo")
#: Top-level keys of the JSON.
TOP_KEYS = ("setting", "model_config", "ppo", "grpo", "runs", "skipped", "machine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peaks(runtime_sum, device) -> tuple[float, float]:
    """Peak resident memory summed over the processes (MB) and the busiest GPU's peak allocation (MB)."""
    import torch

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    gpu_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
    total_rss = float(runtime_sum(torch.tensor(rss_mb, dtype=torch.float64, device=device)))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        peak = torch.tensor(gpu_mb, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
        gpu_mb = float(peak)
    return total_rss, gpu_mb


def _row(trainer, processes, device, args, iterations, batch, tokens, wall, rss, gpu, parameters, engine, adam) -> dict:
    return {
        "trainer": trainer,
        "processes": processes,
        "device": device,
        "mixed_precision": args.mixed_precision,
        "iterations": iterations,
        "batch_size": batch,
        "tokens": round(tokens),
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        "peak_rss_mb": round(rss, 1),
        "peak_gpu_mb": round(gpu, 1),
        "parameters": parameters,
        "engine": engine,
        "adam_state_per_process": adam,
    }


def _held_adam_state(model, runtime) -> int:
    """Entries of Adam's first moment for ``model`` in the busiest process: one per parameter entry this process
    holds (its local shard under FSDP, every entry otherwise), the maximum over the processes."""
    import torch

    held = sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in model.parameters() if p.requires_grad)
    return round(float(runtime.max(torch.tensor(float(held), dtype=torch.float64))))


def _runtime_engine(runtime) -> str:
    """The engine name of an rl4llm runtime (``None``: the default one-process path)."""
    return runtime.engine if runtime is not None and runtime.distributed else "single"


def _accelerate_engine(accelerator) -> str:
    """The engine name of an Accelerate run; under DeepSpeed the ZeRO stage its engine reports."""
    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    if kind == DistributedType.DEEPSPEED:
        return f"deepspeed-zero{accelerator.deepspeed_engine_wrapped.engine.zero_optimization_stage()}"
    if kind == DistributedType.FSDP:
        return "fsdp"
    return "allreduce" if accelerator.num_processes > 1 else "single"


def _distributed_type(config: str | None) -> str:
    """An Accelerate config file's ``distributed_type`` (``""`` without a file)."""
    if config is None:
        return ""
    import yaml

    return str(yaml.safe_load(Path(config).read_text()).get("distributed_type", "")).upper()


def _is_deepspeed(config: str | None) -> bool:
    """Whether an Accelerate config file asks for DeepSpeed (``distributed_type: DEEPSPEED``)."""
    return _distributed_type(config) == "DEEPSPEED"


def worker(args: argparse.Namespace) -> None:
    """One measurement (run by every process); rank 0 writes the run's JSON row to ``args.row_out``."""
    {"ppo-rlhf": ppo_worker, "grpo": grpo_worker, "trl-grpo": trl_worker}[args.trainer](args)


def grpo_worker(args: argparse.Namespace) -> None:
    """Chapter 7's GRPO trainer on the reasoning task, the global groups split over the processes."""
    import torch

    from rl4llm.distributed import make_runtime
    from rl4llm.lm.model import count_parameters
    from rl4llm.lm.policies import resolve_reasoning_policy
    from rl4llm.rlvr.grpo import GRPOConfig, train_grpo
    from rl4llm.utils import set_torch_threads

    set_torch_threads(1)
    g = GRPO_SETTINGS[args.setting]
    runtime = make_runtime(args.device, args.mixed_precision, shards=args.processes[0])
    policy, tok = resolve_reasoning_policy(args.model)
    policy = runtime.prepare(policy.requires_grad_(True).to(runtime.device))
    config = GRPOConfig.for_method("grpo", iterations=args.iterations, lr=1e-5, seed=0, **g)
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    runtime.barrier()
    t0 = time.perf_counter()
    history = train_grpo(policy, None, tok, config, runtime=runtime)
    runtime.barrier()
    wall = time.perf_counter() - t0
    n = config.group_size * config.prompts_per_iter
    tokens = sum(r["length"] for r in history.rows) * n  # the global batch's completion tokens, all iterations
    rss, gpu = _peaks(runtime.sum, runtime.device)
    adam = _held_adam_state(policy, runtime)
    if runtime.is_main:
        row = _row(
            "grpo",
            runtime.world_size,
            runtime.device.type,
            args,
            config.iterations,
            n,
            tokens,
            wall,
            rss,
            gpu,
            count_parameters(policy),
            _runtime_engine(runtime),
            adam,
        )
        Path(args.row_out).write_text(json.dumps(row))


def trl_worker(args: argparse.Namespace) -> None:
    """TRL's GRPOTrainer on the same problems, model folder, verifier and batch (see the module docstring)."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rl4llm.lm.model import count_parameters, quiet_loading
    from rl4llm.prompting.task import Query
    from rl4llm.rlvr.task import exact_verifier, prompt_text, train_problems
    from rl4llm.utils import set_torch_threads

    set_torch_threads(1)
    g = GRPO_SETTINGS[args.setting]
    n = g["group_size"] * g["prompts_per_iter"]
    processes = args.processes[0]
    if n % (g["n_minibatches"] * processes):
        raise ValueError(f"processes must divide the {n} completions of a minibatch step, got {processes}")
    problems = train_problems(g["prompts_per_iter"] * args.iterations * 4, np.random.default_rng(0))
    data = Dataset.from_list([{"prompt": prompt_text(q), "a": q.a, "b": q.b, "op": q.op} for q in problems])
    counted = [0]

    def verifier(completions, a, b, op, completion_ids=None, **_):  # the exact verifier, on decoded text
        counted[0] += sum(len(c) for c in completion_ids)
        return [exact_verifier(Query(int(x), int(y), o), c) for c, x, y, o in zip(completions, a, b, op, strict=True)]

    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(args.model)
    tok = AutoTokenizer.from_pretrained(args.model)
    config = GRPOConfig(
        output_dir=str(Path(args.row_out).with_suffix(".trl")),
        use_cpu=args.device == "cpu",
        bf16=args.mixed_precision == "bf16",
        per_device_train_batch_size=n // (g["n_minibatches"] * processes),
        steps_per_generation=g["n_minibatches"],
        num_generations=g["group_size"],
        max_completion_length=g["max_new_tokens"],
        max_steps=args.iterations * g["n_minibatches"],
        learning_rate=1e-5,
        beta=0.0,
        loss_type="grpo",
        scale_rewards="group",
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    start = []

    class Clock(TrainerCallback):  # the loop starts once the model is wrapped (DeepSpeed: its engine built)
        def on_train_begin(self, *_, **__):
            trainer.accelerator.wait_for_everyone()
            start.append(time.perf_counter())

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=verifier,
        args=config,
        train_dataset=data,
        processing_class=tok,
        callbacks=[Clock()],
    )
    device = trainer.accelerator.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer.train()
    trainer.accelerator.wait_for_everyone()
    wall = time.perf_counter() - start[0]

    def total(t: torch.Tensor) -> torch.Tensor:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            t = t.to(device)
            torch.distributed.all_reduce(t)
        return t

    tokens = float(total(torch.tensor(float(counted[0]), dtype=torch.float64)))
    rss, gpu = _peaks(total, device)
    optimizer = trainer.optimizer
    while hasattr(optimizer, "optimizer"):  # Accelerate's and DeepSpeed's wrappers around torch's AdamW
        optimizer = optimizer.optimizer
    held = sum(s["exp_avg"].numel() for s in optimizer.state.values() if "exp_avg" in s)
    adam = torch.tensor(float(held), dtype=torch.float64)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        adam = adam.to(device)
        torch.distributed.all_reduce(adam, op=torch.distributed.ReduceOp.MAX)
    if trainer.accelerator.is_main_process:
        row = _row(
            "trl-grpo",
            trainer.accelerator.num_processes,
            device.type,
            args,
            args.iterations,
            n,
            tokens,
            wall,
            rss,
            gpu,
            count_parameters(model),
            _accelerate_engine(trainer.accelerator),
            round(float(adam)),
        )
        Path(args.row_out).write_text(json.dumps(row))


def ppo_worker(args: argparse.Namespace) -> None:
    """Chapter 5's PPO-RLHF on the review language, the global batch split over the processes."""
    import torch

    from rl4llm.distributed import make_runtime
    from rl4llm.lm import resolve_policy
    from rl4llm.lm.model import count_parameters
    from rl4llm.rlhf.ppo import PPORLHFConfig, train_ppo_rlhf
    from rl4llm.rlhf.reward_model import RewardModel, ValueModel
    from rl4llm.rlhf.rollout import special_ids
    from rl4llm.rlhf.stages import gold_of
    from rl4llm.utils import set_torch_threads

    set_torch_threads(1)
    setting = SETTINGS[args.setting]
    runtime = make_runtime(args.device, args.mixed_precision, shards=args.processes[0])
    policy, tok = resolve_policy(args.model)
    for p in policy.parameters():
        p.requires_grad_(True)
    ref = copy.deepcopy(policy).requires_grad_(False)
    critic = ValueModel.from_reward_model(RewardModel.from_lm(policy))
    policy, ref, critic = policy.to(runtime.device), ref.to(runtime.device), critic.to(runtime.device)
    policy = runtime.prepare(policy)  # sharded in place under the FSDP engine, unchanged otherwise
    critic = runtime.prepare(critic, forward_methods=("values",))

    def gold(batch):  # the text path: decode, then the exact gold reward of the review language
        return torch.as_tensor(gold_of(tok, batch), dtype=torch.float32, device=runtime.device)

    config = PPORLHFConfig(
        iterations=args.iterations,
        batch_size=setting["batch_size"],
        n_minibatches=setting["n_minibatches"],
        n_epochs=setting["n_epochs"],
        max_new_tokens=setting["max_new_tokens"],
        lr=1e-5,
        critic_lr=1e-5,
        seed=0,
    )
    bos, eos, pad = special_ids(tok)
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    runtime.barrier()
    t0 = time.perf_counter()
    history = train_ppo_rlhf(policy, ref, critic, gold, config, bos_id=bos, eos_id=eos, pad_id=pad, runtime=runtime)
    runtime.barrier()
    wall = time.perf_counter() - t0
    tokens = sum(r["length"] for r in history.rows) * config.batch_size  # global batch, all iterations
    rss, gpu = _peaks(runtime.sum, runtime.device)
    adam = _held_adam_state(policy, runtime)  # the policy's (the critic has its own Adam)
    if runtime.is_main:
        row = _row(
            "ppo-rlhf",
            runtime.world_size,
            runtime.device.type,
            args,
            config.iterations,
            config.batch_size,
            tokens,
            wall,
            rss,
            gpu,
            count_parameters(policy),
            _runtime_engine(runtime),
            adam,
        )
        Path(args.row_out).write_text(json.dumps(row))


def _measure(
    folder: Path, trainer: str, processes: int, config: str | None, args: argparse.Namespace, tmp: Path
) -> dict:
    row_out = tmp / f"row-{trainer}-{processes}-{Path(config).stem if config else 'plain'}.json"
    inner = [
        str(Path(__file__).resolve()),
        "--worker",
        "--trainer",
        trainer,
        "--model",
        str(folder),
        "--setting",
        args.setting,
        "--device",
        args.device,
        "--mixed-precision",
        args.mixed_precision,
        "--iterations",
        str(args.iterations),
        "--processes",
        str(processes),
        "--row-out",
        str(row_out),
    ]
    env = {**os.environ, "RL4LLM_QUIET": "1", "OMP_NUM_THREADS": "1"}
    if processes == 1:
        cmd = [sys.executable, *inner]
    else:
        accelerate = Path(sys.executable).with_name("accelerate")
        if args.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        how = ["--config_file", config] if config else ["--multi_gpu"]
        cmd = [
            str(accelerate),
            "launch",
            *how,
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(_free_port()),
            *inner,
        ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{trainer}, {processes}-process run failed:\n{res.stderr[-4000:]}")
    row = json.loads(row_out.read_text())
    row["config"] = Path(config).stem if config else None  # fsdp.yaml and fsdp-zero2.yaml share the engine name
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="the CPU-sized setting (2-layer GPT-2, batch 16)")
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=None,
        help="process counts to measure (default: 1 and every visible GPU, or 1 2 on CPU)",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--mixed-precision", default="no", choices=("no", "bf16"))
    parser.add_argument("--iterations", type=int, default=None, help="iterations per measurement")
    parser.add_argument(
        "--trainers", nargs="+", default=list(TRAINERS), choices=TRAINERS, help="arms to measure (default: all)"
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument(
        "--accelerate-config",
        nargs="+",
        default=None,
        help="Accelerate config files of the N-process runs, each measured in turn (default: plain data "
        "parallelism, --multi_gpu); e.g. configs/accelerate/fsdp.yaml, or zero2.yaml / zero3.yaml (trl-grpo only)",
    )
    # worker-only flags
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--setting", default="full", help=argparse.SUPPRESS)
    parser.add_argument("--trainer", default="ppo-rlhf", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--row-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    import torch

    from rl4llm.lm import build_bpe_tokenizer, save_random_gpt2

    args.setting = "reduced" if args.reduced else "full"
    setting = SETTINGS[args.setting]
    args.iterations = args.iterations or setting["iterations"]
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    n_gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    processes = args.processes or sorted({1, max(n_gpus, 2 if args.device == "cpu" else 1)})
    if any(p < 1 for p in processes):
        parser.error("--processes must be positive")

    configs = args.accelerate_config or [None]
    runs, skipped = [], {}
    trainers = list(args.trainers)
    if "trl-grpo" in trainers and importlib.util.find_spec("trl") is None:
        skipped["trl-grpo"] = "trl is not installed (optional: pip install -r requirements-bench.txt)"
        trainers.remove("trl-grpo")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = save_random_gpt2(tmp / "gpt2", build_bpe_tokenizer(), **setting["model"])
        model_config = json.loads((folder / "config.json").read_text())
        for trainer in trainers:
            for n in processes:
                for config in configs if n > 1 else [None]:
                    if _is_deepspeed(config) and trainer != "trl-grpo":
                        skipped[f"{trainer} ({config})"] = (
                            "rl4llm's trainers step and clip their own optimisers, which DeepSpeed takes over "
                            "(rl4llm.distributed.launcher_engine)"
                        )
                    elif _distributed_type(config) == "FSDP" and trainer == "trl-grpo" and args.device == "cpu":
                        skipped[f"{trainer} ({config})"] = (
                            "Accelerate's FSDP path needs a GPU backend: on CPU it trains TRL's trainer with plain "
                            "data parallelism (rl4llm's trainers shard with FSDP2 themselves)"
                        )
                    elif _is_deepspeed(config) and importlib.util.find_spec("deepspeed") is None:
                        skipped[f"{trainer} ({config})"] = "deepspeed is not installed (see requirements-bench.txt)"
                    else:
                        runs.append(_measure(folder, trainer, n, config, args, tmp))
    result = {
        "setting": args.setting,
        "model_config": {k: model_config[k] for k in ("n_layer", "n_embd", "n_head", "vocab_size", "n_positions")},
        "ppo": {k: setting[k] for k in PPO_KEYS},
        "grpo": dict(GRPO_SETTINGS[args.setting]),
        "runs": runs,
        "skipped": skipped,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if n_gpus else None,
        },
    }
    header = (
        f"{'trainer':<10}{'procs':>6}{'device':>8}{'engine':>17}{'config':>12}{'tokens':>9}{'wall s':>9}{'tokens/s':>10}"
        f"{'RSS MB':>9}{'Adam/proc':>11}"
    )
    if not runs:
        print("nothing measured")
    print(
        f"GPT-2 of {result['model_config']['n_layer']} layers, width {result['model_config']['n_embd']} "
        f"({runs[0]['parameters'] if runs else 0:,} parameters), setting {args.setting}"
    )
    print(header)
    for r in runs:
        print(
            f"{r['trainer']:<10}{r['processes']:>6}{r['device']:>8}{r['engine']:>17}{r['config'] or '-':>12}"
            f"{r['tokens']:>9}{r['wall_s']:>9.2f}{r['tokens_per_s']:>10.1f}{r['peak_rss_mb']:>9.0f}"
            f"{r['adam_state_per_process']:>11,}"
        )
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
