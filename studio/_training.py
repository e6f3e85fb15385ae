"""Where and how a technique's training loop runs: one device or several ranks, full or mixed precision.

A technique writes its loop once against :class:`TrainingRun`; the studio decides the rest. On a
GPU the forward pass runs under autocast (bf16 where the GPU has it, else fp16 with a gradient
scaler), because that is what makes fine-tuning fast there; on the CPU it stays in fp32, where
autocast only costs time. When the step was started as several data-parallel ranks (the
studio starts one process per rank and sets up ``torch.distributed`` before the technique
runs), the module is wrapped in DistributedDataParallel and every rank takes its share of each
batch through a ``DistributedSampler``.

The share is cut so that the ranks together see exactly the samples one process would see in
the same step: the sampler's shuffled order, dealt out rank by rank, makes each global batch one
contiguous block of that order. With the gradients averaged across ranks, a 2-rank run then
follows a 1-rank run on the same data and seed, up to batch statistics (BatchNorm normalises
each rank's half of the batch by itself).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def training_precision(device: str, mixed_precision: bool = True) -> str:
    """ "bf16" or "fp16" for autocast on a GPU (bf16 where it is supported), "fp32" otherwise."""
    if not mixed_precision or not device.startswith("cuda"):
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class TrainingRun:
    """One training loop's placement: device, ranks, precision, and what it cost.

    Use ``run.model`` for the training forward pass (the DDP wrapper when there are ranks) and
    the plain module for evaluation; ``run.step(loss, optimizer)`` for the update; and
    ``run.finish()`` on every rank at the end for the figures recorded with the step.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        device: str,
        *,
        mixed_precision: bool = True,
        example: tuple[torch.Tensor, ...] | None = None,
    ) -> None:
        """``example``: a few samples of the training input, with which ranks find out whether the
        loss reaches every parameter (a second head it does not read); without it they assume not."""
        import torch
        import torch.distributed as dist

        self.device = device
        self.module = module.to(device)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.backend = dist.get_backend() if self.distributed else None
        self.precision = training_precision(device, mixed_precision)
        self._scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self._on_gpu = device.startswith("cuda")
        if self._on_gpu:
            torch.cuda.reset_peak_memory_stats(device)
        self._wrapped: Any = None
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            index = [torch.device(device).index or 0] if self._on_gpu else None
            # A layer the loss does not reach (a second head) gets no gradient; DDP must be told, and
            # telling it costs a walk of the graph every step, so only where it is so.
            unused = example is None or not _loss_reaches_every_parameter(self.module, example)
            self._wrapped = DistributedDataParallel(module, device_ids=index, find_unused_parameters=unused)

    @property
    def is_main(self) -> bool:
        """The rank whose result is kept; the only one in a run without ranks."""
        return self.rank == 0

    @property
    def model(self) -> torch.nn.Module:
        """What the training forward pass calls: gradients are averaged across ranks through it."""
        return self._wrapped if self._wrapped is not None else self.module

    def local_batch(self, batch_size: int, *, fixed: bool = False) -> int:
        """This rank's share of a batch; a model that takes one batch size gets it on every rank."""
        return batch_size if fixed else max(1, batch_size // self.world)

    def batches(
        self, n: int, batch_size: int, *, seed: int, epoch: int, fixed: bool = False
    ) -> list[np.ndarray]:
        """This rank's sample indices for each step of one epoch.

        Every rank gets as many steps, of the same sizes (the sampler pads the last one), so
        that no rank waits in a gradient exchange the others never reach.
        """
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(
            range(n), num_replicas=self.world, rank=self.rank, shuffle=True, seed=seed, drop_last=False
        )
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64)
        size = self.local_batch(batch_size, fixed=fixed)
        return [order[start : start + size] for start in range(0, len(order), size)]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's precision: autocast on a GPU, nothing on the CPU."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and update; fp16 scales the loss so small gradients do not vanish."""
        optimizer.zero_grad(set_to_none=True)
        if self._scaler is None:
            loss.backward()
            optimizer.step()
            return
        self._scaler.scale(loss).backward()
        self._scaler.step(optimizer)
        self._scaler.update()

    def total(self, *values: float) -> list[float]:
        """Each value summed over the ranks (a loss sum, a count): the figures of the whole batch."""
        if not self.distributed:
            return [float(v) for v in values]
        import torch
        import torch.distributed as dist

        where = self.device if self.backend == "nccl" else "cpu"
        tensor = torch.tensor(values, dtype=torch.float64, device=where)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(v) for v in tensor.cpu()]

    def finish(self) -> dict[str, Any]:
        """What the step records of its training: where, how many ranks, precision, peak memory.

        Every rank calls it (the peak memory is the largest over the ranks).
        """
        peak = None
        if self._on_gpu:
            import torch

            peak = int(torch.cuda.max_memory_allocated(self.device))
            if self.distributed:
                peak = int(self._largest(peak))
        return {
            "device": self.device,
            "ranks": self.world,
            "backend": self.backend,
            "precision": self.precision,
            "peak_gpu_memory_bytes": peak,
        }

    def _largest(self, value: int) -> float:
        import torch
        import torch.distributed as dist

        where = self.device if self.backend == "nccl" else "cpu"
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=where)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())


def _loss_reaches_every_parameter(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> bool:
    """Whether a loss on the first output gives every trainable parameter a gradient (one pass in
    eval mode, so no BatchNorm statistics move; the gradients are cleared again)."""
    from studio._output_layers import flatten_outputs

    training = module.training
    module.eval()
    try:
        flatten_outputs(module(*example))[0].float().sum().backward()
        return all(p.grad is not None for p in module.parameters() if p.requires_grad)
    finally:
        module.zero_grad(set_to_none=True)
        module.train(training)
