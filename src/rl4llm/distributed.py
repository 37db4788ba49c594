"""Devices, mixed precision and data parallelism across processes, through Hugging Face Accelerate.

The book's trainers run in one CPU process by default. :func:`make_runtime` returns ``None`` there, and the
trainers take their original code path, bit for bit. Otherwise it returns a :class:`Runtime`: the device, the
autocast precision and, under ``accelerate launch`` (or ``torchrun``), this process's rank among
``world_size`` processes, with the process group (gloo on CPU, NCCL on GPUs) that Accelerate set up.

Data parallelism in an on-policy trainer is four operations, each one method here:

1. **Rollouts split by rank.** The global batch of ``B`` rollouts is cut into ``shards`` shards of
   ``B / shards`` rows; shard ``s`` is sampled with its own generator seeded by ``(seed, iteration, s)``, and rank
   ``r`` samples shards ``r, r + W, r + 2W, ...`` (:meth:`Runtime.shard_plan`). The global batch is the same
   whatever the number of processes ``W`` that share the shards.
2. **Gradients all-reduced.** A loss that averages over the tokens of the *global* minibatch is
   :math:`\\mathcal L = \\frac1N \\sum_{r} \\sum_{i \\in r} \\ell_i` with :math:`N = \\sum_r N_r`; each rank
   back-propagates its share :math:`\\frac{N_r}{N} \\cdot \\mathrm{mean}_{i\\in r}\\ell_i` (:meth:`Runtime.token_share`)
   and the gradients are summed over ranks (:meth:`Runtime.sum_gradients`). The result is the one-process gradient
   of the global minibatch, whatever the ranks' token counts (averaging per-rank means would weight a rank's
   tokens by :math:`1/N_r`, which is what ``verl``'s and OpenRLHF's loss-aggregation options are about).
3. **Statistics over the global batch.** Advantage whitening needs the mean and variance of all ranks' tokens:
   :meth:`Runtime.sum` all-reduces the sums.
4. **Metrics gathered, files written once.** :meth:`Runtime.mean_over_ranks` averages a row of metrics;
   :func:`is_main_process` guards every file write (``metrics.json``, checkpoints, caches written by rank 0).

The gradient reduction is explicit (one ``all_reduce`` per parameter after ``backward``, as in CleanRL's
multi-GPU PPO) rather than hidden in a ``DistributedDataParallel`` wrapper, so the trainers keep calling their
models directly: that is the ``"allreduce"`` engine, every rank holding the whole model and optimiser.

**Sharded engine (FSDP).** When the Accelerate config file asks for FSDP (``configs/accelerate/fsdp.yaml``:
``accelerate launch`` sets ``ACCELERATE_USE_FSDP=true``), the runtime's engine is ``"fsdp"``: :meth:`Runtime.prepare`
shards the policy with PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard`` on every transformer block, then on
the whole model; what Accelerate's ``fsdp_version: 2`` calls), so each rank keeps ``1 / W`` of the parameters,
gradients and Adam moments; the engine reduce-scatters the gradients (an average over ranks, so
:meth:`Runtime.backward` scales this rank's share by ``W``) and :meth:`Runtime.gathered` all-gathers the weights
once for sampling, whose number of forward passes differs between ranks. rl4llm applies FSDP2 itself rather than
through ``accelerator.prepare`` because Accelerate 1.15 turns an FSDP config into plain data parallelism on CPU
(its FSDP path needs a GPU backend), and the same code then runs on CPU (gloo, tested) and GPUs (NCCL).
DeepSpeed ZeRO owns the optimiser step and the gradient clipping (``engine.backward``, ``engine.step``), which
the book's trainers do themselves: under a DeepSpeed config :func:`make_runtime` raises ``ValueError`` instead of
training with the wrong reduction (ZeRO-3 corresponds to FSDP's full sharding, ZeRO-2 to sharding gradients and
optimiser states only: ``fsdp-zero2.yaml``, which sets ``fsdp_reshard_after_forward: false``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from rl4llm.utils import check_choice, check_positive_int

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "ENGINES",
    "Runtime",
    "make_runtime",
    "launcher_engine",
    "world",
    "is_main_process",
    "resolve_device",
    "check_device_field",
]

#: Values of every ``device`` config field.
DEVICES = ("auto", "cpu", "cuda")
#: Values of every ``mixed_precision`` config field: ``"no"`` (float32) or ``"bf16"`` autocast.
PRECISIONS = ("no", "bf16")
#: How gradients are reduced across processes: rl4llm's explicit all-reduce, or FSDP2 sharding.
ENGINES = ("allreduce", "fsdp")
DEVICE_HELP = "where to train: 'cpu' (default, reproducible), 'cuda', or 'auto' (cuda when available)"
PRECISION_HELP = "'bf16' runs forward passes under bfloat16 autocast (GPUs with bf16, or CPU); 'no' is float32"


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process from the launcher's environment (``(0, 1)`` without a launcher).

    ``accelerate launch`` and ``torchrun`` both set ``RANK`` and ``WORLD_SIZE``.
    """
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in the process that writes files (rank 0), and in a plain single process."""
    return world()[0] == 0


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``"cuda"`` without a GPU is a ``ValueError``."""
    check_choice("device", device, DEVICES)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be 'cpu' or 'auto' on this machine: 'cuda' was asked but no GPU is visible")
    return torch.device(device)


