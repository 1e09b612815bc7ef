"""Process-group set-up for `torchrun`: one process per device, DDP gloo on CPU, nccl on GPU.

Run unchanged with `python -m genlab ...` (one process) or
`torchrun --nproc_per_node=N -m genlab ...` (N processes, the global batch split between them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from genlab.errors import GenlabError
from genlab.io.validate import environ_int


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise GenlabError("train.device=cuda but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(requested_device: str) -> DistEnv:
    """Read torchrun's environment; start the process group when there is more than one process."""
    world_size = environ_int("WORLD_SIZE", 1, minimum=1)
    rank = environ_int("RANK", 0)
    local_rank = environ_int("LOCAL_RANK", 0)
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistEnv(rank, world_size, local_rank, device)


def wrap_ddp(module: nn.Module, env: DistEnv) -> nn.Module:
    if not env.enabled:
        return module
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
