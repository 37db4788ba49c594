"""Run one DPO step on the tiny GPT-2 and save the gradient it stepped with (rank 0 writes).

Launched by tests/test_scale_distributed.py, once as a plain process (the book's default path, no runtime) and
once under ``accelerate launch --num_processes 2``: both draw the same 8 pairs, each process of the second run
scores 4 of them, and both must step with the same gradient. Under the FSDP config the policy is sharded and
the saved gradients are gathered. Usage: ``python _dpo_grad_worker.py OUT.pt``.
"""

import copy
import sys

import torch

from rl4llm.distributed import make_runtime
from rl4llm.lm import load_tiny_gpt2
from rl4llm.rlhf.dpo import train_dpo
from rl4llm.rlhf.rollout import sample_sequences, special_ids
from rl4llm.utils import set_torch_threads


def _whole(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor (an FSDP shard all-gathered)."""
    return (t.full_tensor() if hasattr(t, "full_tensor") else t).detach().clone()


def main(out: str) -> None:
    set_torch_threads(1)
    runtime = make_runtime("cpu")  # None in a plain process
    policy, tok = load_tiny_gpt2()
    policy.requires_grad_(True)
    ref = copy.deepcopy(policy)
    bos, eos, pad = special_ids(tok)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():  # 24 sampled responses; pairs (i, i + 12) with different texts
        both = sample_sequences(ref, 24, 10, bos, eos, pad, generator=gen)
    chosen, rejected = both.index(torch.arange(12)), both.index(torch.arange(12, 24))
    with torch.no_grad():  # move the policy away from the reference, so that the margins are not all zero
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    policy = policy if runtime is None else runtime.prepare(policy)  # sharded in place under FSDP
    grads: list[list[torch.Tensor]] = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        if not grads:
            grads.append([_whole(p.grad) for g in self.param_groups for p in g["params"]])
        return step(self, *args, **kwargs)

    torch.optim.Adam.step = recording_step
    log = train_dpo(
        policy, ref, chosen, rejected, beta=0.5, steps=2, batch_size=8, seed=4, log_every=1, runtime=runtime
    )
    weights = [_whole(p) for p in policy.parameters()]  # a collective under FSDP: every rank
    if runtime is None or runtime.is_main:
        torch.save(
            {
                "grads": grads[0],
                "log": [log.loss, log.reward_accuracy, log.margin],
                "world_size": 1 if runtime is None else runtime.world_size,
                "weights": weights,
                "engine": "none" if runtime is None else runtime.engine,
            },
            out,
        )


if __name__ == "__main__":
    main(sys.argv[1])
