"""Data-parallel training with ``torch.distributed`` (what ``torchrun`` sets up).

``torchrun --nproc_per_node=N -m clrnet.train --config refine`` starts N
processes; each reads RANK / WORLD_SIZE / MASTER_ADDR from the environment and
joins one process group: gloo on CPUs, nccl when every process has a GPU. The
model is wrapped in DistributedDataParallel, which averages gradients. Without
those variables (a plain ``clrnet train``) training runs in one process as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    backend: str = "none"

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, logs and validation results."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum over processes (a copy; no gradient flows through it)."""
        out = value.detach().clone()
        if self.size > 1:
            dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_world() -> World:
    """Join the process group torchrun describes, or a world of one."""
    if not launched_by_torchrun():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return World(dist.get_rank(), dist.get_world_size(), dist.get_backend())


def close_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
