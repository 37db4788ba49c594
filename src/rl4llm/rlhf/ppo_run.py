"""PPO-RLHF from the shared stages, measured as it trains: the third step of the InstructGPT pipeline.

:func:`run_ppo` starts the policy from the SFT model and the critic from the reward model
(:mod:`rl4llm.rlhf.stages`), trains with :func:`rl4llm.rlhf.ppo.train_ppo_rlhf` against the reward model with a
KL penalty towards the frozen SFT policy, and evaluates the policy on the gold reward every few iterations
(:func:`rl4llm.rlhf.evaluation.evaluate_against_gold`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from rl4llm.rlhf.evaluation import evaluate_against_gold
from rl4llm.rlhf.stages import Stages
from rl4llm.utils import check_positive_int

__all__ = ["PPORun", "run_ppo"]


@dataclass
class PPORun:
    """A PPO-RLHF run from the shared stages: the trained policy, its per-iteration history and evaluations.

    ``evals`` holds one row per evaluation (iteration 0 is the SFT policy): ``iteration`` and the keys of
    :func:`evaluate_against_gold`.
    """

    policy: torch.nn.Module
    history: Any
    evals: list[dict[str, float]]

    def curves(self) -> list[dict[str, float]]:
        """History rows merged with the evaluations, ``eval_*`` columns, one row per iteration (0 = SFT)."""
        by_it = {int(e["iteration"]): e for e in self.evals}
        rows = []
        first = by_it.get(0)
        if first is not None:
            rows.append({"iteration": 0, **{f"eval_{k}": v for k, v in first.items() if k != "iteration"}})
        for r in self.history.rows:
            row = dict(r)
            e = by_it.get(int(r["iteration"]))
            if e is not None:
                row.update({f"eval_{k}": v for k, v in e.items() if k != "iteration"})
            rows.append(row)
        return rows


def run_ppo(
    stages: Stages,
    config: Any,
    eval_every: int = 10,
    eval_n: int | None = None,
    reward_fn: Any = None,
    runtime: Any = None,
) -> PPORun:
    """KL-penalised PPO from the SFT policy against the stages' reward model (or ``reward_fn``).

    The reference is the frozen SFT policy and the critic starts from the reward model. Every ``eval_every``
    iterations (and at the start and the end) :func:`evaluate_against_gold` measures gold, proxy and KL on fresh
    samples. ``runtime`` (:func:`rl4llm.distributed.make_runtime`) trains on its device and across its processes;
    the evaluations stay on the CPU (every process draws the same evaluation samples from the same weights).
    Under the FSDP engine the policy and the critic are sharded (:meth:`~rl4llm.distributed.Runtime.prepare`),
    the evaluations read the gathered weights, and the returned policy is an ordinary model rebuilt from them.
    """
    from rl4llm.rlhf.ppo import train_ppo_rlhf

    eval_every = check_positive_int("eval_every", eval_every)
    policy, critic = stages.new_policy(), stages.new_critic()
    ref, proxy = stages.sft_model, reward_fn or stages.proxy
    on_cpu = runtime is None or runtime.device.type == "cpu"
    if not on_cpu:  # copies on the device: the stages (cached) stay on the CPU
        policy, critic = policy.to(runtime.device), critic.to(runtime.device)
        ref = copy.deepcopy(ref).to(runtime.device)
        if reward_fn is None:
            proxy = copy.deepcopy(stages.reward_model).to(runtime.device).score
    sharded = runtime is not None and runtime.sharded
    if sharded:  # sharded in place; the critic runs through its values method
        policy, critic = runtime.prepare(policy), runtime.prepare(critic, forward_methods=("values",))
    evals = [{"iteration": 0, **evaluate_against_gold(stages.sft_model, stages, n=eval_n)}]

    def callback(it: int, info: dict, pol: torch.nn.Module) -> None:
        if it % eval_every == 0 or it == config.iterations:
            if sharded:  # every rank gathers the weights and samples the same
                with runtime.gathered(pol):
                    evals.append({"iteration": it, **evaluate_against_gold(pol, stages, n=eval_n)})
                return
            pol = pol if on_cpu else copy.deepcopy(pol).cpu()
            evals.append({"iteration": it, **evaluate_against_gold(pol, stages, n=eval_n)})

    bos, eos, pad = stages.ids
    history = train_ppo_rlhf(
        policy,
        ref,
        critic,
        proxy,
        config,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        gold_fn=stages.gold,
        callback=callback,
        runtime=runtime,
    )
    if sharded:  # an ordinary model again, from the gathered weights (a collective: every rank)
        plain = stages.new_policy()
        plain.load_state_dict(runtime.full_state_dict(policy))
        policy = plain
    return PPORun(policy=policy if on_cpu else policy.cpu(), history=history, evals=evals)
