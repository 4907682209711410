"""``--out`` however it is spelled (issue 23, B1): a folder of yours is never written into, replaced
or deleted, whether the command fails or succeeds; ``..`` after a missing folder, ``.``, symlinked
parents, trailing slashes, relative and absolute paths, drawn from a grammar by Hypothesis."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from cadcam_numeric.atomic import MARKER, remove_stale_temporaries
from cadcam_numeric.cli import main
from cadcam_numeric.errors import CadcamInputError
from proofs_tests.test_pipeline_bundle_cli import trained  # noqa: F401 - the module's fitted bundle fixture

ROOT = Path(__file__).resolve().parents[1]
CUSTOM = ROOT / "derivations" / "examples" / "custom_head.toml"


def user_files(folder: Path) -> None:
    """The user's folder of the issue's reproductions, plus an empty folder and two symlinks."""
    (folder / "userdir" / "sub").mkdir(parents=True)
    (folder / "userdir" / "thesis.txt").write_text("years of work")
    (folder / "userdir" / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (folder / "userdir" / "maps.png").write_bytes(b"my figure")
    (folder / "empty").mkdir()
    (folder / "link").symlink_to(folder / "userdir", target_is_directory=True)
    (folder / "sublink").symlink_to(folder / "userdir" / "sub", target_is_directory=True)
    Image.new("RGB", (32, 32), (10, 200, 30)).save(folder / "img.png")


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: a file's bytes, a symlink's target, a folder's mark."""
    entries: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            entries[key] = ("link", os.readlink(path))
        elif path.is_dir():
            entries[key] = "dir"
        else:
            entries[key] = path.read_bytes()
    return entries


def assert_kept(before: dict[str, object], folder: Path) -> None:
    """Nothing that was there before changed or went away, and no file appeared in a folder of yours
    that held anything (what a command makes is a new folder, or fills an empty one it was given)."""
    after = snapshot(folder)
    changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    assert not changed, changed

    def parent(key: str) -> str:
        return key.rpartition("/")[0]

    occupied = {parent(k) for k in before} | {""}
    dropped = [k for k in after if k not in before and parent(k) in occupied and after[k] != "dir"]
    assert not dropped, dropped


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)


@pytest.fixture
def sandbox(tmp_path) -> Iterator[Path]:
    user_files(tmp_path)
    with inside(tmp_path):
        yield tmp_path


