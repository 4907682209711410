"""A time and memory budget for SymPy work on expressions a user wrote.

A short expression can make SymPy run for minutes or take gigabytes (a high power expanded in
many variables, nested exponentials evaluated to 30 digits). Such work runs in a forked child
process whose address space is capped at its size when forked plus ``memory_mb`` and which is
killed after ``seconds``; an overrun is a :class:`BudgetExceeded` naming the work, never a hang
and never the machine's memory. Defaults: 60 s and 2048 MiB, settable with the environment
variables ``CADCAM_DERIVE_SECONDS`` and ``CADCAM_DERIVE_MEMORY_MB``.

Where ``fork`` is not available (not Linux/macOS) the work runs in the calling process, unbudgeted.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from derivations.errors import DerivationInputError

__all__ = ["Budget", "BudgetExceeded", "budget_from_env", "run_within_budget"]

T = TypeVar("T")


class BudgetExceeded(DerivationInputError):
    """The work took more time or memory than its budget; the message names the work."""


@dataclass(frozen=True)
class Budget:
    seconds: float = 60.0
    memory_mb: int = 2048


def budget_from_env() -> Budget:
    """The budget set by ``CADCAM_DERIVE_SECONDS`` / ``CADCAM_DERIVE_MEMORY_MB`` (or the defaults)."""
    default = Budget()
    try:
        seconds = float(os.environ.get("CADCAM_DERIVE_SECONDS", default.seconds))
        memory = int(os.environ.get("CADCAM_DERIVE_MEMORY_MB", default.memory_mb))
    except ValueError as exc:
        raise BudgetExceeded(f"CADCAM_DERIVE_SECONDS / CADCAM_DERIVE_MEMORY_MB: expected numbers ({exc})") from exc
    if seconds <= 0 or memory <= 0:
        raise BudgetExceeded("CADCAM_DERIVE_SECONDS / CADCAM_DERIVE_MEMORY_MB must be positive")
    return Budget(seconds, memory)


def _virtual_size() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _child(connection: Any, work: Callable[..., Any], args: tuple, memory_mb: int) -> None:
    try:
        import resource

        size = _virtual_size()
        if size is not None:
            limit = size + memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        result = ("ok", work(*args))
    except MemoryError:
        result = ("memory", None)
    except BaseException as exc:  # handed to the parent, which re-raises it
        result = ("error", (exc, traceback.format_exc()))
    try:
        connection.send(result)
    except Exception as exc:  # an unpicklable result or exception
        connection.send(("error", (RuntimeError(f"{type(exc).__name__}: {exc}"), "")))
    finally:
        connection.close()
        os._exit(0)


def run_within_budget(work: Callable[..., T], *args: object, what: str, budget: Budget | None = None) -> T:
    """``work(*args)`` in a forked child under ``budget`` (default: :func:`budget_from_env`);
    its exceptions are re-raised here; an overrun raises :class:`BudgetExceeded` naming ``what``."""
    budget = budget or budget_from_env()
    if "fork" not in multiprocessing.get_all_start_methods():
        return work(*args)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, work, args, budget.memory_mb), daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(budget.seconds):
            raise BudgetExceeded(
                f"{what}: SymPy needed more than {budget.seconds:g} s; simplify the expression or raise "
                "CADCAM_DERIVE_SECONDS"
            )
        try:
            status, value = receive.recv()
        except EOFError:
            status, value = "memory", None  # the child died (killed by the OS for its memory)
    finally:
        process.kill()
        process.join()
        receive.close()
    if status == "memory":
        raise BudgetExceeded(
            f"{what}: SymPy needed more than {budget.memory_mb} MiB; simplify the expression or raise "
            "CADCAM_DERIVE_MEMORY_MB"
        )
    if status == "error":
        exc, _ = value
        raise exc
    return value
