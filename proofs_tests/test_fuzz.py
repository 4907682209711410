"""The fuzz suite (issue 13): hostile and malformed bundles, specs, images and arguments, run
through the real commands in-process. For every input: exit 0 or 2 (``verify`` may also exit 1,
a failed check), never a traceback, nothing written outside ``--out``, no marker file of a
payload, and on exit 0 finite maps.

Budget: 25 examples per property (about 20 s) by default (``HYPOTHESIS_PROFILE=thorough``: 200).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file, save_file

from cadcam_numeric.cli import main
from cadcam_numeric.errors import CadcamInputError
from proofs_tests.test_pipeline_bundle_cli import trained  # noqa: F401 - the module's fitted bundle
from reports.build import view_of_bundle


@pytest.fixture(scope="module")
def bundle_dir(trained):  # noqa: F811
    """The fitted bundle's folder (only the path: a failing example prints readably)."""
    return trained[3]


ROOT = Path(__file__).resolve().parents[1]
PAPER = (ROOT / "derivations" / "examples" / "paper_head.toml").read_text()
EXAMPLES = 200 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 25
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
CONTROL = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(CONTROL), max_size=20),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3
), max_leaves=6)  # fmt: skip


def _paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: dict, path: tuple, value: object) -> None:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _files(root: Path) -> dict[Path, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time (to see new, changed and gone files)."""
    out = {}
    for p in root.rglob("*"):
        st = p.lstat()
        out[p] = (st.st_size, st.st_mtime_ns)
    return out


@contextlib.contextmanager
def _workspace(bundle: Path):
    """A fresh directory holding a copy of the bundle and one image; the command runs inside it."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(bundle, work / "bundle")
        Image.new("RGB", (32, 32), (120, 30, 200)).save(work / "image.png")
        cwd = os.getcwd()
        os.chdir(work)
        try:
            yield work
        finally:
            os.chdir(cwd)


def _run(argv: list[str], work: Path, capsys, allowed: tuple[int, ...] = (0, 2)) -> int:
    """Run one command; check the exit code, stderr, and that nothing appeared outside --out."""
    before = _files(work)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code in allowed, (argv, code, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    out = work / argv[argv.index("--out") + 1] if "--out" in argv else None
    after = _files(work)
    touched = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    outside = sorted(str(p) for p in touched if out is None or not p.is_relative_to(out))
    assert not outside, outside  # nothing outside --out was created, changed or deleted
    assert not (work / "marker").exists()
    if code == 0 and out is not None and (out / "maps.npz").is_file():
        with np.load(out / "maps.npz") as maps:
            assert all(np.isfinite(maps[k]).all() for k in maps.files if maps[k].dtype.kind == "f")
    return code


def _rehash(bundle: Path) -> None:
    doc = json.loads((bundle / "bundle.json").read_text())
    if isinstance(doc, dict) and isinstance(doc.get("tensors"), dict):
        doc["tensors"]["sha256"] = hashlib.sha256((bundle / "tensors.safetensors").read_bytes()).hexdigest()
        (bundle / "bundle.json").write_text(json.dumps(doc))


@FUZZ
@given(data=st.data())
def test_fuzz_bundle_json(bundle_dir, capsys, data):
    doc = json.loads((bundle_dir / "bundle.json").read_text())
    path = data.draw(st.sampled_from(_paths(doc)), label="path")
    value = data.draw(json_values, label="value")
    with _workspace(bundle_dir) as work:
        edited = json.loads((work / "bundle" / "bundle.json").read_text())
        _set(edited, path, value)
        (work / "bundle" / "bundle.json").write_text(json.dumps(edited))
        _run(["explain", "image.png", "--bundle", "bundle", "--out", "out"], work, capsys)
        try:  # the report's reader refuses the same documents, the same way
            view_of_bundle(work / "bundle")
        except CadcamInputError:
            pass


@FUZZ
@given(data=st.data())
def test_fuzz_bundle_tensors(bundle_dir, capsys, data):
    tensors = load_file(str(bundle_dir / "tensors.safetensors"))
    head_first = sorted(tensors, key=lambda k: (k.startswith("backbone."), k))  # shrink towards head/PCA/SVM
    name = data.draw(st.sampled_from(head_first), label="tensor")
    kind = data.draw(st.sampled_from(["value", "value", "shape", "drop", "bytes"]), label="mutation")
    with _workspace(bundle_dir) as work:
        file = work / "bundle" / "tensors.safetensors"
        if kind == "bytes":
            raw = bytearray(file.read_bytes())
            at = data.draw(st.integers(0, len(raw) - 1), label="offset")
            raw[at] = data.draw(st.integers(0, 255), label="byte")
            file.write_bytes(bytes(raw[: data.draw(st.integers(1, len(raw)), label="length")]))
        else:
            tensor = tensors[name].clone()
            if kind == "value" and tensor.is_floating_point() and tensor.numel():
                flat = tensor.view(-1)
                flat[data.draw(st.integers(0, flat.numel() - 1))] = data.draw(
                    st.sampled_from([math.nan, math.inf, -math.inf, 1e38, -1e38, 0.0])
                )
            elif kind == "shape" and tensor.dim() and tensor.shape[0] > 1:
                tensor = tensor[1:].contiguous()
            edited = {k: (tensor if k == name else v) for k, v in tensors.items() if kind != "drop" or k != name}
            save_file(edited, str(file))
        _rehash(work / "bundle")  # a consistent sha256: the loader itself must refuse
        _run(["explain", "image.png", "--bundle", "bundle", "--out", "out"], work, capsys)


toml_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: "nan" if f != f else repr(f).replace("inf", "inf")),
    st.text(max_size=30).map(json.dumps),
    st.text(alphabet=st.sampled_from(CONTROL + "ab"), max_size=8).map(json.dumps),
    st.sampled_from(["true", "false", "[]", "{}", "[1, 2]", "{ gamma = -1 }", '"relu"', '"rbf"', "1e400", "-0"]),
)


