"""Device selection, written once: every command's ``--device`` goes through :func:`select_device`."""

from __future__ import annotations

import torch

from cadcam_numeric.errors import CadcamInputError

__all__ = ["THREADS_VARIABLE", "cpu_thread_count", "select_device", "use_cpu_threads"]


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


#: the environment variable that fixes the number of CPU threads torch uses
THREADS_VARIABLE = "CADCAM_THREADS"


def cpu_thread_count(environ: dict | None = None) -> tuple[int, str]:
    """How many CPU threads a command gives torch, and why.

    ``CADCAM_THREADS`` when set, else ``OMP_NUM_THREADS`` (what torch and torchrun read); else this
    process's share of the CPUs it may use (divided among torchrun's ``LOCAL_WORLD_SIZE`` processes) less
    the load already on them (the one-minute load average), at least 1 — torch's default of one thread
    per core runs several times slower when the cores are busy (measured: the demo's training 3x slower
    with 2 threads than with 1 on a loaded 2-core machine).

    Args:
        environ: the environment to read (default ``os.environ``).
    Returns:
        (threads, the reason, in words).

    >>> cpu_thread_count({"CADCAM_THREADS": "3"})
    (3, 'CADCAM_THREADS=3')
    """
    import os

    environ = os.environ if environ is None else environ
    for variable in (THREADS_VARIABLE, "OMP_NUM_THREADS"):
        text = environ.get(variable, "").strip()
        if text:
            if not (text.isascii() and text.isdecimal()) or int(text) < 1:
                raise CadcamInputError(f"{variable}: expected a positive integer, got {text!r}")
            return int(text), f"{variable}={text}"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ranks = environ.get("LOCAL_WORLD_SIZE", "1")
    share = max(1, cpus // max(1, int(ranks) if ranks.isascii() and ranks.isdecimal() else 1))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    threads = max(1, min(share, round(share - load / max(1, cpus // share))))
    return threads, f"{cpus} CPUs, load {load:.1f}; set {THREADS_VARIABLE} to choose"


def use_cpu_threads() -> str:
    """Give torch :func:`cpu_thread_count` threads; returns the statement a command prints with its timing."""
    threads, why = cpu_thread_count()
    torch.set_num_threads(threads)
    return f"{threads} CPU thread{'s' if threads > 1 else ''} ({why})"
