"""Batches of a source, shard by shard, through a DataLoader: the loop both ``explain`` and
``evaluate`` stream over, and the benchmark times.

Shard k holds the source's positions k·S … k·S+S−1; its batches never cross into another shard,
so a shard's images are batched the same way whichever process computes it and whatever ran
before (a resumed run, or rank r of K).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.sources import ImageSource, collate_items

__all__ = ["Batch", "default_workers", "shard_batches", "shard_count"]


@dataclass
class Batch:
    """Readable images (B, 3, S, S) on the device and their source positions; the unreadable ones
    as (position, message); ``shard`` it belongs to and whether it is that shard's last batch."""

    images: Tensor
    positions: Tensor
    unreadable: list[tuple[int, str]]
    shard: int
    last_of_shard: bool


def shard_count(n: int, shard_size: int) -> int:
    return -(-n // shard_size)


def default_workers() -> int:
    """DataLoader workers: one fewer than this process's share of the cores it may use (the cores
    divided among torchrun's processes on this machine, ``LOCAL_WORLD_SIZE``), at most 8, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    share = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, min(8, share - 1))


def shard_batches(
    source: ImageSource,
    shards: list[int],
    shard_size: int,
    batch_size: int,
    device: torch.device,
    workers: int | None = None,
) -> Iterator[Batch]:
    """Every batch of ``shards`` in order, read by ``workers`` processes (0: in this process), into
    pinned memory when the device is a GPU."""
    if shard_size < 1 or batch_size < 1:
        raise CadcamInputError(f"shard_size and batch_size: expected >= 1, got {shard_size} and {batch_size}")
    plan: list[tuple[list[int], int, bool]] = []
    for k in shards:
        positions = list(range(k * shard_size, min(len(source), (k + 1) * shard_size)))
        for start in range(0, len(positions), batch_size):
            plan.append((positions[start : start + batch_size], k, start + batch_size >= len(positions)))
    if not plan:
        return
    workers = default_workers() if workers is None else workers
    loader = DataLoader(
        source,
        batch_sampler=[p for p, _, _ in plan],
        num_workers=workers,
        collate_fn=collate_items,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
    )
    for (images, positions, unreadable), (_, k, last) in zip(loader, plan, strict=True):
        yield Batch(images.to(device, non_blocking=True), positions, unreadable, k, last)