def check_device_field(device: str) -> None:
    """A config's ``device`` this machine cannot honour raises :class:`~rl4llm.config.ConfigError` naming the field
    (``"cuda"`` with no GPU visible), so that ``rl4llm run`` prints one line before anything runs."""
    from rl4llm.config import ConfigError

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device", "device must be 'cpu' or 'auto' on this machine: 'cuda' was asked but no GPU is visible"
        )


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() in ("1", "true", "yes")


def launcher_engine() -> str:
    """The gradient engine the Accelerate config asks for, read from the environment ``accelerate launch`` sets.

    ``"fsdp"`` under an FSDP config (``ACCELERATE_USE_FSDP``), else ``"allreduce"``. A DeepSpeed config
    (``ACCELERATE_USE_DEEPSPEED``) raises ``ValueError``: the trainers step their own optimisers, which ZeRO
    replaces (see the module docstring).
    """
    if _env_flag("ACCELERATE_USE_DEEPSPEED"):
        stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "?")
        raise ValueError(
            f"engine DeepSpeed (ZeRO stage {stage}, from the Accelerate config) is not supported by rl4llm's "
            "trainers, which step and clip their own optimisers; launch with configs/accelerate/fsdp.yaml "
            "(ZeRO-3's partitioning), fsdp-zero2.yaml (ZeRO-2's) or multi-gpu.yaml. The zero2/zero3 "
            "configs serve TRL's GRPOTrainer (benchmarks/scale.py)"
        )
    return "fsdp" if _env_flag("ACCELERATE_USE_FSDP") else "allreduce"