@FUZZ
@given(data=st.data())
def test_fuzz_spec_fields(capsys, data):
    lines = PAPER.splitlines()
    candidates = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    i = data.draw(st.sampled_from(candidates), label="line")
    key = lines[i].split(" = ")[0]
    lines[i] = f"{key} = {data.draw(toml_values, label='value')}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "spec.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        cwd = os.getcwd()
        os.chdir(work)
        try:
            _run(["verify", "spec.toml", "--cases", "1"], work, capsys, allowed=(0, 1, 2))
        finally:
            os.chdir(cwd)


def _image_bytes(mode: str, size: tuple[int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode == "F":
        img = Image.fromarray(rng.random((h, w), dtype=np.float32) * rng.choice([1.0, 300.0, np.nan]))
    elif mode == "I":
        img = Image.fromarray(rng.integers(-(2**31), 2**31 - 1, (h, w), dtype=np.int32))
    else:
        img = Image.new(mode, (w, h))
    buffer = io.BytesIO()
    img.save(buffer, "TIFF" if mode in ("F", "I", "CMYK") else "PNG")
    return buffer.getvalue()


@FUZZ
@given(
    mode=st.sampled_from(["L", "1", "P", "RGBA", "LA", "CMYK", "I;16", "I", "F"]),
    size=st.tuples(st.integers(1, 80), st.integers(1, 80)),
    seed=st.integers(0, 2**16),
    corrupt=st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.integers(0, 255)), st.just("truncate")),
)
def test_fuzz_images(bundle_dir, capsys, mode, size, seed, corrupt):
    raw = bytearray(_image_bytes(mode, size, seed))
    if corrupt == "truncate":
        raw = raw[: len(raw) // 2]
    elif corrupt is not None:
        raw[corrupt[0] % len(raw)] = corrupt[1]
    with _workspace(bundle_dir) as work:
        (work / "x.png").write_bytes(bytes(raw))
        _run(["explain", "x.png", "--bundle", "bundle", "--out", "out"], work, capsys)


@FUZZ
@given(
    svm=st.one_of(st.none(), st.sampled_from(["rbf", "linear-std", "knn", "", "rbf\r"])),
    method=st.one_of(st.none(), st.sampled_from(["grad-cam", "xgrad-cam", "hires-cam", "eigen", "GRAD-CAM"])),
    out=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12),
    image=st.sampled_from(["image.png", "missing.png", "bundle", "bundle/bundle.json", "."]),
)
def test_fuzz_explain_arguments(bundle_dir, capsys, svm, method, out, image):
    if out in (".", ".."):
        out = "out"
    argv = ["explain", image, "--bundle", "bundle", "--out", out]
    argv += ["--svm", svm] if svm is not None else []
    argv += ["--method", method] if method is not None else []
    with _workspace(bundle_dir) as work:
        _run(argv, work, capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--bundle", "bundle", "--out", "out", "--n", "0"],
        ["demo", "--out", "out", "--epochs", "0"],
        ["train", "--data", "folder:nowhere", "--out", "out", "--image-size", "0"],
        ["verify", "--cases", "-3"],
        ["explain", "image.png", "--bundle", "bundle", "--out", "."],  # a folder cadcam did not make
        ["explain", "image.png", "--bundle", "bundle", "--out", "/"],
        ["report", "--bundle", "image.png", "--out", "out"],
    ],
)
def test_bad_arguments_exit_2_without_a_trace(bundle_dir, capsys, argv):
    with _workspace(bundle_dir) as work:
        _run(argv, work, capsys, allowed=(2,))