def test_missing_parent_then_dotdot_never_takes_a_users_folder(trained, sandbox, capsys):  # noqa: F811
    """The issue's five reproductions: each refused (exit 2, one sentence), userdir byte for byte kept."""
    before = snapshot(sandbox)
    bundle = str(trained[3])
    commands = [
        ["explain", "missing.png", "--bundle", bundle, "--out", "newdir/../userdir"],
        ["derive", str(CUSTOM), "--out", "newdir/../userdir", "--cases", "2"],
        ["report", "--no-verify", "--bundle", "nobundle", "--out", "newdir/../userdir"],
        ["explain", "img.png", "--store", "--bundle", bundle, "--out", "nope/deeper/../../userdir"],
        ["explain", "img.png", "--bundle", bundle, "--out", "newdir/../userdir"],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "userdir is a non-empty directory cadcam did not write" in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
        assert_kept(before, sandbox)
        assert not (sandbox / "newdir").exists() and not (sandbox / "nope").exists()  # normalised: never made


def test_a_failing_command_removes_only_what_it_made(trained, sandbox, capsys):  # noqa: F811
    before = snapshot(sandbox)
    assert main(["explain", "missing.png", "--bundle", str(trained[3]), "--out", "a/b/../c"]) == 2
    assert "missing.png does not exist" in capsys.readouterr().err
    assert not (sandbox / "a").exists()  # a/ and a/c were made by this command: both removed
    assert main(["explain", "missing.png", "--bundle", str(trained[3]), "--out", "empty/"]) == 2
    assert list((sandbox / "empty").iterdir()) == []  # your empty folder stays, without cadcam's marker
    assert_kept(before, sandbox)


def test_a_symlink_as_the_last_name_is_refused_however_it_is_reached(trained, sandbox, capsys):  # noqa: F811
    before = snapshot(sandbox)
    for spelling in ("link", "missing/../link", f"{sandbox}/nope/../sublink/"):
        assert main(["explain", "img.png", "--bundle", str(trained[3]), "--out", spelling]) == 2, spelling
        assert "is a symlink; give a new or empty directory" in capsys.readouterr().err
    assert_kept(before, sandbox)
    assert snapshot(sandbox) == before


def test_a_command_that_succeeds_writes_where_the_path_leads(trained, sandbox):  # noqa: F811
    assert main(["explain", "img.png", "--bundle", str(trained[3]), "--out", "newdir/../maps/"]) == 0
    assert (sandbox / "maps" / "maps.png").is_file() and not (sandbox / "newdir").exists()  # never needed
    assert main(["explain", "img.png", "--bundle", str(trained[3]), "--out", "sublink/../../maps2"]) == 0
    assert (sandbox / "maps2" / "maps.png").is_file()  # sublink/.. is userdir, its .. the sandbox


def test_the_library_store_writer_checks_ownership_first(trained, sandbox):  # noqa: F811
    """explain_to_store from Python: a folder of yours holding a store.json and a .x.tmp is refused
    before anything in it is read, rewritten or deleted."""
    from cadcam_numeric.pipeline.explain_store import explain_to_store

    mine = sandbox / "userdir"
    (mine / "store.json").write_text(json.dumps({"format": "cadcam-map-store/1", "complete": False}))
    (mine / ".notes.x1y2z3w4.tmp").write_text("mine")
    before = snapshot(sandbox)
    for spelling in (mine, sandbox / "newdir" / ".." / "userdir"):
        with pytest.raises(CadcamInputError, match="non-empty directory cadcam did not write"):
            explain_to_store(trained[3], str(sandbox / "img.png"), spelling, progress=False)
        assert_kept(before, sandbox)


def test_stale_temporaries_are_only_cadcams_exact_shape(tmp_path):
    """A user's ``.out.old-backup`` beside ``--out out`` is never removed (hardening 3)."""
    import time

    from cadcam_numeric.atomic import STALE_SECONDS

    theirs = [".out.old-backup", ".out.tmp-mine", ".out.notes.tmp", ".out.cadcam-tmp-abcdefgh"]  # last: no marker
    for name in theirs:
        (tmp_path / name).mkdir() if "tmp-" in name else (tmp_path / name).write_text("mine")
    ours_file = tmp_path / ".out.cadcam-ab12cd34.tmp"
    ours_file.write_text("half")
    ours_dir = tmp_path / ".out.cadcam-old-zz99yy88"
    ours_dir.mkdir()
    (ours_dir / MARKER).write_text("cadcam's")
    past = time.time() - STALE_SECONDS - 60
    for p in tmp_path.iterdir():
        os.utime(p, (past, past))
    removed = remove_stale_temporaries(tmp_path / "out")
    assert sorted(p.name for p in removed) == sorted([ours_file.name, ours_dir.name])
    assert all((tmp_path / name).exists() for name in theirs)


# --- the property: any spelling, any command, nothing of yours changes ---------------------------

#: the grammar's components: folders that exist, that do not, the two dot names, symlinks to folders
COMPONENTS = ["userdir", "sub", "empty", "newdir", "nope", "..", ".", "link", "sublink", "maps"]


@st.composite
def out_paths(draw) -> str:
    parts = draw(st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=5))
    if parts.count("..") > 2:  # the sandbox lies three folders deep: never above the test's own folder
        parts = [p for p in parts if p != ".."] + [".."] * 2
    text = "/".join(parts) + draw(st.sampled_from(["", "/", "//"]))
    return draw(st.sampled_from(["", "ABS/"])) + text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    out=out_paths(),
    command=st.sampled_from(["explain-missing", "report-nobundle", "explain-ok", "derive-bad", "derive-ok"]),
)
def test_no_spelling_of_out_changes_a_file_the_command_did_not_create(trained, out, command):  # noqa: F811
    bundle = str(trained[3])
    with tempfile.TemporaryDirectory() as base:
        sandbox = Path(base) / "a" / "b" / "c"
        sandbox.mkdir(parents=True)
        user_files(sandbox)
        before = snapshot(Path(base))
        path = out.replace("ABS/", f"{sandbox}/")
        argv = {
            "explain-missing": ["explain", "missing.png", "--bundle", bundle, "--out", path],
            "report-nobundle": ["report", "--no-verify", "--bundle", "nobundle", "--out", path],
            "explain-ok": ["explain", "img.png", "--bundle", bundle, "--out", path],
            "derive-bad": ["derive", "no-such-spec.toml", "--out", path],
            "derive-ok": ["derive", str(CUSTOM), "--out", path, "--cases", "2"],
        }[command]
        with inside(sandbox):
            status = main(argv)
        event(f"{command} exit {status}")  # --hypothesis-show-statistics: how often each command succeeds
        assert status in (0, 2), (argv, status)
        assert_kept(before, Path(base))
        if not command.endswith("-ok"):
            assert status == 2
            assert snapshot(Path(base)) == before  # a failure leaves the tree exactly as it was
