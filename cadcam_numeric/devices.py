"""Device selection, written once: every command's ``--device`` goes through :func:`select_device`."""

from __future__ import annotations

import torch

from cadcam_numeric.errors import CadcamInputError

__all__ = ["select_device"]


def select_device(name: str | None, argument: str = "--device") -> torch.device:
    """``None`` → CUDA when available, else the CPU; otherwise the named device, checked to exist."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise CadcamInputError(f"{argument}: {name!r} is not a device (expected cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CadcamInputError(f"{argument}: {name!r} was asked for, but this machine has no CUDA device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CadcamInputError(f"{argument}: {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise CadcamInputError(f"{argument}: {name!r} is not supported (expected cpu, cuda or cuda:N)")
    return device
