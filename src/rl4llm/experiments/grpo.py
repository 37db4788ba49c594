"""``grpo``: one GRPO run on chapter 7's reasoning task, with any GPT-2, on any device, across processes.

The chapter's ``rlvr`` experiment compares the methods from the shipped checkpoint in one CPU process. This one is
the scaling path of the same trainer (:func:`rl4llm.rlvr.train_grpo`): ``--model`` picks the starting policy
(``reasoning``: the chapter's SFT checkpoint and character tokenizer; ``gpt2`` or a local folder: a BPE GPT-2 that
reads the same prompt texts through :class:`rl4llm.lm.policies.TaskTokenizer`), ``--device`` and
``--mixed-precision`` where it runs, and under ``accelerate launch`` the rollout groups are split over the
processes (:mod:`rl4llm.distributed`). Reported: held-out pass@1 before and after, the training reward, and the
throughput in sampled completion tokens per second of training.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass

import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.distributed import DEVICE_HELP, DEVICES, PRECISION_HELP, PRECISIONS, check_device_field, make_runtime
from rl4llm.experiments import Result
from rl4llm.lm.policies import REASONING_MODEL_HELP, check_model_name, resolve_reasoning_policy
from rl4llm.plotting import COLORS, label, new_figure
from rl4llm.rlvr.evaluation import evaluate_pass_at_k
from rl4llm.rlvr.grpo import METHODS, GRPOConfig, train_grpo
from rl4llm.utils import set_seed, set_torch_threads

NAME = "grpo"
SUMMARY = "GRPO on chapter 7's task with any GPT-2 (--model), device and number of processes: pass@1, tokens/s"


@dataclass
class Config:
    """Defaults are chapter 7's GRPO settings."""

    method: str = param("grpo", choices=tuple(METHODS), help="the variant: grpo, dr-grpo, rloo or reinforce")
    iterations: int = param(40, low=1, help="collect / update rounds")
    group_size: int = param(8, low=2, help="completions per prompt (G)")
    prompts_per_iter: int = param(8, low=1, help="prompts per iteration (split over the processes)")
    n_minibatches: int = param(2, low=1, help="minibatches per pass over an iteration's completions")
    lr: float = param(3e-4, low=0.0, low_inclusive=False, help="Adam learning rate")
    kl_coef: float = param(0.0, low=0.0, help="β of the k3 KL to the starting policy")
    eval_every: int = param(10, low=1, help="iterations between held-out pass@1 evaluations")
    eval_problems: int = param(200, low=1, high=3000, help="held-out problems per evaluation")
    eval_samples: int = param(4, low=1, help="samples per held-out problem")
    seed: int = param(0, low=0, help="seed of the problems, samples and minibatch order")
    model: str = param("reasoning", help=REASONING_MODEL_HELP)
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        check_model_name(self.model)
        self.grpo_config()  # its cross-field rules (minibatches divide the completions)

    def grpo_config(self) -> GRPOConfig:
        return GRPOConfig.for_method(
            self.method,
            iterations=self.iterations,
            group_size=self.group_size,
            prompts_per_iter=self.prompts_per_iter,
            n_minibatches=self.n_minibatches,
            lr=self.lr,
            kl_coef=self.kl_coef,
            seed=self.seed,
        )


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    t0 = time.perf_counter()
    runtime = make_runtime(config.device, config.mixed_precision)  # None: one CPU process, as the book runs
    device = torch.device("cpu") if runtime is None else runtime.device
    policy, tok = resolve_reasoning_policy(config.model)
    policy = policy.to(device)
    ref = copy.deepcopy(policy).requires_grad_(False) if config.kl_coef > 0 else None
    fresh = copy.deepcopy(policy) if runtime is not None and runtime.sharded else None
    policy = policy if runtime is None else runtime.prepare(policy)  # sharded in place under FSDP

    def evaluate(pol) -> float:  # on every process (the same samples): cheap next to training
        with contextlib.nullcontext() if runtime is None else runtime.gathered(pol):
            out = evaluate_pass_at_k(pol, tok, n_problems=config.eval_problems, n_samples=config.eval_samples, seed=1)
        return out["pass_at_k"][1]

    start = evaluate(policy)

    def callback(it: int, pol, wall: float) -> dict[str, float] | None:  # noqa: ARG001 - train_grpo's protocol
        if it % config.eval_every == 0 or it == config.iterations:
            return {"pass_at_1": evaluate(pol)}
        return None

    g = config.grpo_config()
    history = train_grpo(policy, ref, tok, g, callback=callback, runtime=runtime)
    if fresh is not None:  # an ordinary model again, from the gathered weights
        fresh.load_state_dict(runtime.full_state_dict(policy))
        policy = fresh
    rows = history.rows
    train_s = rows[-1]["wall_s"]
    tokens = float(np.sum(history.column("length"))) * g.group_size * g.prompts_per_iter
    metrics = {
        "pass_at_1_start": start,
        "pass_at_1_final": rows[-1]["pass_at_1"],
        "reward_first": rows[0]["reward"],
        "reward_last": float(np.mean(history.column("reward")[-5:])),
        "length_last": rows[-1]["length"],
        "completion_tokens": tokens,
        "tokens_per_s": tokens / train_s,
        "processes": 1 if runtime is None else runtime.world_size,
        "n_parameters": sum(p.numel() for p in policy.parameters()),
        "train_wall_s": train_s,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    curves = [{"iteration": 0, "pass_at_1": start}] + rows
    result = Result(metrics=metrics, curves=curves, artifacts={"policy": policy.cpu(), "tokenizer": tok})
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Training reward (verifier, per iteration) and held-out pass@1 against the iteration."""
    fig, ax = new_figure(width=5.4, height=3.4)
    rows = [r for r in result.curves if "reward" in r]
    ax.plot([r["iteration"] for r in rows], [r["reward"] for r in rows], color=COLORS[1], label="reward, training")
    ev = np.array(
        [(r["iteration"], r["pass_at_1"]) for r in result.curves if r.get("pass_at_1") not in (None, "")], dtype=float
    )
    ev = ev[~np.isnan(ev[:, 1])]
    ax.plot(ev[:, 0], ev[:, 1], "o-", ms=3, color=COLORS[0], label="pass@1, held-out")
    ax.set_ylim(0, 1.02)
    label(ax, "iteration", "reward / pass@1", f"{config.method}, model {config.model}")
    ax.legend(loc="lower right", fontsize=8)
    return fig
