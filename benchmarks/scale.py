"""Scale benchmark: tokens per second and peak memory of PPO-RLHF on a GPT-2, for 1 and N processes.

    python benchmarks/scale.py                          # GPT-2 124M configuration, chapter 5's PPO settings
    python benchmarks/scale.py --reduced --processes 1 2 --out scale.json     # the CPU-sized run (tested)

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
* ``wall_s``: wall time of the training loop (model loading excluded).

GRPO (chapter 7's ``rl4llm.rlvr``) and TRL's ``GRPOTrainer`` are measured when importable and reported as skipped
otherwise. The table goes to stdout and everything to ``--out`` (JSON). Timings on a shared machine vary with its
load: compare rows of one run only.
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
)
#: Keys of the JSON's "ppo" entry: the PPORLHFConfig fields the setting fixes.
PPO_KEYS = ("batch_size", "n_minibatches", "n_epochs", "max_new_tokens")
#: Top-level keys of the JSON.
TOP_KEYS = ("setting", "model_config", "ppo", "runs", "skipped", "machine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(args: argparse.Namespace) -> None:
    """One measurement (run by every process); rank 0 writes the run's JSON row to ``args.row_out``."""
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
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    gpu_mb = torch.cuda.max_memory_allocated(runtime.device) / 2**20 if runtime.device.type == "cuda" else 0.0
    total_rss = float(runtime.sum(torch.tensor(rss_mb, dtype=torch.float64, device=runtime.device)))
    if runtime.distributed:
        peak = torch.tensor(gpu_mb, dtype=torch.float64, device=runtime.device)
        torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
        gpu_mb = float(peak)
    if runtime.is_main:
        row = {
            "trainer": "ppo-rlhf",
            "processes": runtime.world_size,
            "device": runtime.device.type,
            "mixed_precision": args.mixed_precision,
            "iterations": config.iterations,
            "batch_size": config.batch_size,
            "tokens": round(tokens),
            "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1),
            "peak_rss_mb": round(total_rss, 1),
            "peak_gpu_mb": round(gpu_mb, 1),
            "parameters": count_parameters(policy),
        }
        Path(args.row_out).write_text(json.dumps(row))


def _measure(folder: Path, processes: int, args: argparse.Namespace, tmp: Path) -> dict:
    row_out = tmp / f"row-{processes}.json"
    inner = [
        str(Path(__file__).resolve()),
        "--worker",
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
        cmd = [
            str(accelerate),
            "launch",
            "--multi_gpu",
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
        raise RuntimeError(f"{processes}-process run failed:\n{res.stderr[-4000:]}")
    return json.loads(row_out.read_text())


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
    parser.add_argument("--iterations", type=int, default=None, help="PPO iterations per measurement")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    # worker-only flags
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--setting", default="full", help=argparse.SUPPRESS)
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

    runs, skipped = [], {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = save_random_gpt2(tmp / "gpt2", build_bpe_tokenizer(), **setting["model"])
        model_config = json.loads((folder / "config.json").read_text())
        for n in processes:
            runs.append(_measure(folder, n, args, tmp))
    if importlib.util.find_spec("rl4llm.rlvr") is None:
        skipped["grpo"] = "rl4llm.rlvr (chapter 7's GRPO trainer) is not in this checkout"
    if importlib.util.find_spec("trl") is None:
        skipped["trl-grpo"] = "trl is not installed (pip install trl; it needs a GPU for GRPO)"
    result = {
        "setting": args.setting,
        "model_config": {k: model_config[k] for k in ("n_layer", "n_embd", "n_head", "vocab_size", "n_positions")},
        "ppo": {k: setting[k] for k in PPO_KEYS},
        "runs": runs,
        "skipped": skipped,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if n_gpus else None,
        },
    }
    header = f"{'trainer':<10}{'procs':>6}{'device':>8}{'tokens':>9}{'wall s':>9}{'tokens/s':>10}{'RSS MB':>9}"
    print(
        f"PPO-RLHF on GPT-2 ({result['model_config']['n_layer']} layers, width "
        f"{result['model_config']['n_embd']}, {runs[0]['parameters']:,} parameters), setting {args.setting}"
    )
    print(header)
    for r in runs:
        print(
            f"{r['trainer']:<10}{r['processes']:>6}{r['device']:>8}{r['tokens']:>9}{r['wall_s']:>9.2f}"
            f"{r['tokens_per_s']:>10.1f}{r['peak_rss_mb']:>9.0f}"
        )
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