@dataclass
class Runtime:
    """Where and how a trainer runs: device, precision, and this process's place among ``world_size``."""

    device: torch.device
    mixed_precision: str = "no"
    rank: int = 0
    world_size: int = 1
    shards: int = 1
    accelerator: Any = None
    engine: str = "allreduce"
    reshard_after_forward: bool = True

    def __post_init__(self) -> None:
        check_choice("mixed_precision", self.mixed_precision, PRECISIONS)
        check_choice("engine", self.engine, ENGINES)
        check_positive_int("world_size", self.world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, world_size - 1 = {self.world_size - 1}], got {self.rank}")
        check_positive_int("shards", self.shards)
        if self.shards % self.world_size:
            raise ValueError(f"shards must be a multiple of world_size ({self.world_size}), got {self.shards}")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # 1. rollouts split by rank
    def shard_plan(self, batch_size: int, seed: int, iteration: int) -> list[tuple[int, torch.Generator]]:
        """This rank's shards of a global batch: ``(rows, generator)`` for shards ``rank, rank + W, ...``.

        Shard ``s`` has ``batch_size / shards`` rows (``ValueError`` unless it divides) and the generator seeded
        with ``seed * 1_000_003 + iteration * 1009 + s``, so the global batch does not depend on ``world_size``.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size % self.shards:
            raise ValueError(f"batch_size must be a multiple of the rollout shards ({self.shards}), got {batch_size}")
        rows = batch_size // self.shards
        return [
            (rows, torch.Generator(device=self.device).manual_seed(seed * 1_000_003 + iteration * 1009 + s))
            for s in self.shard_indices
        ]

    @property
    def shard_indices(self) -> list[int]:
        """The rollout shards this rank samples: ``rank, rank + W, rank + 2W, ...`` (below ``shards``)."""
        return list(range(self.rank, self.shards, self.world_size))

    def local_rows(self, n: int, name: str = "batch_size") -> slice:
        """This rank's contiguous block of ``n`` rows split evenly over the ranks (``ValueError`` unless ``W``
        divides ``n``): rows ``[r n / W, (r + 1) n / W)``."""
        n = check_positive_int(name, n)
        if n % self.world_size:
            raise ValueError(f"{name} must be a multiple of the number of processes ({self.world_size}), got {n}")
        k = n // self.world_size
        return slice(self.rank * k, (self.rank + 1) * k)

    # 2. gradients
    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of ``tensor`` (a new tensor on ``tensor``'s device; ``tensor`` itself on one process).

        The reduction runs on the runtime's device (NCCL reduces GPU tensors only)."""
        if not self.distributed:
            return tensor
        out = tensor.detach().to(self.device, copy=True)
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
        return out.to(tensor.device)

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        """The elementwise maximum over ranks of ``tensor`` (``tensor`` itself on one process)."""
        if not self.distributed:
            return tensor
        out = tensor.detach().to(self.device, copy=True)
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.MAX)
        return out.to(tensor.device)

    def token_share(self, n_local: int | float | torch.Tensor) -> float:
        """:math:`N_r / N`: the weight of this rank's token-mean loss in the global token mean."""
        local = torch.as_tensor(float(n_local), dtype=torch.float64)
        total = float(self.sum(local))
        if total <= 0:
            raise ValueError("the global minibatch has no tokens")
        return float(local) / total

    def sum_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """All-reduce (sum) the ``.grad`` of every parameter in place (a parameter without one counts as 0).

        Only for the ``"allreduce"`` engine: under FSDP the engine reduces, and a trainer that reduces by hand
        raises ``ValueError`` rather than reduce twice (the trainers call :meth:`backward`, which picks)."""
        if not self.distributed:
            return
        if self.engine != "allreduce":
            raise ValueError(
                f"engine {self.engine!r} reduces the gradients itself; this trainer sums them by hand and supports "
                "only the 'allreduce' engine (launch it with configs/accelerate/multi-gpu.yaml or multi-cpu.yaml)"
            )
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)

    def backward(self, loss: torch.Tensor, model: torch.nn.Module) -> None:
        """Back-propagate this rank's share of the global loss (already weighted, e.g. by :meth:`token_share`)
        and leave the gradient of the global loss in every ``.grad`` of ``model``.

        ``"allreduce"``: ``backward``, then one explicit all-reduce (sum). ``"fsdp"``: the engine averages the
        ranks' gradients while reduce-scattering them, so the share is scaled by ``W`` first
        (:math:`\\frac1W \\sum_r W s_r \\nabla\\ell_r = \\sum_r s_r \\nabla\\ell_r`); each rank then
        holds its shard of the summed gradient."""
        if self.engine == "fsdp" and self.distributed:
            (loss * self.world_size).backward()
            return
        loss.backward()
        self.sum_gradients(model.parameters())

    # the sharded engine
    @property
    def sharded(self) -> bool:
        """True when the model's parameters are sharded over the ranks (FSDP across several processes)."""
        return self.engine == "fsdp" and self.distributed

    def prepare(self, model: torch.nn.Module, forward_methods: Iterable[str] = ()) -> torch.nn.Module:
        """The model to train: itself, or under FSDP sharded in place with ``fully_shard``.

        Each module whose class is named in ``FSDP_TRANSFORMER_CLS_TO_WRAP`` (Accelerate's
        ``fsdp_transformer_layer_cls_to_wrap``; default ``GPT2Block``) becomes one FSDP unit, then the whole model
        (embeddings, final norm, tied head). Create the optimiser after this call (on the sharded parameters).
        ``forward_methods`` names the methods other than ``forward`` that run the model (e.g. the PPO critic's
        ``values``): FSDP gathers the whole model's own weights around them too."""
        if not self.sharded:
            return model
        from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

        names = {n.strip() for n in os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "GPT2Block").split(",") if n}
        blocks = [m for m in model.modules() if type(m).__name__ in names]
        if not blocks:
            raise ValueError(f"FSDP_TRANSFORMER_CLS_TO_WRAP names no module of {type(model).__name__}: {names}")
        for block in blocks:
            fully_shard(block, reshard_after_forward=self.reshard_after_forward)
        fully_shard(model, reshard_after_forward=self.reshard_after_forward)
        for name in forward_methods:
            register_fsdp_forward_method(model, name)
        return model

    @contextlib.contextmanager
    def gathered(self, model: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """Within the block, the sharded model's weights are gathered on every rank (one all-gather per unit),
        so that forward passes need no collective: sampling, whose number of steps differs between ranks.
        A no-op unless :attr:`sharded`."""
        if not self.sharded:
            yield model
            return
        from torch.distributed.fsdp import FSDPModule

        units = [m for m in model.modules() if isinstance(m, FSDPModule)]
        for u in units:
            u.set_reshard_after_forward(False, recurse=False)
            u.unshard()
        try:
            yield model
        finally:
            for u in units:
                u.reshard()
                u.set_reshard_after_forward(self.reshard_after_forward, recurse=False)

    def full_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's whole weights on every rank (sharded ones all-gathered; a collective under FSDP)."""
        out = {}
        for k, v in model.state_dict().items():
            out[k] = (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().cpu().clone()
        return out

    # 4. metrics
    def mean_over_ranks(self, row: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (the same keys on every rank)."""
        if not self.distributed:
            return dict(row)
        keys = sorted(row)
        values = self.sum(torch.tensor([float(row[k]) for k in keys], dtype=torch.float64)) / self.world_size
        return {k: float(v) for k, v in zip(keys, values, strict=True)}

    # device and precision
    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast on this device when ``mixed_precision == "bf16"``, else a no-op."""
        if self.mixed_precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


def make_runtime(device: str = "cpu", mixed_precision: str = "no", shards: int | None = None) -> Runtime | None:
    """The :class:`Runtime` of this process, or ``None`` on the default path (one CPU process, float32).

    Under a launcher (``WORLD_SIZE > 1``) it creates the ``accelerate.Accelerator``, which initialises the process
    group from the launcher's environment: gloo on CPU, NCCL on GPUs. The engine follows the config file
    (:func:`launcher_engine`: ``"fsdp"`` for an FSDP config, ``ValueError`` for DeepSpeed). ``shards`` (default: the world size) is the number of
    rollout shards (:meth:`Runtime.shard_plan`); fix it to compare runs with different numbers of processes.
    """
    check_choice("device", device, DEVICES)
    check_choice("mixed_precision", mixed_precision, PRECISIONS)
    rank, world_size = world()
    engine = launcher_engine()
    if device == "cpu" and mixed_precision == "no" and world_size == 1 and shards is None:
        return None
    accelerator = None
    if world_size > 1:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=device == "cpu")
        rank, world_size = accelerator.process_index, accelerator.num_processes
        dev = accelerator.device
    else:
        dev = resolve_device(device)
    return Runtime(
        device=dev,
        mixed_precision=mixed_precision,
        rank=rank,
        world_size=world_size,
        shards=world_size if shards is None else shards,
        accelerator=accelerator,
        engine=engine,
        reshard_after_forward=os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").strip().lower()
        not in ("false", "0", "shard_grad_op", "2"),
    )


@contextlib.contextmanager
def main_process_first(runtime: Runtime | None) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. filling a disk cache), the other ranks after it (reading the cache)."""
    if runtime is None or not runtime.distributed:
        yield
        return
    if not runtime.is_main:
        runtime.barrier()
    yield
    if runtime.is_main:
        runtime.barrier()
