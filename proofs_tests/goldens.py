"""The suite's one golden mechanism: a committed file (or folder of files) that a test's fresh output must
equal, and the one way to rewrite it after an intended change — ``pytest --update-goldens``.

A golden is compared as text. On a difference the test fails with a unified diff (committed → fresh) and
the command that would accept the change; files a folder golden holds that the fresh output does not make
are differences too (nothing may be hand-added to a generated folder). With ``--update-goldens`` the fresh
output is written instead (each file atomically) and the folder's extra files are removed, then the test
passes and says what it rewrote. Review the diff in ``git diff`` before committing it.

Example (a test)::

    def test_the_report_reference(compare_or_update, tmp_path):
        compare_or_update(render(tmp_path), REPORTS / "expected" / "default_spec.tex")
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

__all__ = ["UPDATE_FLAG", "Golden", "diff_against", "write_golden"]

UPDATE_FLAG = "--update-goldens"
#: files a folder golden may hold that no test writes
IGNORED = frozenset({"__pycache__"})
#: the diff a failure shows is cut after this many characters (the whole diff is one command away)
SHOWN = 6000


def _as_files(fresh: str | Mapping[str, str], golden: Path) -> dict[Path, str]:
    if isinstance(fresh, str):
        return {golden: fresh}
    return {golden / name: text for name, text in fresh.items()}


def _extras(fresh: str | Mapping[str, str], golden: Path) -> list[Path]:
    if isinstance(fresh, str) or not golden.is_dir():
        return []
    return sorted(p for p in golden.iterdir() if p.name not in fresh and p.name not in IGNORED)


def diff_against(fresh: str | Mapping[str, str], golden: Path) -> str:
    """The unified diff from the committed golden to ``fresh`` ('' when they are equal).

    Args:
        fresh: the text a test made, or a mapping of file name -> text for a folder golden.
        golden: the committed file (for a str) or folder (for a mapping).
    Returns:
        the diff, with a ``(not made by the test: remove it)`` entry per extra file in a folder golden.
    """
    chunks: list[str] = []
    for path, text in _as_files(fresh, golden).items():
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        label = path.name if isinstance(fresh, str) else f"{golden.name}/{path.name}"
        chunks.extend(
            difflib.unified_diff(
                committed.splitlines(True), text.splitlines(True), f"committed/{label}", f"fresh/{label}"
            )
        )
    for extra in _extras(fresh, golden):
        chunks.append(f"--- committed/{golden.name}/{extra.name}\n+++ (not made by the test: remove it)\n")
    return "".join(chunks)


def write_golden(fresh: str | Mapping[str, str], golden: Path) -> list[Path]:
    """Write ``fresh`` over the golden (each file atomically) and remove a folder golden's extra files.

    Returns:
        the paths that changed.
    """
    changed = []
    for path, text in _as_files(fresh, golden).items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as tmp:
            tmp.write(text)
        os.replace(tmp.name, path)
        changed.append(path)
    for extra in _extras(fresh, golden):
        extra.unlink()
        changed.append(extra)
    return changed


class Golden:
    """``compare_or_update(fresh, golden)``: the fixture's callable (see the module docstring)."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def __call__(self, fresh: str | Mapping[str, str], golden: Path) -> None:
        if self.update:
            for path in write_golden(fresh, golden):
                print(f"updated golden {path}")
            return
        diff = diff_against(fresh, golden)
        if diff:
            pytest.fail(
                f"{golden} differs from the fresh output (diff below). If the change is intended, run "
                f"`pytest {UPDATE_FLAG}` and commit the result; else fix the code.\n{diff[:SHOWN]}",
                pytrace=False,
            )
