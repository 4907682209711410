"""Code generation: drift check passes on the committed tree and fails, with a diff, after a
hand edit; generation is deterministic; a new catalogue entry flows through proof, generation
and the autograd check with no new test code."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import sympy as sp
import torch

import derivations.activations as activation_catalogue
from derivations.activations import Activation, Z
from derivations.blocks import (
    prove_activation_derivative,
    prove_activation_forward,
    prove_activation_kinks,
    prove_dense_block,
)
from derivations.codegen.render import DEFAULT_OUTPUT, OUTPUTS, catalogue_hash, check, render_all, write
from proofs_tests.test_generated_activations import check_against_autograd

ROOT = Path(__file__).resolve().parents[1]


def run_check(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "derivations", "check", "--dir", str(directory)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_committed_generated_code_is_in_sync(compare_or_update):
    """The generated package is a golden: after a catalogue change, `python -m derivations generate`
    (or `pytest --update-goldens`, the same renderer) rewrites it."""
    compare_or_update(render_all(), DEFAULT_OUTPUT)


def test_check_fails_with_diff_after_hand_edit(tmp_path):
    copy = tmp_path / "generated"
    shutil.copytree(DEFAULT_OUTPUT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "activations.py"
    text = target.read_text()
    edited = text.replace("return t0 * (1 - t0)", "return t0 * (1 - t0) + 0.0", 1)
    assert edited != text
    target.write_text(edited)
    result = run_check(copy)
    assert result.returncode == 1
    assert "--- committed/activations.py" in result.stdout
    assert "-    return t0 * (1 - t0) + 0.0" in result.stdout
    assert "+    return t0 * (1 - t0)" in result.stdout
    assert "never edited by hand" in result.stderr


def test_check_reports_hand_added_and_missing_files(tmp_path):
    copy = tmp_path / "generated"
    shutil.copytree(DEFAULT_OUTPUT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "extra.py").write_text("x = 1\n")
    (copy / "kernels.py").unlink()
    diff = check(copy)
    assert "extra.py" in diff and "+++ regenerated/kernels.py" in diff


def test_generation_is_deterministic_and_headed():
    first, second = render_all(), render_all()
    assert first == second
    assert set(first) == set(OUTPUTS)
    for text in first.values():
        assert text.startswith("# GENERATED FILE - DO NOT EDIT BY HAND.")
        assert f"catalogue sha256: {catalogue_hash()}" in text
        assert f"SymPy {sp.__version__}" in text


RELU6 = Activation(
    "relu6",
    "f(z) = min(max(0, z), 6)",
    "torch.nn.ReLU6",
    sp.Piecewise((0, Z <= 0), (6, Z >= 6), (Z, True)),
    kink_derivatives=((sp.S.Zero, sp.S.Zero), (sp.Integer(6), sp.S.Zero)),
)


def test_adding_an_activation_is_one_entry_plus_generate(tmp_path, monkeypatch):
    """The README's recipe, end to end, on a temporary copy."""
    before = catalogue_hash()
    monkeypatch.setattr(activation_catalogue, "ACTIVATIONS", (*activation_catalogue.ACTIVATIONS, RELU6))
    assert catalogue_hash() != before
    for proof in (prove_activation_forward, prove_activation_derivative, prove_activation_kinks, prove_dense_block):
        assert proof(RELU6).holds
    assert check(DEFAULT_OUTPUT), "drift check must notice the catalogue change"
    out = tmp_path / "generated"
    write(out)
    spec = importlib.util.spec_from_file_location("generated_with_relu6", out / "activations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.ACTIVATIONS["relu6"]
    z = torch.tensor([-2.0, 0.0, 3.0, 6.0, 7.5, 1e3], dtype=torch.float64)
    check_against_autograd(code, torch.nn.ReLU6(), {}, z)


def test_generated_blocks_are_the_proved_formulas_printed():
    """Every return expression of generated/blocks.py is the matrix printer's output for the SymPy
    formula its proof holds (issue 12, defect 2: the torch code used to be hand-written text)."""
    import ast

    from derivations.block_formulas import BLOCK_FORMULAS, interpolation_slope
    from derivations.blocks import printed_formula_proofs
    from derivations.codegen.matrix_printer import batched_torch
    from derivations.codegen.printer import StableTorchPrinter

    tree = ast.parse((DEFAULT_OUTPUT / "blocks.py").read_text(encoding="utf-8"))
    returns = {
        fn.name: sorted(ast.unparse(node.value) for node in ast.walk(fn) if isinstance(node, ast.Return))
        for fn in tree.body
        if isinstance(fn, ast.FunctionDef)
    }
    printed = {
        name: ast.unparse(ast.parse(batched_torch(f.expression), mode="eval").body)
        for name, f in BLOCK_FORMULAS.items()
    }
    assert returns == {
        "dense_block_jacobian": [printed["dense_block_jacobian"]],
        "pullback_dense": [printed["pullback_dense"]],
        "pca_scores": sorted([printed["pca_scores_whitened"], printed["pca_scores"]]),
        "pca_block_jacobian": sorted([printed["pca_block_jacobian_whitened"], printed["pca_block_jacobian"]]),
        "pullback_softmax": [printed["pullback_softmax"]],
        "pullback_log_softmax": [printed["pullback_log_softmax"]],
        "pullback_l2_normalize": [printed["pullback_l2_normalize"]],
        "pullback_sum_normalize": [printed["pullback_sum_normalize"]],
        **{
            name: [printed[name]]
            for name in BLOCK_FORMULAS
            if name.startswith(("pullback_layer_", "pullback_attention_"))
        },
        "interpolation_slope": [
            ast.unparse(
                ast.parse(str(StableTorchPrinter("y_hi", frozenset()).doprint(interpolation_slope())), mode="eval").body
            )
        ],
    }
    proofs = printed_formula_proofs()
    assert {p.name.split("/")[1] for p in proofs} == {
        "dense", "pca_scores", "pca", "softmax", "log_softmax", "normalizer", "calibration",
        "layer_norm", "layer_scale", "attention",
    }  # fmt: skip
    assert all(p.holds for p in proofs), [p.name for p in proofs if not p.holds]
