"""One spec and one chain check: the TOML spec is read by one loader without SymPy, the report
describes it, and `cadcam verify`, `cadcam verify SPEC`/`derive SPEC` and the report all reach the
same chain-vs-autograd function, which fails on a wrong block."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.backbones import build_backbone, feature_shape
from cadcam_numeric.spec.architecture import read_spec_file, spec_from_text
from cadcam_numeric.spec.code import empty_code, spec_head, verify_custom
from cadcam_numeric.verification.catalogue import catalogue_head
from cadcam_numeric.verification.chain import HeadUnderTest, chain_rows

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "derivations" / "examples" / "paper_head.toml"


def test_reading_a_spec_without_expressions_loads_no_sympy():
    code = (
        "import sys\n"
        "from cadcam_numeric.spec.architecture import read_spec_file\n"
        f"text, spec = read_spec_file({str(PAPER)!r})\n"
        "assert spec.widths == (40, 30, 20) and spec.kernel == 'rbf', spec\n"
        "print('sympy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_one_loader_names_the_key_and_the_origin():
    text = PAPER.read_text().replace('kernel = "rbf"', 'kernel = "rbff"')
    with pytest.raises(CadcamInputError, match=r"^mine: svm.kernel: 'rbff' is not allowed; allowed values: .*rbf"):
        spec_from_text(text, "mine")
    with pytest.raises(CadcamInputError, match="not valid TOML"):
        spec_from_text("[backbone", "mine")


def test_the_generated_and_symbolic_catalogues_give_the_same_names():
    from cadcam_numeric.spec.architecture import generated_catalogue
    from derivations.architecture import symbolic_catalogue

    assert generated_catalogue() == symbolic_catalogue()


@pytest.mark.parametrize(
    ("name", "layer", "size"),
    [
        ("vgg16", "pool", 200),
        ("vgg16", "conv", 200),
        ("vgg16", "pool", 97),
        ("small_vgg", "pool", 32),
        ("small_vgg", "conv", 36),
    ],
)
def test_feature_shape_by_arithmetic_is_what_the_backbone_gives(name, layer, size):
    backbone = build_backbone(name, layer, random_weights=True, input_size=size)
    with torch.no_grad():
        out = backbone.features(torch.zeros(1, 3, size, size))
    assert feature_shape(name, layer, size) == tuple(out.shape[1:])


def _wrong_by(factor: float, head: HeadUnderTest) -> HeadUnderTest:
    """The same heads, with every kernel's generated decision gradient scaled by ``factor``."""
    kernels = []
    for k in head.kernels:
        grad = k.code.decision_gradient
        code = dataclasses.replace(k.code, decision_gradient=lambda *a, grad=grad, **kw: grad(*a, **kw) * factor)
        kernels.append(dataclasses.replace(k, code=code))
    return dataclasses.replace(head, kernels=tuple(kernels))


@pytest.mark.parametrize("make_head", ["catalogue", "spec"])
def test_the_chain_check_fails_on_a_wrong_block_and_passes_on_the_generated_one(make_head):
    if make_head == "catalogue":
        head = catalogue_head()
    else:
        _, spec = read_spec_file(ROOT / "derivations" / "examples" / "paper_head.toml")
        head = spec_head(spec, empty_code(spec))
    good = chain_rows(head, 3, torch.Generator().manual_seed(0))
    assert all(r.passed for r in good)
    assert all(r.max_rel_error < 1e-8 for r in good)  # far below the 1e-3 error planted next
    bad = chain_rows(_wrong_by(1 + 1e-3, head), 3, torch.Generator().manual_seed(0))
    da = [r for r in bad if "da/dx" in r.function]
    assert da and not any(r.passed for r in da)
    assert all(r.passed for r in bad if "da/dx" not in r.function)


def test_the_spec_check_covers_the_specs_scaler_whitening_and_kernel():
    text = PAPER.read_text().replace("whiten = false", "whiten = true").replace("scaler = false", "scaler = true")
    text = text.replace('kernel = "rbf"', 'kernel = "sigmoid"').replace(
        "{ gamma = 1.0 }", "{ gamma = 0.3, coef0 = 0.5 }"
    )
    spec = spec_from_text(text)
    head = spec_head(spec, empty_code(spec))
    assert (head.whiten, head.scaler, [k.name for k in head.kernels]) == (True, True, ["sigmoid"])
    rows = verify_custom(spec, empty_code(spec), cases=3)
    assert [r.function.split(": ")[1] for r in rows] == [
        "dy/dx (Grad-CAM, Eq. 9)",
        "dp/dx (PCA-Grad-CAM, Eq. 13)",
        "da/dx (SVM-Grad-CAM, Eq. 15), sigmoid",
    ]
    assert all(r.passed for r in rows)


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
    }


def test_the_chain_is_checked_in_one_place():
    """Only verification/chain.py composes the engine's pullback of the dense chain with autograd; the
    catalogue check (`cadcam verify`) and the spec check (`verify SPEC`, `derive SPEC`, the report) call
    it. verification/head_blocks.py checks each block beyond that chain (softmax output, Normalizer,
    KernelPCA, calibration) through the engine's own reader, one block at a time; nothing else may."""
    package = ROOT / "cadcam_numeric"
    composing = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if not p.is_relative_to(package / "engine") and {"pullback", "autograd_jacobian"} <= _calls(p)
    )
    assert composing == ["verification/chain.py", "verification/head_blocks.py"]
    assert "chain_rows" in _calls(package / "verification" / "catalogue.py")
    assert "chain_rows" in _calls(package / "spec" / "code.py")
    assert "verify_custom" in _calls(package / "spec" / "derive.py")
    assert "verify_custom" in _calls(ROOT / "reports" / "view.py")
