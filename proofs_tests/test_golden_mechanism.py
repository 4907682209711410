"""The golden mechanism itself: a difference fails with its diff, --update-goldens rewrites (and prunes a
folder golden), and an unchanged golden is left untouched."""

from __future__ import annotations

import pytest

from proofs_tests.goldens import Golden, diff_against, write_golden


def test_a_file_golden_fails_with_the_diff_and_the_update_command(tmp_path):
    golden = tmp_path / "expected.tex"
    golden.write_text("a\nb\n")
    Golden(update=False)("a\nb\n", golden)  # equal: passes
    with pytest.raises(pytest.fail.Exception, match=r"(?s)pytest --update-goldens.*-b\n\+c"):
        Golden(update=False)("a\nc\n", golden)
    assert golden.read_text() == "a\nb\n"


def test_update_rewrites_only_what_changed_and_prunes_a_folder(tmp_path):
    folder = tmp_path / "generated"
    folder.mkdir()
    (folder / "same.py").write_text("x = 1\n")
    (folder / "old.py").write_text("x = 2\n")
    (folder / "hand_added.py").write_text("evil = True\n")
    (folder / "__pycache__").mkdir()
    fresh = {"same.py": "x = 1\n", "old.py": "x = 3\n", "new.py": "y = 0\n"}
    diff = diff_against(fresh, folder)
    assert "+x = 3" in diff and "+y = 0" in diff and "hand_added.py" in diff and "same.py" not in diff
    changed = write_golden(fresh, folder)
    assert sorted(p.name for p in changed) == ["hand_added.py", "new.py", "old.py"]
    assert sorted(p.name for p in folder.iterdir()) == ["__pycache__", "new.py", "old.py", "same.py"]
    assert diff_against(fresh, folder) == ""
    Golden(update=True)({"same.py": "x = 1\n"}, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["__pycache__", "same.py"]
