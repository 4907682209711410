"""``cadcam bench --quick`` runs and writes complete output; the routes compute the same maps.

Timings and their ratios are not asserted (a shared machine is noisy); that every route was
timed, every ratio computed, and that the routes agree numerically, is.
"""

from __future__ import annotations

import json
import shutil

from cadcam_numeric.bench.closed_form_routes import CLOSED_FORM_ROUTES, ORT_ROUTES
from cadcam_numeric.bench.head_variants import VARIANTS
from cadcam_numeric.bench.suite import E2E, HEAD
from cadcam_numeric.cli import main

HAS_CXX = shutil.which("g++") is not None or shutil.which("c++") is not None

ROUTES = (*E2E, *HEAD, "eigen_cam", "eigen_cam_pkg", "decom_cam", *VARIANTS)


def test_quick_bench_writes_every_measurement(tmp_path, capsys):
    assert main(["bench", "--quick", "--device", "cpu", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "bench.json").read_text())
    markdown = (tmp_path / "bench.md").read_text()
    assert capsys.readouterr().out.strip() == markdown.strip()
    batches = doc["config"]["batches"]
    assert batches == [1, 2] and doc["device"] == "cpu" and doc["versions"]["grad-cam"] != "not installed"
    timed = {(t["route"], t["batch"]) for t in doc["timings"] if t["median_ms"] > 0 and t["min_ms"] <= t["max_ms"]}
    # quick: the ClosedForm and ONNX Runtime rows at batch 2
    # torch.compile's inductor route is timed only where a C++ compiler is found (the bench drops it otherwise)
    closed_form = [r for r in (*CLOSED_FORM_ROUTES, *ORT_ROUTES) if r != "cf_compiled" or HAS_CXX]
    assert timed == {(r, b) for r in ROUTES for b in batches} | {(r, 2) for r in closed_form}
    ratios = {k: v for k, v in doc["closed_form_ratios"].items() if HAS_CXX or "compiled" not in k}
    assert all(v is not None and v > 0 for v in ratios.values()), doc["closed_form_ratios"]
    for batch in batches:
        assert all(v is not None and v > 0 for v in doc["ratios"][str(batch)].values())
    assert set(doc["memory_mb"]) == {"explain@2", "grad_cam_pkg@2"}
    assert all(v is None or v >= 0 for v in doc["memory_mb"].values())
    assert doc["once_s"]["generate"] > 0 and "report" in doc["once_s"]
    agreement = doc["agreement"]
    assert agreement["weights: autograd vs closed form (max rel)"] < 1e-5
    assert agreement["weights: torch.func vs closed form (max rel)"] < 1e-5
    assert agreement["class map: pytorch-grad-cam vs explain (max abs)"] < 1e-4
    assert agreement["SVM map: pytorch-grad-cam vs explain (max abs)"] < 1e-4
    assert agreement["Eigen-CAM: package vs ours, up to sign (max abs)"] < 1e-4
    assert agreement["ClosedForm weights vs autograd, batched (max rel)"] < 1e-5
    assert agreement["ONNX Runtime vs eager ExplainingModel (max rel)"] < 1e-4
    assert doc["input_size"] == 96 and "VGG16 at 96×96 px (pool5 512×3×3)" in markdown  # quick: small images
    assert all(label in markdown for label in VARIANTS.values())
    for heading in (
        "| batch | 1 backbone | 2 explain |",
        "Head only",
        "Head variants",
        "Eigen-CAM (ours)",
        "peak memory",
        "ClosedForm (paper head",
        "ONNX Runtime: maps / logits at 2",
    ):
        assert heading in markdown


def test_bench_refuses_bad_arguments(capsys):
    assert main(["bench", "--batches", "0,2"]) == 2
    assert "--batches: expected positive integers" in capsys.readouterr().err


def test_quick_vit_bench_times_every_route_and_the_maps_agree(tmp_path, capsys):
    """``--model vit_tiny_patch16_224 --quick``: every route timed at batches 1 and 2, every ratio
    computed, the class map equal to pytorch-grad-cam's (target norm1, token-to-grid reshape)."""
    import pytest

    pytest.importorskip("timm")
    from cadcam_numeric.bench.vit import ROUTES

    args = ["bench", "--model", "vit_tiny_patch16_224", "--quick", "--device", "cpu", "--out", str(tmp_path)]
    assert main(args) == 0
    doc = json.loads((tmp_path / "bench_vit.json").read_text())
    markdown = (tmp_path / "bench_vit.md").read_text()
    assert capsys.readouterr().out.strip() == markdown.strip()
    assert doc["config"]["batches"] == [1, 2] and doc["image_size"] == 64
    timed = {(t["route"], t["batch"]) for t in doc["timings"] if t["median_ms"] > 0}
    assert timed == {(r, b) for r in ROUTES for b in (1, 2)}
    assert all(v is not None and v > 0 for b in ("1", "2") for v in doc["ratios"][b].values())
    assert doc["agreement"]["class map: pytorch-grad-cam vs explain (max abs)"] < 1e-4
    assert (
        doc["agreement"]["class map: explain with the probe vs without (max abs)"] < 1e-5
    )  # more rows: other rounding
    assert "timm `vit_tiny_patch16_224` (random weights) at 64×64 px" in markdown


def test_vit_bench_refuses_what_it_does_not_time(capsys):
    assert main(["bench", "--model", "resnet50"]) == 2
    assert "--model: expected vgg16 or one of vit_small_patch16_224" in capsys.readouterr().err
    assert main(["bench", "--model", "vit_tiny_patch16_224", "--heads-only"]) == 2
    assert "--heads-only and --dtype are for vgg16" in capsys.readouterr().err
