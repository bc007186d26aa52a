"""Data-parallel training with ``torch.distributed`` (what ``torchrun`` sets up).

``torchrun --nproc_per_node=N -m clrnet.cli.train --config refine`` starts N
processes; each reads RANK / WORLD_SIZE / MASTER_ADDR from the environment and
joins one process group: gloo on CPUs, nccl when every process has a GPU. The
reconstruction network is wrapped in DistributedDataParallel, which averages
gradients; the CLR-Net trainer (``small``, ``paper``) calls its networks through
several methods and GAN steps, so it averages its gradients with
:meth:`World.average_gradients` (one all-reduce per optimiser step) and checks at
each checkpoint that the processes' weights agree. Without those variables (a
plain ``clrnet train``) training runs in one process as before.
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

    def average_gradients(self, params) -> None:
        """Average the gradients of ``params`` over the processes (one all-reduce), for
        trainers that call their networks through several methods, which DDP's forward
        hooks would not see. A parameter without a gradient counts as a zero gradient."""
        if self.size == 1:
            return
        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.size
        i = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[i:i + n].view_as(p.grad))
            i += n

    def broadcast_(self, module: torch.nn.Module) -> None:
        """Every process takes rank 0's parameters and buffers."""
        if self.size > 1:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, 0)

    def check_in_step(self, module: torch.nn.Module) -> None:
        """Raise if the processes' copies of ``module`` have drifted apart."""
        if self.size == 1:
            return
        total = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1)
        lo, hi = total.clone(), total.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if float(hi - lo) > 1e-6 * max(1.0, float(total.abs())):
            raise RuntimeError(f"the training processes' weights differ ({float(lo)} vs {float(hi)})")

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
        # every rank leaves together: a rank tearing gloo down while another still holds
        # its connection can abort the other at exit ("terminate called", seen once in CI)
        dist.barrier()
        dist.destroy_process_group()
