"""Files a user is handed, and careless input (issue 13): nothing runs, nothing of theirs is deleted
or leaked, nothing silently wrong, every refusal exit 2 naming what was wrong."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from cadcam_numeric.atomic import MARKER
from cadcam_numeric.cli import main
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.bundle import load_bundle
from cadcam_numeric.pipeline.data import load_data, read_image
from cadcam_numeric.spec.architecture import spec_from_text
from proofs_tests.test_pipeline_bundle_cli import trained  # noqa: F401 - the module's fitted bundle fixture

ROOT = Path(__file__).resolve().parents[1]
PAPER = (ROOT / "derivations" / "examples" / "paper_head.toml").read_text()
HAVE_PDFLATEX = shutil.which("pdflatex") is not None
needs_latex = pytest.mark.skipif(not HAVE_PDFLATEX, reason="pdflatex not installed")


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def rewrite_tensors(bundle: Path, edit) -> None:
    """Edit the tensors and re-record their sha256 (a consistent but hostile bundle)."""
    import hashlib

    tensors = load_file(str(bundle / "tensors.safetensors"))
    edit(tensors)
    save_file(tensors, str(bundle / "tensors.safetensors"))
    doc = json.loads((bundle / "bundle.json").read_text())
    doc["tensors"]["sha256"] = hashlib.sha256((bundle / "tensors.safetensors").read_bytes()).hexdigest()
    (bundle / "bundle.json").write_text(json.dumps(doc))


def rewrite_json(bundle: Path, edit) -> None:
    doc = json.loads((bundle / "bundle.json").read_text())
    edit(doc)
    (bundle / "bundle.json").write_text(json.dumps(doc))


# --- code execution ------------------------------------------------------------------------------


@needs_latex
def test_a_latexmkrc_in_the_output_folder_is_never_run(tmp_path):
    from reports.build import build_report

    out, marker = tmp_path / "out", tmp_path / "marker"
    out.mkdir()
    (out / MARKER).write_text("a folder cadcam wrote, where someone then planted files\n")
    for name in ("latexmkrc", ".latexmkrc"):
        (out / name).write_text(f'system("touch {marker}");\n')
    (out / "texmf.cnf").write_text("shell_escape = t\n")
    build = build_report(out, verify=False)
    assert build.pdf is not None and build.pdf.is_file()
    assert not marker.exists()
    # built elsewhere: only the results (the PDF, its .tex and LaTeX's log) were moved in
    assert not list(out.glob("*.aux")) and [p.name for p in out.glob("*.log")] == ["report.log"]


@needs_latex
def test_the_pdf_builds_without_home_and_with_any_text_in_names(tmp_path, monkeypatch):
    from reports.build import build_report
    from reports.view import view_of_architecture

    monkeypatch.delenv("HOME", raising=False)
    spec = spec_from_text(PAPER.replace('name = "paper:', 'name = "Müller & 漢字 🙂 50% $x$ paper:'))
    from cadcam_numeric.spec.code import empty_code

    build = build_report(tmp_path / "r", view_of_architecture(spec, empty_code(spec)), verify=False)
    assert build.pdf is not None
    text = subprocess.run(["pdftotext", str(build.pdf), "-"], capture_output=True, text=True).stdout
    import unicodedata

    assert "Müller & [U+6F22][U+5B57] [U+1F642] 50% $x$ paper" in unicodedata.normalize("NFC", text)


def test_a_report_without_pdf_removes_the_stale_pdf_of_an_earlier_build(tmp_path, monkeypatch):
    from reports.build import build_report

    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text("cadcam's\n")
    (out / "report.pdf").write_bytes(b"%PDF-1.5 from an earlier build")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    build = build_report(out, verify=False)
    assert build.pdf is None and build.tex.is_file() and not (out / "report.pdf").exists()


# --- data loss and leaks -------------------------------------------------------------------------


def test_out_never_overwrites_a_users_files(trained, tmp_path, capsys):  # noqa: F811
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "maps.png").write_bytes(b"my figure")
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    assert main(["explain", str(tmp_path / "x.png"), "--bundle", str(trained[3]), "--out", str(mine)]) == 2
    assert "non-empty directory cadcam did not write" in capsys.readouterr().err
    assert (mine / "maps.png").read_bytes() == b"my figure"
    ours = tmp_path / "ours"
    assert main(["explain", str(tmp_path / "x.png"), "--bundle", str(trained[3]), "--out", str(ours)]) == 0
    assert main(["explain", str(tmp_path / "x.png"), "--bundle", str(trained[3]), "--out", str(ours)]) == 0


def test_out_never_deletes_a_users_folder_or_file(tmp_path, capsys):
    spec = ROOT / "derivations" / "examples" / "paper_head.toml"
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    (home / "thesis.txt").write_text("years of work")
    (tmp_path / "sibling.txt").write_text("unrelated")
    assert main(["derive", str(spec), "--out", str(home)]) == 2
    assert "is a non-empty directory cadcam did not write" in capsys.readouterr().err
    assert (home / "thesis.txt").read_text() == "years of work" and (home / "sub").is_dir()
    assert (tmp_path / "sibling.txt").exists()
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    assert main(["derive", str(spec), "--out", str(afile)]) == 2
    assert afile.read_text() == "mine"
    capsys.readouterr()
    own = tmp_path / "derived"
    assert main(["derive", str(spec), "--out", str(own)]) == 0
    assert (own / MARKER).is_file()
    assert main(["derive", str(spec), "--out", str(own)]) == 0  # cadcam's own output: replaced on a rerun


def test_train_refuses_a_foreign_bundle_folder_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "bundle").mkdir(parents=True)
    (out / MARKER).write_text("cadcam's run folder\n")  # cadcam's folder, with a folder of yours inside
    (out / "bundle" / "mine.txt").write_text("not cadcam's")
    assert main(["demo", "--out", str(out), "--epochs", "1", "--no-report"]) == 2
    assert "run/bundle is a non-empty directory cadcam did not write" in capsys.readouterr().err
    assert (out / "bundle" / "mine.txt").read_text() == "not cadcam's"
    assert not (out / "summary.json").exists()


def test_the_report_copies_only_the_bundles_own_regular_figures(trained, tmp_path):  # noqa: F811
    from reports.build import build_report

    run = tmp_path / "run"
    bundle = copy_of(trained[3], run)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(secret)
    secret.chmod(0o600)
    (run / "fig6_contribution_ratios.png").symlink_to(secret)
    os.mkfifo(run / "fig7_pca_scatter.png")  # would block a reader forever
    Image.new("RGB", (4, 4)).save(run / "fig5_validation_accuracy.png")
    (run / "fig8_maps.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # corrupt: would stop pdflatex
    (run / "table3.csv").symlink_to(secret)
    build = build_report(tmp_path / "r", bundle=bundle, verify=False, pdf=False)
    copied = sorted(p.name for p in (tmp_path / "r").glob("fig[5-8]*.png"))
    assert copied == ["fig5_validation_accuracy.png"]
    assert "fig6_contribution_ratios" not in build.tex.read_text()


# --- bundles: values and sizes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t["head.1.weight"].__setitem__((0, 0), float("nan")), "tensor 'head.1.weight' holds NaN or Inf"),
        (lambda t: t["pca.mean"].__setitem__(0, float("inf")), "tensor 'pca.mean' holds NaN or Inf"),
        (
            lambda t: t["svm.rbf.block0.support_vectors"].__setitem__((0, 0), float("nan")),
            "tensor 'svm.rbf.block0.support_vectors' holds NaN",
        ),
    ],
)
def test_non_finite_tensors_are_refused_by_name(trained, tmp_path, edit, message):  # noqa: F811
    bundle = copy_of(trained[3], tmp_path)
    rewrite_tensors(bundle, edit)
    with pytest.raises(CadcamInputError, match=message):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1.0, "gamma must be > 0"),
        (0.0, "gamma must be > 0"),
        ("1.0", "gamma must be a finite number"),
        (True, "gamma must be a finite number"),
    ],
)
def test_kernel_parameters_are_checked_on_load(trained, tmp_path, value, message):  # noqa: F811
    bundle = copy_of(trained[3], tmp_path)
    rewrite_json(bundle, lambda d: d["svms"]["rbf"]["blocks"][0]["params"].update(gamma=value))
    with pytest.raises(CadcamInputError, match=message):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["head"].update(widths=[10**9, 30, 20]), r"head.widths\[0\] must be an integer in 1..65536"),
        (lambda d: d["head"].update(widths=[65536, 65536, 65536]), "the head would hold .* weights, more than"),
        (lambda d: d["backbone"].update(input_size=2000), "backbone.input_size must be an integer in 8..1024"),
        (lambda d: d["head"].update(n_classes=-3), "head.n_classes must be an integer in 2..100000"),
    ],
)
def test_sizes_are_bounded_before_anything_is_allocated(trained, tmp_path, edit, message, monkeypatch):  # noqa: F811
    import cadcam_numeric.pipeline.bundle as bundle_module

    bundle = copy_of(trained[3], tmp_path)
    rewrite_json(bundle, edit)
    monkeypatch.setattr(bundle_module, "make_head", lambda *a, **k: pytest.fail("a head was built first"))
    monkeypatch.setattr(bundle_module, "load_file", lambda *a, **k: pytest.fail("the tensors were read first"))
    with pytest.raises(CadcamInputError, match=message):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["svms"]["rbf"]["blocks"][0].update(params={}), r"params must give exactly \['gamma'\]"),
        (lambda d: d["head"].update(activation="swishy"), "head.activation 'swishy' is not in the catalogue"),
        (lambda d: d["config"].update(seed=2**64), r"config.seed must be an integer in 0..4294967295"),
        (lambda d: d["svms"]["rbf"].update(scaler=True), "scaler says True but the scaler tensors are missing"),
        (lambda d: d["svms"].pop("rbf-std"), "default_svm 'rbf-std' is not one of"),
        (lambda d: d["pca"].update(whiten="yes"), "pca.whiten must be true or false"),
        (
            lambda d: d["backbone"].update(name="vgg16", weights_source="/etc/passwd", weights_sha256=None),
            "weights_sha256 is required when the bundle names a weights file",
        ),
    ],
)
def test_every_reader_refuses_a_malformed_document(trained, tmp_path, edit, message):  # noqa: F811
    """load_bundle (explain, evaluate) and the report's reader refuse the same documents."""
    from reports.build import view_of_bundle

    bundle = copy_of(trained[3], tmp_path)
    rewrite_json(bundle, edit)
    with pytest.raises(CadcamInputError, match=message):
        load_bundle(bundle)
    with pytest.raises(CadcamInputError, match=message):
        view_of_bundle(bundle)


