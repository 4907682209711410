"""Write outputs whole or not at all: temporary file in the target directory, then rename.

Every path is normalised once (:func:`resolved_path`) and every check, write and clean-up uses that
one path; a folder counts as made by this command only when this command's own ``mkdir`` made it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cadcam_numeric.errors import CadcamInputError

__all__ = [
    "MARKER",
    "OutputClaim",
    "atomic_directory",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_replaceable",
    "claim_directory",
    "file_sha256",
    "remove_stale_temporaries",
    "resolved_path",
]


#: a temporary file or folder of a killed run older than this is removed by the next write beside it
STALE_SECONDS = 3600
#: the file every directory cadcam writes whole carries: only such a directory is ever replaced
MARKER = ".cadcam-output"
#: cadcam's temporaries beside ``NAME``: ``.NAME.cadcam-XXXXXXXX.tmp`` (a file being written) and
#: ``.NAME.cadcam-tmp-XXXXXXXX`` / ``.NAME.cadcam-old-XXXXXXXX`` (folders, each holding :data:`MARKER`);
#: ``XXXXXXXX`` is :mod:`tempfile`'s eight-character random suffix
_FILE_PREFIX, _FILE_SUFFIX = ".cadcam-", ".tmp"
_DIR_PREFIXES = (".cadcam-tmp-", ".cadcam-old-")
_RANDOM = r"[a-z0-9_]{8}"


def resolved_path(path: str | os.PathLike) -> Path:
    """The absolute path ``path`` names once its missing folders exist: symlinks of the part that
    exists resolved, and each ``..`` applied after the folder before it (``newdir/../x`` is ``./x``
    whether or not ``newdir`` exists; ``link/../x`` is beside the link's target, as the kernel reads it).

    >>> resolved_path("/tmp/no-such-folder/../x").as_posix()
    '/tmp/x'
    """
    return Path(os.path.realpath(os.fspath(path)))


def _temporary_pattern(name: str) -> re.Pattern[str]:
    stem = re.escape(f".{name}")
    dirs = "|".join(re.escape(p) for p in _DIR_PREFIXES)
    return re.compile(rf"{stem}(?:{re.escape(_FILE_PREFIX)}{_RANDOM}{re.escape(_FILE_SUFFIX)}|(?:{dirs}){_RANDOM})")


def _is_cadcam_temporary(item: Path) -> bool:
    """A temporary folder is cadcam's only when it carries the marker; a file only by its exact name."""
    if item.is_symlink():
        return False
    if item.is_dir():
        return (item / MARKER).is_file() and not (item / MARKER).is_symlink()
    return item.is_file()


def remove_stale_temporaries(path: Path, min_age: float = STALE_SECONDS) -> list[Path]:
    """Remove what a run killed with ``kill -9`` left beside ``path``: cadcam's own temporary
    names for it, exactly (module constants; a folder must also carry :data:`MARKER`), older than
    ``min_age`` seconds (a younger one may belong to a run still going). Returns what was removed.
    ``.out.old-backup`` or ``.out.notes`` beside ``out`` are never touched."""
    path = resolved_path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    pattern, now = _temporary_pattern(path.name), time.time()
    for stale in path.parent.glob(f".{glob_escape(path.name)}.cadcam-*"):
        try:
            if not pattern.fullmatch(stale.name) or not _is_cadcam_temporary(stale):
                continue
            if now - stale.lstat().st_mtime < min_age:
                continue
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            removed.append(stale)
        except OSError:
            continue
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def partial_files(folder: Path) -> list[Path]:
    """cadcam's temporary files (``.NAME.cadcam-XXXXXXXX.tmp``) directly in ``folder``."""
    shape = re.compile(rf"\..+{re.escape(_FILE_PREFIX)}{_RANDOM}{re.escape(_FILE_SUFFIX)}")
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if shape.fullmatch(p.name) and p.is_file() and not p.is_symlink()]


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (same directory, so atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{_FILE_PREFIX}", suffix=_FILE_SUFFIX)
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


def _write_marker(folder: Path, text: str) -> None:
    (folder / MARKER).write_text(text, encoding="utf-8")


def check_replaceable(target: Path, argument: str = "out") -> None:
    """Refuse, before any work, to replace what cadcam did not make: a file, a symlink, or a non-empty
    directory without :data:`MARKER`. An empty directory, or one cadcam wrote, is replaceable. The
    test is made on :func:`resolved_path` of ``target`` (``missing/../yours`` is ``yours``)."""
    if _leaf_is_symlink(Path(target)):
        raise CadcamInputError(f"{argument}: {target} is a symlink; give a new or empty directory")
    path = resolved_path(target)
    if path.exists() and not path.is_dir():
        raise CadcamInputError(f"{argument}: {target} exists and is not a directory; give a new or empty directory")
    if path.is_dir() and any(path.iterdir()) and not _is_marked(path):
        raise CadcamInputError(
            f"{argument}: {target} is a non-empty directory cadcam did not write (no {MARKER} file); "
            "cadcam replaces only its own output folders. Give a new or empty directory."
        )


def _leaf_is_symlink(path: Path) -> bool:
    """Whether the last name of ``path`` is a symbolic link, wherever its folder is (``missing/../link``
    too: the folder part is normalised first, the leaf is not followed)."""
    if path.name in ("", ".", ".."):
        return False
    return (resolved_path(path.parent) / path.name).is_symlink()


def _is_marked(folder: Path) -> bool:
    marker = folder / MARKER
    return marker.is_file() and not marker.is_symlink()


@dataclass(frozen=True)
class OutputClaim:
    """An output folder this command may write: ``path`` (absolute, :func:`resolved_path`), whether
    this command's own ``mkdir`` made it (``created``), the parent folders it made on the way
    (``parents``, outermost first) and whether it added the :data:`MARKER` (``marked``)."""

    path: Path
    created: bool
    parents: tuple[Path, ...] = ()
    marked: bool = False

    def release(self) -> None:
        """After a failure, undo this claim and nothing else: a folder this command made is removed
        (with what the command wrote in it), then the parents it made, each only while empty; in a
        folder that was there before, only the marker it added, and only if nothing else is there."""
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        elif self.marked and self.path.is_dir() and [p.name for p in self.path.iterdir()] == [MARKER]:
            (self.path / MARKER).unlink(missing_ok=True)
        for parent in reversed(self.parents):
            try:
                parent.rmdir()  # only while empty: anything else put there stays
            except OSError:
                break


def _make_parents(folder: Path) -> tuple[Path, ...]:
    """``mkdir -p folder``, returning the folders this call made (outermost first)."""
    missing: list[Path] = []
    for parent in (folder, *folder.parents):
        if parent.exists() or parent.is_symlink():
            break
        missing.append(parent)
    made: list[Path] = []
    for parent in reversed(missing):
        try:
            parent.mkdir()
        except FileExistsError:
            if not parent.is_dir():
                raise
            continue  # another process made it: not ours
        made.append(parent)
    return tuple(made)


def claim_directory(path: Path, argument: str = "out") -> OutputClaim:
    """Make ``path`` cadcam's output folder: it must be new, empty, or already cadcam's (its
    :data:`MARKER`), so that no file of yours in it is overwritten or deleted; it then carries
    the marker. ``path`` is normalised once (:func:`resolved_path`), and whether this command made
    it is decided by its own ``mkdir`` of the leaf, never by an earlier ``exists()``.

    >>> import tempfile
    >>> claim = claim_directory(Path(tempfile.mkdtemp()) / "missing" / ".." / "maps")
    >>> claim.created, claim.path.name, (claim.path / MARKER).is_file()
    (True, 'maps', True)
    """
    if _leaf_is_symlink(Path(path)):
        raise CadcamInputError(f"{argument}: {path} is a symlink; give a new or empty directory")
    target = resolved_path(path)
    if target == Path(target.anchor) or target == resolved_path(Path.home()):
        raise CadcamInputError(
            f"{argument}: {path} is the filesystem root or your home directory; give a folder for the outputs"
        )
    if target.exists() and not target.is_dir():
        raise CadcamInputError(f"{argument}: {target} is a file; expected a directory (existing or to be created)")
    parents = _make_parents(target.parent)
    try:
        target.mkdir()
        created = True
    except FileExistsError:
        created = False
        try:
            check_replaceable(target, argument)
        except BaseException:
            OutputClaim(target, False, parents).release()
            raise
    marked = not _is_marked(target)
    if marked:
        _write_marker(target, "written by cadcam; cadcam may replace what it wrote here\n")
    return OutputClaim(target, created, parents, marked)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _temporary_folder(target: Path, kind: str) -> Path:
    """A new marked folder beside ``target`` of cadcam's temporary shape (``kind``: tmp or old)."""
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.cadcam-{kind}-"))
    _write_marker(folder, "a temporary folder of cadcam's; removed when its run ends\n")
    return folder


@contextmanager
def atomic_directory(target: Path, argument: str = "out") -> Iterator[Path]:
    """Yield a temporary sibling of ``target`` to fill; on success it replaces ``target`` whole.

    ``target`` must be new, empty, or a directory cadcam wrote (:func:`check_replaceable`,
    checked before and again at the swap); it then carries :data:`MARKER`. The swap is one atomic
    exchange where the OS offers it (two renames elsewhere). On any error the temporary directory
    is removed and an existing ``target`` is left as it was.
    """
    check_replaceable(target, argument)
    target = resolved_path(target)
    _make_parents(target.parent)
    remove_stale_temporaries(target)
    tmp = _temporary_folder(target, "tmp")
    try:
        yield tmp
        _write_marker(tmp, "written whole by cadcam; cadcam may replace this directory\n")
        finalize_directory(tmp)
        check_replaceable(target, argument)
        if not target.exists():
            tmp.rename(target)
        elif _exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old content
        else:
            old = _temporary_folder(target, "old")
            target.rename(old / "d")
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_sha256(path: Path) -> str:
    """The sha256 of a file (hex), read in 1 MiB chunks: the identity bundles and weights are checked by."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
