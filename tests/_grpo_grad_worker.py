"""Run one GRPO update per loss aggregation on chapter 7's checkpoint and save the gradients it stepped with.

Launched by tests/test_scale_distributed.py, once as a plain process and once under ``accelerate launch
--num_processes 2``: both sample the same global batch (two rollout shards of whole groups) and must step with the
same gradient. Under the FSDP config the policy is sharded (sampling with gathered weights) and the saved
gradients are gathered. Usage: ``python _grpo_grad_worker.py OUT.pt``.
"""

import sys

import torch

from rl4llm.distributed import make_runtime
from rl4llm.rlvr.grpo import GRPOConfig, train_grpo
from rl4llm.rlvr.pretrain import load_reasoning_lm
from rl4llm.utils import set_torch_threads


def _whole(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor (an FSDP shard all-gathered)."""
    return (t.full_tensor() if hasattr(t, "full_tensor") else t).detach().clone()


def main(out: str) -> None:
    set_torch_threads(1)
    runtime = make_runtime("cpu", shards=2)
    grads: list[list[torch.Tensor]] = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        grads.append([_whole(p.grad) for g in self.param_groups for p in g["params"]])
        return step(self, *args, **kwargs)

    torch.optim.Adam.step = recording_step
    saved = {}
    for method in ("grpo", "dr-grpo", "rloo"):
        policy, tok = load_reasoning_lm()
        policy = runtime.prepare(policy.requires_grad_(True))  # sharded in place under FSDP
        config = GRPOConfig.for_method(
            method, iterations=1, group_size=4, prompts_per_iter=4, n_minibatches=1, max_grad_norm=1e9, seed=5
        )
        grads.clear()
        history = train_grpo(policy, None, tok, config, runtime=runtime)
        saved[method] = {"grads": grads[0], "row": history.rows[0]}
    if runtime.is_main:
        torch.save(
            {
                "methods": saved,
                "world_size": runtime.world_size,
                "engine": runtime.engine,
                "reshard_after_forward": runtime.reshard_after_forward,
            },
            out,
        )


if __name__ == "__main__":
    main(sys.argv[1])
