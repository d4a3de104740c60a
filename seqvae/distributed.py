"""PyTorch DDP under torchrun: who this process is, and the few collectives training needs.

``torchrun --nproc_per_node=N -m seqvae train CONFIG`` starts N copies of the same command;
torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and the rendezvous address) in each one's
environment. Without them (a plain ``seqvae train``) the world is one process and nothing
here does any communication.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """The process that writes logs, pictures and checkpoints."""
        return self.rank == 0


def world_from_env() -> World:
    """The World torchrun describes in the environment (one process if it describes none)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("RANK, LOCAL_RANK and WORLD_SIZE must be integers (torchrun sets "
                          "them); unset them to train in one process") from None
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK {rank} and WORLD_SIZE {size} do not describe a process group")
    return World(rank, local_rank, size)


def backend(device: torch.device) -> str:
    """The collective-communication backend for a device: NCCL on CUDA, gloo elsewhere."""
    return "nccl" if device.type == "cuda" else "gloo"


def start(world: World, device: torch.device) -> bool:
    """Join the process group (gloo on CPU, NCCL on CUDA); True if this call created it."""
    if not world.distributed or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend(device))
    return True


def stop(created: bool) -> None:
    """Wait for every process, then leave the group if ``start`` created it."""
    if created and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True if ``flag`` is true on any process (every process must call this together)."""
    return any_ranks([flag], world, device)[0]


def any_ranks(flags: list[bool], world: World, device: torch.device) -> list[bool]:
    """Each flag, true if it is true on any process, in one all-reduce."""
    if not world.distributed:
        return list(flags)
    value = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return [bool(v > 0) for v in value.tolist()]
