"""``pass-at-k``: pass@k for k = 1 .. 64 on held-out problems, before (SFT) and after GRPO.

RL with a verifier sharpens the policy's distribution onto chains it could already sample: pass@1 rises, while at
large k the SFT policy, which spreads its samples more widely, catches up (Yue et al. 2025). The GRPO policy is the
``rlvr`` experiment's GRPO run for ``seed`` (same cache); both policies draw ``n_samples`` completions of each of
``n_problems`` held-out problems and pass@k is the unbiased estimator of Chen et al. (2021).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from rl4llm import cache
from rl4llm.config import param, validate
from rl4llm.distributed import DEVICE_HELP, DEVICES, PRECISION_HELP, PRECISIONS, check_device_field
from rl4llm.experiments import Result
from rl4llm.lm.policies import REASONING_MODEL_HELP, check_model_name
from rl4llm.rlvr.analysis import one_process_runtime, sft_evaluation, sft_model, train_method, where_key, where_of
from rl4llm.rlvr.evaluation import evaluate_pass_at_k
from rl4llm.rlvr.plots import plot_pass_at_k
from rl4llm.utils import set_torch_threads

NAME = "pass-at-k"
SUMMARY = "pass@k (k = 1..64) of the SFT policy and of GRPO on held-out problems: what sharpening changes"


@dataclass
class Config:
    """Defaults are what the book runs (the GRPO run is the ``rlvr`` experiment's, seed ``seed``)."""

    n_problems: int = param(100, low=1, high=3000, help="held-out problems")
    n_samples: int = param(64, low=1, help="samples per problem (the largest k)")
    iterations: int = param(40, low=1, help="GRPO iterations (as in rlvr)")
    group_size: int = param(8, low=2, help="GRPO group size (as in rlvr)")
    prompts_per_iter: int = param(8, low=1, help="GRPO prompts per iteration (as in rlvr)")
    lr: float = param(3e-4, low=0.0, low_inclusive=False, help="GRPO learning rate (as in rlvr)")
    seed: int = param(0, low=0, help="seed of the GRPO run")
    # where and at what scale (appendix "Scaling up"); the defaults are the book's path
    model: str = param("reasoning", help=REASONING_MODEL_HELP)
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        check_model_name(self.model)


def _grpo_evaluation(config: Config, ks: tuple[int, ...]) -> dict:
    """pass@k of the GRPO policy, cached on disk (the sampling costs more than the rest of the page)."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("model", "device", "mixed_precision")}
    description = {"what": "grpo-pass-at-k", **fields, **where_key(**where_of(config))}
    key = cache.cache_key(description, ["rl4llm.experiments.pass_at_k"])
    path = cache.cache_dir("rlvr", f"grpo-pass-at-k-{key}.pt")
    got = cache.load(path)
    if got is None:
        out = train_method(
            "grpo",
            config.seed,
            iterations=config.iterations,
            group_size=config.group_size,
            prompts_per_iter=config.prompts_per_iter,
            lr=config.lr,
            **where_of(config),
        )
        policy, tok = sft_model(config.model)
        policy.load_state_dict(out["state_dict"])
        runtime = one_process_runtime(config.device, config.mixed_precision)
        policy = policy if runtime is None else policy.to(runtime.device)
        got = evaluate_pass_at_k(policy, tok, n_problems=config.n_problems, n_samples=config.n_samples, ks=ks, seed=1)
        got["correct"] = got["correct"].tolist()
        cache.save(path, got)
    got["correct"] = np.asarray(got["correct"])
    return got


def run(config: Config) -> Result:
    set_torch_threads(1)
    t0 = time.perf_counter()
    ks = tuple(range(1, config.n_samples + 1))
    sft = sft_evaluation(n_problems=config.n_problems, n_samples=config.n_samples, **where_of(config))
    grpo = _grpo_evaluation(config, ks)
    sft_k = {int(k): float(v) for k, v in sft["pass_at_k"].items()}
    grpo_k = {int(k): float(v) for k, v in grpo["pass_at_k"].items()}
    solved_sft = sum(c > 0 for c in sft["correct"])
    solved_grpo = int((grpo["correct"] > 0).sum())
    crossing = next((k for k in ks if sft_k[k] >= grpo_k[k]), None)
    metrics = {
        "pass_at_k_sft": sft_k,
        "pass_at_k_grpo": grpo_k,
        "pass_at_1_sft": sft_k[1],
        "pass_at_1_grpo": grpo_k[1],
        f"pass_at_{config.n_samples}_sft": sft_k[config.n_samples],
        f"pass_at_{config.n_samples}_grpo": grpo_k[config.n_samples],
        "unsolved_sft": config.n_problems - solved_sft,
        "unsolved_grpo": config.n_problems - solved_grpo,
        "crossing_k": crossing if crossing is not None else -1,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    curves = [{"k": k, "pass_at_k_sft": sft_k[k], "pass_at_k_grpo": grpo_k[k]} for k in ks]
    result = Result(metrics=metrics, curves=curves)
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):  # noqa: ARG001 - the experiment contract
    """pass@k against k for SFT and GRPO, and their difference."""
    return plot_pass_at_k({"SFT": result.metrics["pass_at_k_sft"], "GRPO": result.metrics["pass_at_k_grpo"]})
