"""Write outputs whole or not at all: temporary file in the target directory, then rename."""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cadcam_numeric.errors import CadcamInputError

__all__ = [
    "MARKER",
    "atomic_directory",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_replaceable",
    "finalize_directory",
]


#: a temporary file or folder of a killed run older than this is removed by the next write beside it
STALE_SECONDS = 3600


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove what a run killed with ``kill -9`` left beside ``path``: cadcam's own temporary
    names for it (``.NAME.*.tmp``, ``.NAME.tmp-*``, ``.NAME.old-*``) older than
    :data:`STALE_SECONDS` (a younger one may belong to a run still going). Returns what was removed."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    now = time.time()
    for pattern in (f".{path.name}.*.tmp", f".{path.name}.tmp-*", f".{path.name}.old-*"):
        for stale in path.parent.glob(pattern):
            try:
                if now - stale.lstat().st_mtime < STALE_SECONDS:
                    continue
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
                removed.append(stale)
            except OSError:
                continue
    return removed


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (same directory, so atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def finalize_directory(path: Path) -> None:
    """Give a directory made by ``tempfile.mkdtemp`` (mode 0700), and every regular file written into it
    (some writers, safetensors' among them, create 0600 files), the usual permissions under the umask."""
    umask = _umask()
    for item in path.rglob("*"):
        if item.is_file() and not item.is_symlink():
            os.chmod(item, 0o666 & ~umask)
        elif item.is_dir() and not item.is_symlink():
            os.chmod(item, 0o777 & ~umask)
    os.chmod(path, 0o777 & ~umask)


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


#: the file every directory cadcam writes whole carries: only such a directory is ever replaced
MARKER = ".cadcam-output"


def check_replaceable(target: Path, argument: str = "out") -> None:
    """Refuse, before any work, to replace what cadcam did not make: a file, or a non-empty
    directory without :data:`MARKER`. An empty directory, or one cadcam wrote, is replaceable."""
    target = Path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise CadcamInputError(f"{argument}: {target} exists and is not a directory; give a new or empty directory")
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).is_file():
        raise CadcamInputError(
            f"{argument}: {target} is a non-empty directory cadcam did not write (no {MARKER} file); "
            "cadcam replaces only its own output folders. Give a new or empty directory."
        )


def claim_directory(path: Path, argument: str = "out") -> Path:
    """Make ``path`` cadcam's output folder: it must be new, empty, or already cadcam's (its
    :data:`MARKER`), so that no file of yours in it is overwritten or deleted; it then carries
    the marker. Returns ``path``."""
    path = Path(path)
    check_replaceable(path, argument)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / MARKER).is_file():
        (path / MARKER).write_text("written by cadcam; cadcam may replace what it wrote here\n", encoding="utf-8")
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextmanager
def atomic_directory(target: Path, argument: str = "out") -> Iterator[Path]:
    """Yield a temporary sibling of ``target`` to fill; on success it replaces ``target`` whole.

    ``target`` must be new, empty, or a directory cadcam wrote (:func:`check_replaceable`,
    checked before and again at the swap); it then carries :data:`MARKER`. The swap is one atomic
    exchange where the OS offers it (two renames elsewhere). On any error the temporary directory
    is removed and an existing ``target`` is left as it was.
    """
    target = Path(target)
    check_replaceable(target, argument)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        (tmp / MARKER).write_text("written whole by cadcam; cadcam may replace this directory\n", encoding="utf-8")
        finalize_directory(tmp)
        check_replaceable(target, argument)
        if not target.exists():
            tmp.rename(target)
        elif _exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old content
        else:
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            target.rename(old / "d")
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
