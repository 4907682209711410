"""One process or many: PyTorch's own distributed runtime, started by ``torchrun``.

``cadcam explain|evaluate … --distributed`` under ``torchrun --nproc-per-node K -m cadcam_numeric``
joins the process group torchrun describes in the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): gloo on the CPU, NCCL on GPUs (one per process,
``cuda:LOCAL_RANK``). Work is split by whole shards (rank r takes shards r, r+K, r+2K, …), so
every image is computed in the same batch as in a one-process run; rank 0 writes what is shared.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch

from cadcam_numeric.errors import CadcamInputError

__all__ = ["Processes", "start_processes", "torchrun_command"]


def torchrun_command(processes: int, *args: str) -> list[str]:
    """``torchrun --standalone --nproc-per-node N -m cadcam_numeric ARGS --distributed``, run with
    this interpreter (``python -m torch.distributed.run``, torchrun's own module)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
        "-m", "cadcam_numeric", *args, "--distributed",
    ]  # fmt: skip


@dataclass
class Processes:
    """This process's place in the run: ``rank`` of ``world``; ``device`` the one it computes on."""

    rank: int
    world: int
    device: torch.device
    group: bool  # whether a process group was started (and must be closed)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.group:
            import torch.distributed as dist

            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank (one process: ``[value]``)."""
        if not self.group:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def mine(self, count: int) -> list[int]:
        """The shards 0 … count−1 this rank computes."""
        return list(range(self.rank, count, self.world))

    def close(self) -> None:
        if self.group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.group = False


def start_processes(device: torch.device, distributed: bool, timeout_minutes: float = 60.0) -> Processes:
    """One process (``distributed`` false) or this process's rank in torchrun's group."""
    if not distributed:
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            raise CadcamInputError(
                f"--distributed: this process is one of {os.environ['WORLD_SIZE']} started by torchrun; add "
                "--distributed, or every process would compute and write everything"
            )
        return Processes(0, 1, device, False)
    import torch.distributed as dist

    if not dist.is_available():
        raise CadcamInputError("--distributed: this PyTorch build has no torch.distributed")
    missing = [v for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise CadcamInputError(
            f"--distributed: run under torchrun (e.g. `torchrun --nproc-per-node 2 -m cadcam_numeric explain …"
            f" --distributed`); the environment lacks {', '.join(missing)}"
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        if device.index >= torch.cuda.device_count():
            raise CadcamInputError(f"--distributed: LOCAL_RANK {device.index} but {torch.cuda.device_count()} GPUs")
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes), **kwargs)
    return Processes(dist.get_rank(), dist.get_world_size(), device, True)
