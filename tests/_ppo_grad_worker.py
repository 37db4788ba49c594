"""Run one PPO-RLHF update on the tiny GPT-2 and save the policy gradient it stepped with (rank 0 writes).

Launched by tests/test_scale_distributed.py, once as a plain process and twice under ``accelerate launch
--num_processes 2`` (rl4llm's all-reduce, and the FSDP config with the policy and the critic sharded): all sample
the same global batch (two rollout shards) and must step with the same gradient. Under FSDP the saved gradients
and weights are gathered. Usage: ``python _ppo_grad_worker.py OUT.pt``.
"""

import copy
import sys

import torch

from rl4llm.distributed import make_runtime
from rl4llm.lm import load_tiny_gpt2
from rl4llm.rlhf.ppo import PPORLHFConfig, train_ppo_rlhf
from rl4llm.rlhf.reward_model import RewardModel, ValueModel
from rl4llm.rlhf.rollout import special_ids
from rl4llm.rlhf.stages import gold_of
from rl4llm.utils import set_torch_threads


def _whole(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor (an FSDP shard all-gathered)."""
    return (t.full_tensor() if hasattr(t, "full_tensor") else t).detach().clone()


def main(out: str) -> None:
    set_torch_threads(1)
    runtime = make_runtime("cpu", shards=2)
    torch.manual_seed(0)
    policy, tok = load_tiny_gpt2()
    ref = copy.deepcopy(policy)
    critic = ValueModel.from_reward_model(RewardModel.from_lm(policy))
    for p in policy.parameters():
        p.requires_grad_(True)
    policy = runtime.prepare(policy)  # sharded in place under FSDP, itself otherwise
    critic = runtime.prepare(critic, forward_methods=("values",))
    grads: list[list[torch.Tensor]] = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):  # the policy's optimiser steps first (a collective under FSDP)
        if not grads:
            grads.append([_whole(p.grad) for g in self.param_groups for p in g["params"]])
        return step(self, *args, **kwargs)

    torch.optim.Adam.step = recording_step

    def gold(batch):  # the text path: decode, then the exact gold reward
        return torch.as_tensor(gold_of(tok, batch), dtype=torch.float32)

    config = PPORLHFConfig(
        iterations=1, batch_size=8, n_minibatches=1, n_epochs=1, max_grad_norm=1e9, max_new_tokens=12, seed=3
    )
    bos, eos, pad = special_ids(tok)
    history = train_ppo_rlhf(policy, ref, critic, gold, config, bos_id=bos, eos_id=eos, pad_id=pad, runtime=runtime)
    weights = [_whole(p) for m in (policy, critic) for p in m.parameters()]  # a collective under FSDP: every rank
    if runtime.is_main:
        torch.save(
            {
                "grads": grads[0],
                "row": history.rows[0],
                "world_size": runtime.world_size,
                "engine": runtime.engine,
                "weights": weights,
            },
            out,
        )


if __name__ == "__main__":
    main(sys.argv[1])