def test_a_poly_degree_is_bounded():
    poly = PAPER.replace('kernel = "rbf"', 'kernel = "poly"').replace("{ gamma = 1.0 }", "{ degree = 1e300 }")
    with pytest.raises(CadcamInputError, match=r"degree: expected an integer in 1..100"):
        spec_from_text(poly)


def test_broken_files_of_a_bundle_are_refused_not_crashed_on(trained, tmp_path):  # noqa: F811
    bundle = copy_of(trained[3], tmp_path)
    import hashlib

    header = struct.pack("<Q", 10**12) + b"{}"  # a safetensors header that claims a terabyte
    (bundle / "tensors.safetensors").write_bytes(header)
    rewrite_json(
        bundle, lambda d: d["tensors"].update(sha256=hashlib.sha256(header).hexdigest())
    )  # consistent sha: the parser itself must refuse
    with pytest.raises(CadcamInputError, match="not a valid safetensors file"):
        load_bundle(bundle)
    (bundle / "bundle.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CadcamInputError, match=r"bundle.json is not valid JSON|not a cadcam bundle"):
        load_bundle(bundle)


def test_spec_kernel_parameters_must_make_sense():
    with pytest.raises(CadcamInputError, match=r"svm.parameters.gamma: expected a positive number"):
        spec_from_text(PAPER.replace("gamma = 1.0", "gamma = -1.0"))
    poly = PAPER.replace('kernel = "rbf"', 'kernel = "poly"').replace("{ gamma = 1.0 }", "{ degree = 0 }")
    with pytest.raises(CadcamInputError, match=r"svm.parameters.degree: expected an integer in 1..100"):
        spec_from_text(poly)


# --- images and datasets -------------------------------------------------------------------------


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    image = read_image(tmp_path / "deep.png", None)
    expected = np.round(ramp / 65535 * 255).astype(np.uint8)
    assert np.array_equal(image[0], expected) and np.array_equal(image[0], image[2])
    assert (image == 255).mean() < 0.01  # before: 99.5 % saturated


def test_float_images_must_lie_in_0_1(tmp_path):
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(tmp_path / "half.tiff")
    assert int(read_image(tmp_path / "half.tiff", None)[0, 0, 0]) == 128
    Image.fromarray(np.full((8, 8), np.nan, dtype=np.float32)).save(tmp_path / "nan.tiff")
    with pytest.raises(CadcamInputError, match=r"nan.tiff as an image .*finite values in \[0, 1\]"):
        read_image(tmp_path / "nan.tiff", None)


def test_corrupt_and_bomb_images_are_refused_by_name(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(CadcamInputError, match=r"image: cannot read .*bad.png"):
        read_image(tmp_path / "bad.png", 32)
    big = io.BytesIO()
    Image.new("1", (20000, 20000)).save(big, "PNG")  # 400 M pixels in a few kB
    (tmp_path / "bomb.png").write_bytes(big.getvalue())
    with pytest.raises(CadcamInputError, match=r"bomb.png"):
        read_image(tmp_path / "bomb.png", 32)


def test_a_fifo_among_images_is_skipped_not_waited_on(trained, tmp_path):  # noqa: F811
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(folder / "ok.png")
    os.mkfifo(folder / "x.png")
    out = tmp_path / "maps"
    assert main(["explain", str(folder), "--bundle", str(trained[3]), "--out", str(out)]) == 0
    assert np.load(out / "maps.npz")["gradcam"].shape[0] == 1
    assert main(["explain", str(folder / "x.png"), "--bundle", str(trained[3]), "--out", str(tmp_path / "m2")]) == 2


def _npz_with_header(path: Path, arrays: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """An .npz whose members claim the given shapes but hold no data (a decompression bomb's header)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, (shape, dtype) in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                buffer, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
            )
            archive.writestr(f"{name}.npy", buffer.getvalue())


def test_medmnist_files_are_checked_before_they_are_unpacked(tmp_path):
    bomb = tmp_path / "bomb.npz"
    arrays = {f"{s}_{k}": ((100_000, 224, 224, 3), "u1") for s in ("train", "val", "test") for k in ("images",)}
    arrays.update({f"{s}_labels": ((100_000, 1), "i8") for s in ("train", "val", "test")})
    _npz_with_header(bomb, arrays)
    with pytest.raises(CadcamInputError, match=r"unpacks to 42.1 GiB"):
        load_data(f"medmnist:{bomb}")
    nan = tmp_path / "nan.npz"
    images = np.full((4, 8, 8), np.nan, dtype=np.float32)
    labels = np.zeros((4, 1), dtype=np.int64)
    np.savez(
        nan,
        **{f"{s}_images": images for s in ("train", "val", "test")},
        **{f"{s}_labels": labels for s in ("train", "val", "test")},
    )
    with pytest.raises(CadcamInputError, match="train_images must be uint8"):
        load_data(f"medmnist:{nan}")
    mismatched = tmp_path / "mismatched.npz"
    good = np.zeros((4, 8, 8), dtype=np.uint8)
    np.savez(
        mismatched,
        **{f"{s}_images": good for s in ("train", "val", "test")},
        **{f"{s}_labels": np.zeros((3, 1), np.int64) for s in ("train", "val", "test")},
    )
    with pytest.raises(CadcamInputError, match="train_labels must hold one integer per image"):
        load_data(f"medmnist:{mismatched}")


# --- the error boundary ----------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_exit_1_and_debug_shows_it(tmp_path, monkeypatch, capsys):
    import cadcam_numeric.cli as cli

    def boom(args):
        raise ZeroDivisionError("deep inside")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "verify", boom))
    assert main(["verify"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ZeroDivisionError: deep inside" in err and "--debug" in err
    assert "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "verify"])


def _with_func(parser, command, func):
    for action in parser._subparsers._group_actions:
        action.choices[command].set_defaults(func=func)
    return parser


def test_a_read_only_output_is_exit_2_naming_it(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    assert main(["derive", str(ROOT / "derivations/examples/paper_head.toml"), "--out", str(ro / "d")]) == 2
    assert str(ro) in capsys.readouterr().err


def test_torch_tensors_in_a_bundle_are_never_unpickled(trained, tmp_path):  # noqa: F811
    bundle = copy_of(trained[3], tmp_path)
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"x": Payload()}, bundle / "tensors.safetensors")
    import hashlib

    rewrite_json(
        bundle,
        lambda d: d["tensors"].update(sha256=hashlib.sha256((bundle / "tensors.safetensors").read_bytes()).hexdigest()),
    )
    with pytest.raises(CadcamInputError):
        load_bundle(bundle)
    assert not marker.exists()


# --- interrupted runs and concurrent readers -----------------------------------------------------


def test_what_a_killed_run_left_is_removed_by_the_next_write(tmp_path):
    from cadcam_numeric.atomic import STALE_SECONDS, atomic_directory, atomic_write_text

    old = tmp_path / ".maps.png.cadcam-x1y2z3w4.tmp"
    old.write_bytes(b"half a png")
    young = tmp_path / ".maps.png.cadcam-z9z9z9z9.tmp"
    young.write_bytes(b"a run still going")
    old_dir = tmp_path / ".bundle.cadcam-tmp-abcdefgh"
    old_dir.mkdir()
    (old_dir / MARKER).write_text("cadcam's temporary folder")
    (old_dir / "tensors.safetensors").write_bytes(b"partial")
    past = time.time() - STALE_SECONDS - 60
    for p in (old, old_dir):
        os.utime(p, (past, past))
    mine = tmp_path / ".maps.png.notes"  # not cadcam's pattern: never touched
    mine.write_text("mine")
    os.utime(mine, (past, past))
    atomic_write_text(tmp_path / "maps.png", "new")
    assert not old.exists() and young.exists() and mine.exists()
    with atomic_directory(tmp_path / "bundle") as tmp:
        (tmp / "x").write_text("x")
    assert not old_dir.exists() and (tmp_path / "bundle" / "x").is_file()


def test_a_reader_never_sees_the_folder_missing_during_a_swap(tmp_path):
    import threading

    from cadcam_numeric.atomic import atomic_directory

    target = tmp_path / "bundle"
    with atomic_directory(target) as tmp:
        (tmp / "bundle.json").write_text("0")
    missing, stop = [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            if not (target / "bundle.json").is_file():
                missing.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            with atomic_directory(target) as tmp:
                (tmp / "bundle.json").write_text(str(i))
    finally:
        stop.set()
        reader.join()
    assert not missing and (target / "bundle.json").read_text() == "299"


def _assert_orphan_dies(script: str) -> None:
    """Run ``script`` (it prints its child's pid), kill it with SIGKILL: the child must die within 5 s."""
    import signal
    import sys

    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{pid}/stat") as fh:  # a zombie awaiting its reaper counts as gone
            if fh.read().split()[2] == "Z":
                return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("the child outlived its killed parent")


def test_pdflatex_dies_with_a_killed_cadcam():
    """The report's pdflatex is started with PR_SET_PDEATHSIG: kill -9 of cadcam leaves no orphan
    (shown with `sleep` in its place, started the same way)."""
    _assert_orphan_dies(
        "import subprocess, sys\n"
        "from derivations.budget import die_with_parent\n"
        "child = subprocess.Popen(['sleep', '60'], preexec_fn=die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )


def test_the_sympy_child_dies_with_a_killed_cadcam():
    """Hardening 2: the derive budget's forked child (here a 60 s sleep) dies with its parent."""
    _assert_orphan_dies(
        "import os, time\n"
        "from derivations.budget import run_within_budget\n"
        "def work():\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(60)\n"
        "run_within_budget(work, what='sleeping')\n"
    )


def test_the_sympy_child_has_a_cpu_limit_of_its_budget():
    """Hardening 2: RLIMIT_CPU is the budget's seconds (rounded up, plus one), seen from inside; a
    child that spends it dies of SIGXCPU, and that is reported as the time budget, not memory."""
    import resource

    from derivations.budget import Budget, BudgetExceeded, run_within_budget

    soft, hard = run_within_budget(resource.getrlimit, resource.RLIMIT_CPU, what="reading", budget=Budget(seconds=7))
    assert (soft, hard) == (8, 9)
    with pytest.raises(BudgetExceeded, match=r"spinning: SymPy needed more than 5 s"):  # not "MiB"
        run_within_budget(_spin_on_the_cpu, what="spinning", budget=Budget(seconds=5))


def _spin_on_the_cpu() -> None:
    """CPU time without wall time passing unnoticed: lower the soft limit to 1 s, then spin."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (1, resource.getrlimit(resource.RLIMIT_CPU)[1]))
    while True:
        pass


def test_one_budget_holds_for_the_whole_command():
    """Hardening 7: inside shared_budget, forty 0.05 s pieces of work share 0.5 s: the budget is
    spent before the last, and the error says it was one budget for the command."""
    from derivations.budget import Budget, BudgetExceeded, run_within_budget, shared_budget

    done = []
    with shared_budget(), pytest.raises(BudgetExceeded, match="one budget for all of the command's SymPy work"):
        for _ in range(40):
            run_within_budget(time.sleep, 0.05, what="sleeping", budget=Budget(seconds=0.5))
            done.append(1)
    assert 3 <= len(done) < 40
    for _ in range(12):  # outside a block each call has its own 0.5 s
        run_within_budget(time.sleep, 0.05, what="sleeping", budget=Budget(seconds=0.5))
    with shared_budget():  # only the SymPy work counts: not the time spent between (training, pdflatex)
        time.sleep(0.6)
        run_within_budget(time.sleep, 0.05, what="sleeping", budget=Budget(seconds=0.5))


# --- models as users have them: the split explains the model's own forward (issue 23, B4, B5) ----


class _Tempered(torchvision.models.ResNet):
    """resnet18's layers, logits divided by a temperature: a forward that is not ResNet's."""

    def forward(self, x):
        return super().forward(x) / 10


def test_a_model_whose_forward_differs_from_its_family_is_refused(capsys):
    from cadcam_numeric import PCASVMGradCAM, split_classifier

    torch.manual_seed(0)
    model = _Tempered(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2]).eval()
    for call in (lambda: split_classifier(model), lambda: PCASVMGradCAM.from_model(model)):
        with pytest.raises(CadcamInputError, match=r"_Tempered's forward is not its family's.*max \|difference\|"):
            call()


@contextmanager
def _output_divided_by_ten(model: nn.Module) -> Iterator[None]:
    """While inside: ``model(x)`` returns its output / 10 (a forward hook), as a tempered model would."""
    handle = model.register_forward_hook(lambda module, inputs, output: output / 10)
    try:
        yield
    finally:
        handle.remove()


def test_from_model_checks_every_call_against_the_users_model():
    """After a split that passed its probe, the model changes (a hook rescales its output): the next
    call is refused, because the check compares with the model, not with the split."""
    from cadcam_numeric import PCASVMGradCAM

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4).eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with PCASVMGradCAM.from_model(model) as cam:
        assert cam(images).gradcam.shape == (2, 64, 64)
        with _output_divided_by_ten(model), pytest.raises(CadcamInputError, match="does not reproduce model"):
            cam(images)


def test_tiny_logits_still_tell_heads_apart():
    """An untrained efficientnet_b0 has logits near 1e-14: the check is relative to their scale."""
    from cadcam_numeric.engine.split import reproduces

    logits = torch.tensor([[3e-14, -1e-14, 2e-14]])
    assert reproduces(logits.clone(), logits)
    assert not reproduces(logits / 10, logits)  # passes allclose(rtol=1e-4, atol=1e-5), a different head
    assert torch.allclose(logits / 10, logits, rtol=1e-4, atol=1e-5)


def test_an_untrained_efficientnet_with_tiny_logits_is_told_apart_from_a_rescaled_one():
    """B4's own case: an untrained efficientnet_b0's logits are tiny, so allclose(atol=1e-5) would
    take logits / 10 for the model's; the split's probe refuses a model whose output a hook rescales."""
    from cadcam_numeric import split_classifier

    torch.manual_seed(0)
    model = torchvision.models.efficientnet_b0(num_classes=3).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x)
    assert float(logits.abs().max()) < 1e-5 and torch.allclose(logits / 10, logits, rtol=1e-4, atol=1e-5)
    split_classifier(model)  # as torchvision builds it: accepted
    with _output_divided_by_ten(model), pytest.raises(CadcamInputError, match="forward is not its family's"):
        split_classifier(model)


def test_a_one_channel_resnet_is_probed_with_one_channel():
    from cadcam_numeric import split_classifier

    model = torchvision.models.resnet18(num_classes=10).eval()
    model.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)  # the usual MNIST change
    backbone, head = split_classifier(model)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(head(backbone(x)), model(x))


def test_every_command_runs_in_one_sympy_budget(monkeypatch):
    """Hardening 7 at the boundary: main() runs each command inside derivations.budget.shared_budget."""
    import cadcam_numeric.cli as cli
    import derivations.budget as budget

    seen = []

    def record(args):
        seen.append(budget._spent)
        return 0

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "verify", record))
    assert main(["verify"]) == 0
    assert seen == [0.0] and budget._spent is None  # inside: a budget begun; after: none


def test_convnext_is_refused_by_name_not_split_wrongly():
    from cadcam_numeric import PCASVMGradCAM, split_classifier

    model = torchvision.models.convnext_tiny(num_classes=3).eval()
    for call in (lambda: split_classifier(model), lambda: PCASVMGradCAM.from_model(model)):
        with pytest.raises(CadcamInputError, match=r"ConvNeXt\) ends in LayerNorm2d"):
            call()


# --- sources with odd files and names (issue 23, B2, B3) ----------------------------------------


def _cadcam(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "cadcam_numeric", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_a_fifo_named_in_a_files_list_is_skipped_not_waited_on(trained, tmp_path):  # noqa: F811
    from cadcam_numeric.pipeline.store import MapStore

    Image.new("RGB", (32, 32), (10, 200, 30)).save(tmp_path / "ok.png")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "list.txt").write_text("ok.png\npipe.png\n")
    run = _cadcam(
        "explain", f"files:{tmp_path / 'list.txt'}", "--bundle", str(trained[3]), "--out", str(tmp_path / "s")
    )
    assert run.returncode == 0, run.stderr
    store = MapStore(tmp_path / "s")
    assert store.ids == ["ok.png"]
    assert [i for i, _ in store.skipped] == ["pipe.png"] and "not a regular file" in store.skipped[0][1]
    with pytest.raises(CadcamInputError, match=r"pipe\.png is not a regular file"):
        read_image(tmp_path / "pipe.png", 32)  # checked on the open descriptor, never blocking


def test_names_that_are_not_utf8_are_explained_and_shown_as_bytes(trained, tmp_path):  # noqa: F811
    from cadcam_numeric.pipeline.explain_store import explain_to_store
    from cadcam_numeric.pipeline.store import MapStore

    root = os.fsencode(tmp_path / "data")
    for folder, name in ((b"caf\xe9", b"x\xff.png"), (b"tea", b"ok.png")):
        os.makedirs(os.path.join(root, folder))
        Image.new("RGB", (32, 32), (200, 10, 30)).save(os.fsdecode(os.path.join(root, folder, name)))
    run = explain_to_store(trained[3], f"folder:{os.fsdecode(root)}", tmp_path / "s", workers=0, progress=False)
    assert run.images == 2 and run.skipped == []
    store = MapStore(tmp_path / "s")
    assert store.ids == ["caf\\xe9/x\\xff.png", "tea/ok.png"]
    assert list(store.index["label"]) == ["caf\\xe9", "tea"]
    assert store["caf\\xe9/x\\xff.png"]["gradcam"].shape == store[1]["gradcam"].shape


# --- class names, signals (issue 23, hardening 1 and 5) ------------------------------------------


def test_class_names_are_drawn_as_text_and_checked_on_load(trained, tmp_path, capsys):  # noqa: F811
    bundle = copy_of(trained[3], tmp_path)
    poisoned = lambda d: d.__setitem__(
        "class_names", [f"$\\undefinedcmd{{{k}}}$" for k in range(len(d["class_names"]))]
    )
    rewrite_json(bundle, poisoned)  # every class: whichever is predicted is drawn in a title
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    assert main(["explain", str(tmp_path / "x.png"), "--bundle", str(bundle), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "maps.png").stat().st_size > 1000
    for bad in ("line\nbreak", "", "x" * 201):
        rewrite_json(bundle, lambda d, bad=bad: d["class_names"].__setitem__(0, bad))
        with pytest.raises(CadcamInputError, match=r"class_names holds .*expected printable names of 1 to 200"):
            load_bundle(bundle)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_sigterm_cleans_up_as_ctrl_c_does(trained, tmp_path):  # noqa: F811
    """SIGTERM: exit 143 with a sentence; demo's new --out is removed, a begun store kept to resume."""
    import signal
    import sys

    out = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "cadcam_numeric", "demo", "--out", str(out), "--epochs", "3", "--no-report"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(out / MARKER, demo)
    demo.send_signal(signal.SIGTERM)
    _, err = demo.communicate(timeout=120)
    assert demo.returncode == 143, err
    assert "terminated (SIGTERM); nothing half-written was kept" in err
    assert not out.exists()
    store = tmp_path / "store"
    args = ["explain", "localisation:20000", "--bundle", str(trained[3]), "--out", str(store), "--shard-size", "16"]
    explain = subprocess.Popen(
        [sys.executable, "-m", "cadcam_numeric", *args, "--workers", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(store / "shards" / "shard-00000.npz", explain)
    explain.send_signal(signal.SIGTERM)
    _, err = explain.communicate(timeout=120)
    assert explain.returncode == 143, err  # 1,250 shards: far from finished when the first is written
    assert "terminated (SIGTERM); the shards finished so far are kept" in err
    assert (store / "store.json").is_file() and (store / "shards" / "shard-00000.npz").is_file()


# --- a map store's index is checked, not trusted (issue 23, hardening 6) -------------------------


def _edit_index(store: Path, column: str, row: int, value: str) -> None:
    import csv

    with open(store / "index.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[row + 1][rows[0].index(column)] = value
    with open(store / "index.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("offset", "-1", "holds a negative offset"),
        ("shard", "nan", "column shard: 'nan' is not an integer"),
        ("shard", "7", "names a shard outside 0 .. 2 - 1"),
        ("offset", "1.5", "column offset: '1.5' is not an integer"),
        ("offset", "9" * 20, "column offset: '9{20}' is not an integer"),
        ("svm_score", "high", "column svm_score: 'high' is not a number"),
    ],
)
def test_a_tampered_index_is_refused_on_read(trained, tmp_path, column, value, message):  # noqa: F811
    from cadcam_numeric.pipeline.explain_store import explain_to_store
    from cadcam_numeric.pipeline.store import MapStore

    store = tmp_path / "s"
    explain_to_store(trained[3], "localisation:6", store, shard_size=3, workers=0, progress=False)
    _edit_index(store, column, 1, value)
    with pytest.raises(CadcamInputError, match=message):
        MapStore(store)


def test_an_index_pointing_at_another_rows_maps_is_refused(trained, tmp_path):  # noqa: F811
    from cadcam_numeric.pipeline.explain_store import explain_to_store
    from cadcam_numeric.pipeline.store import MapStore

    store = tmp_path / "s"
    explain_to_store(trained[3], "localisation:6", store, shard_size=3, workers=0, progress=False)
    _edit_index(store, "offset", 1, "2")  # row 1 claims row 2's place in shard 0
    reader = MapStore(store)
    assert reader[0]["id"] == "loc/000000"
    with pytest.raises(CadcamInputError, match="'loc/000001' is at offset 2 of shard 0, but that shard holds another"):
        reader[1]


# --- the HTML report (issue 23, hardening 8) ------------------------------------------------------


def test_the_report_never_writes_through_a_symlinked_katex_folder(tmp_path):
    from reports.html import write_katex

    katex = tmp_path / "dist"
    (katex / "fonts").mkdir(parents=True)
    for name in ("katex.min.js", "katex.min.css", "fonts/a.woff2"):
        (katex / name).write_text(name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "katex.min.js").write_text("yours")
    out = tmp_path / "report"
    out.mkdir()
    (out / "katex").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CadcamInputError, match="katex is a symbolic link or a file"):
        write_katex(out, katex)
    assert [p.name for p in elsewhere.iterdir()] == ["katex.min.js"] and (
        elsewhere / "katex.min.js"
    ).read_text() == "yours"
    (out / "katex").unlink()
    write_katex(out, katex)
    assert (out / "katex" / "fonts" / "a.woff2").read_text() == "fonts/a.woff2"


def test_escaped_braces_dollars_and_backslashes_read_as_themselves_in_the_html():
    from derivations.latex import tex_escape
    from reports.html import tex_to_html

    text = r"a{b}$c\\d \texttt{x} 50% & #1"
    page = tex_to_html(r"\documentclass{article}\begin{document}" + tex_escape(text) + r"\end{document}").text
    assert r"<p>a{b}$c\\d \texttt{x} 50% &amp; #1</p>" in page
