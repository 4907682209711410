"""A time and memory budget for SymPy work on expressions a user wrote.

A short expression can make SymPy run for minutes or take gigabytes (a high power expanded in
many variables, nested exponentials evaluated to 30 digits). Such work runs in a forked child
process whose address space is capped at its size when forked plus ``memory_mb`` and which is
killed after ``seconds``; an overrun is a :class:`BudgetExceeded` naming the work, never a hang
and never the machine's memory. Defaults: 60 s and 2048 MiB, settable with the environment
variables ``CADCAM_DERIVE_SECONDS`` and ``CADCAM_DERIVE_MEMORY_MB``.

Inside :func:`shared_budget` (every ``cadcam`` command runs in one) the seconds are one budget for
all the SymPy work of the block together, not for each expression: 400 activations share it. The child
dies with its parent (``PR_SET_PDEATHSIG``: a ``kill -9`` of cadcam leaves no SymPy running) and
carries ``RLIMIT_CPU`` equal to the seconds left, so it stops even if nobody waits for it.

Where ``fork`` is not available (not Linux/macOS) the work runs in the calling process, unbudgeted.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from derivations.errors import DerivationInputError

__all__ = ["Budget", "BudgetExceeded", "budget_from_env", "die_with_parent", "run_within_budget", "shared_budget"]

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


#: inside a :func:`shared_budget` block: the seconds its SymPy work has taken so far (None outside)
_spent: float | None = None


@contextmanager
def shared_budget() -> Iterator[None]:
    """One time budget for every :func:`run_within_budget` call inside the block: their seconds add
    up against it (the time between them, training a model or running pdflatex, does not count).
    Nested blocks share the outermost one's."""
    global _spent
    if _spent is not None:
        yield
        return
    _spent = 0.0
    try:
        yield
    finally:
        _spent = None


def _seconds_left(budget: Budget) -> float:
    """What is left of ``budget.seconds`` after the block's SymPy work so far (all of it outside a block)."""
    return budget.seconds if _spent is None else max(budget.seconds - _spent, 0.0)


def _count(seconds: float) -> None:
    global _spent
    if _spent is not None:
        _spent += seconds


def die_with_parent() -> None:
    """In a child process: ask Linux to kill it with SIGKILL when its parent dies; elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _virtual_size() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _child(connection: Any, work: Callable[..., Any], args: tuple, memory_mb: int, seconds: float, parent: int) -> None:
    try:
        import resource

        die_with_parent()
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)
        cpu = math.ceil(seconds) + 1  # SIGXCPU at the soft limit: reported as time
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
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
    """``work(*args)`` in a forked child under ``budget`` (default: :func:`budget_from_env`), with
    the seconds left of the enclosing :func:`shared_budget`; its exceptions are re-raised here; an
    overrun raises :class:`BudgetExceeded` naming ``what``."""
    budget = budget or budget_from_env()
    seconds = _seconds_left(budget)
    shared = "" if _spent is None else " (one budget for all of the command's SymPy work)"
    too_slow = BudgetExceeded(
        f"{what}: SymPy needed more than {budget.seconds:g} s{shared}; simplify the expressions or raise "
        "CADCAM_DERIVE_SECONDS"
    )
    if seconds <= 0:
        raise too_slow
    if "fork" not in multiprocessing.get_all_start_methods():
        started = time.monotonic()
        try:
            return work(*args)
        finally:
            _count(time.monotonic() - started)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(send, work, args, budget.memory_mb, seconds, os.getpid()), daemon=True
    )
    started = time.monotonic()
    process.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise too_slow
        try:
            status, value = receive.recv()
        except EOFError:
            status, value = "died", None
    finally:
        process.kill()
        process.join()
        receive.close()
        _count(time.monotonic() - started)
    if status == "died":  # killed by the OS: for its CPU time (SIGXCPU), else (SIGKILL) for its memory
        status = "time" if process.exitcode == -signal.SIGXCPU else "memory"
    if status == "time":
        raise too_slow
    if status == "memory":
        raise BudgetExceeded(
            f"{what}: SymPy needed more than {budget.memory_mb} MiB; simplify the expression or raise "
            "CADCAM_DERIVE_MEMORY_MB"
        )
    if status == "error":
        exc, _ = value
        raise exc
    return value
