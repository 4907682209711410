"""The error boundary: the one place where what a command raised becomes an exit status and one sentence.

A command's ``run(args)`` returns an :class:`Outcome`; bad input raises
:class:`~cadcam_numeric.errors.CadcamInputError` (or a derivation's
:class:`~derivations.errors.DerivationInputError`), which become exit 2 and one line naming the argument.
``--out`` is claimed here before the command runs (new, empty or cadcam's own) and released again when
the command fails — unless it holds a map store that was begun, which the same command resumes.

=====  =====================================================================================
exit   meaning
=====  =====================================================================================
0      done (:attr:`Outcome.DONE`)
1      a check failed (:attr:`Outcome.CHECK_FAILED`: a proof, a verification, an export check),
       or an internal error (one line; ``--debug`` shows the traceback)
2      bad input: the argument and what was expected
3      the report's ``.tex`` was written, its PDF was not (:attr:`Outcome.TEX_ONLY`)
130    interrupted (Ctrl-C); 143: terminated (SIGTERM); 141: the reader of stdout went away
=====  =====================================================================================
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path

from cadcam_numeric.atomic import OutputClaim, claim_directory
from cadcam_numeric.errors import CadcamInputError
from derivations.errors import DerivationInputError  # SymPy-free

__all__ = ["Outcome", "Terminated", "run_command"]

#: errors that are the user's input, not cadcam's bug: exit 2 with their message
INPUT_ERRORS = (CadcamInputError, DerivationInputError)
#: OSErrors that name a place the user chose (exit 2), not a bug
_PLACE_ERRNOS = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG)
#: a store is begun once its manifest is written; its finished shards are kept for resuming
_STORE_MANIFEST = "store.json"


class Outcome(IntEnum):
    """What a command reports back (its value is the exit status)."""

    DONE = 0
    CHECK_FAILED = 1
    TEX_ONLY = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (the same clean-up), with exit status 143 = 128 + SIGTERM."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` in the main thread (restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _sigterm_deferred() -> Iterator[None]:
    """SIGTERM held back inside the block (main thread only); one that came is delivered at its end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def claim_out(args: argparse.Namespace) -> OutputClaim | None:
    """``--out`` must be new, empty, or a folder cadcam wrote (``atomic.MARKER``). It is normalised
    once (``newdir/../yours`` is ``yours``), claimed (created and marked as cadcam's) and ``args.out``
    becomes that one absolute path, which the command, its checks and the clean-up all use. None when
    the command has no ``--out`` directory."""
    out = getattr(args, "out", None)
    if out is None:
        return None
    if not out.strip() or any(ch in out for ch in "\x00\r\n"):
        raise CadcamInputError(f"--out: {out!r} is not a usable directory name")
    claim = claim_directory(Path(out), "--out")  # new, empty or cadcam's own: nothing of yours is overwritten
    args.out = str(claim.path)
    return claim


def _begun_store(claim: OutputClaim | None) -> bool:
    """Whether the claimed folder holds a map store this command began (what a rerun resumes)."""
    return claim is not None and (claim.path / _STORE_MANIFEST).is_file()


def _say(args: argparse.Namespace, text: str) -> None:
    print(f"cadcam {args.command}: {text}", file=sys.stderr)


def _unexpected(args: argparse.Namespace, exc: BaseException) -> int:
    """Anything not anticipated: exit 1 with one line (``--debug``: the traceback)."""
    if args.debug:
        raise exc
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    _say(
        args,
        f"internal error: {type(exc).__name__}: {message[:300]} (a bug in cadcam, or input it does not anticipate; "
        "rerun with `cadcam --debug ...` for the traceback)",
    )
    return 1


def _os_error(args: argparse.Namespace, exc: OSError) -> int:
    """Exit 2 for a path the user named that cannot be used; any other OSError is unexpected."""
    where = exc.filename or getattr(args, "out", None) or "a path"
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError | FileExistsError):
        _say(args, f"cannot write or read {where} ({exc.strerror or exc})")
        return 2
    if exc.errno in _PLACE_ERRNOS:
        _say(args, f"cannot write {where} ({exc.strerror})")
        return 2
    return _unexpected(args, exc)


def _interrupted(args: argparse.Namespace, exc: KeyboardInterrupt, claim: OutputClaim | None) -> int:
    status = 143 if isinstance(exc, Terminated) else 130
    how = "terminated (SIGTERM)" if status == 143 else "interrupted"
    if _begun_store(claim):
        _say(args, f"{how}; the shards finished so far are kept in {args.out}: rerun the same command to finish")
    else:
        _say(args, f"{how}; nothing half-written was kept")
    return status


def _exit_status(args: argparse.Namespace, exc: Exception | KeyboardInterrupt, claim: OutputClaim | None) -> int:
    """The exit status (and the one line said) for what a command raised."""
    if isinstance(exc, INPUT_ERRORS):
        _say(args, str(exc))
        return 2
    if isinstance(exc, BrokenPipeError):  # the reader of stdout went away (`| head`): 128 + SIGPIPE, as a shell;
        sys.stdout = open(os.devnull, "w")  # what was written stays
        return 141
    if isinstance(exc, OSError):
        return _os_error(args, exc)
    if isinstance(exc, KeyboardInterrupt):
        return _interrupted(args, exc, claim)
    return _unexpected(args, exc)


def run_command(args: argparse.Namespace) -> int:
    """Claim ``--out``, run ``args.func(args)`` and map what it returned or raised to an exit status.

    An output directory the command created is removed again when it fails (exit other than 0, 3 and
    141); a begun store is kept (with a note when shards were finished), so the same command resumes.
    """
    claim: OutputClaim | None = None
    status = 1
    try:
        with _sigterm_deferred():  # a SIGTERM while claiming arrives once `claim` is known, so it is released
            claim = claim_out(args)
        status = int(args.func(args))
        return status
    except (Exception, KeyboardInterrupt) as exc:
        status = _exit_status(args, exc, claim)
        return status
    finally:
        begun = _begun_store(claim)
        if begun and status not in (0, 130, 143) and any((claim.path / "shards").glob("shard-*.npz")):
            _say(args, f"the shards finished so far are kept in {args.out}")
        if claim is not None and status not in (0, 3, 141) and not begun:
            claim.release()  # only what this command made: a folder of yours is never removed
