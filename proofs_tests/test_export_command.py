"""``cadcam export`` (issue 24): the demo bundle's whole model as one ONNX / torch.export file with
its description, loaded back and checked against eager; a file of yours is never replaced, and a
check that fails leaves nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch

from cadcam_numeric.cli import main
from cadcam_numeric.pipeline.bundle import load_bundle
from proofs_tests.test_pipeline_bundle_cli import trained  # noqa: F401 - the module's fitted bundle fixture


def test_export_writes_one_checked_graph_and_its_description(trained, tmp_path, capsys):  # noqa: F811
    import onnxruntime

    out = tmp_path / "model.onnx"
    assert main(["export", "--bundle", str(trained[3]), "--out", str(out), "--classes", "all"]) == 0
    assert "loaded back and run on 3 new images, every output within its tolerance of eager" in capsys.readouterr().out
    doc = json.loads((tmp_path / "model.onnx.json").read_text())
    bundle = load_bundle(trained[3])
    assert doc["class_names"] == bundle.class_names and doc["input"]["shape"] == ["batch", 3, 32, 32]
    names = [o["name"] for o in doc["outputs"]]
    assert names[:4] == ["logits", "cnn_prediction", "gradcam", "class_weights"] and names[-1] == "image_svm"
    assert doc["outputs"][2]["shape"] == ["batch", 10, 8, 8]  # classes="all": one Grad-CAM per class
    assert isinstance(doc["opset"], int) and doc["check"]["differences"]["logits"] <= 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]  # no side file
    moved = tmp_path / "deploy"
    moved.mkdir()
    alone = shutil.copy(out, moved / "model.onnx")  # a deployment copies the file alone: it must still load
    session = onnxruntime.InferenceSession(str(alone), providers=["CPUExecutionProvider"])
    images = trained[4][:5]  # real digits, a batch size the export never saw
    got = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    assert [o.name for o in session.get_outputs()] and len(got) == len(names)
    with torch.no_grad():
        logits = bundle.model(images)
    np.testing.assert_allclose(got[0], logits.numpy(), rtol=1e-5, atol=1e-5)
    assert main(["export", "--bundle", str(trained[3]), "--out", str(out)]) == 0  # its own export: replaced
    pt2 = tmp_path / "model.pt2"
    assert main(["export", "--bundle", str(trained[3]), "--out", str(pt2), "--format", "pt2"]) == 0
    assert json.loads((tmp_path / "model.pt2.json").read_text())["format"] == "pt2"


def test_export_never_replaces_your_file_and_a_failed_check_keeps_nothing(trained, tmp_path, capsys, monkeypatch):  # noqa: F811
    import cadcam_numeric.pipeline.export as export

    mine = tmp_path / "model.onnx"
    mine.write_bytes(b"my model")
    assert main(["export", "--bundle", str(trained[3]), "--out", str(mine)]) == 2
    assert "is not an export cadcam wrote" in capsys.readouterr().err and mine.read_bytes() == b"my model"
    written = export._run_written
    monkeypatch.setattr(export, "_run_written", lambda *a: [v + 1e-3 for v in written(*a)])  # as if it drifted
    out = tmp_path / "drift.onnx"
    assert main(["export", "--bundle", str(trained[3]), "--out", str(out)]) == 1
    assert "the written file differs from the eager model" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "drift.onnx.json").exists()
    # an image map is held against the file's own feature map upsampled and scaled: a drift there alone is caught
    monkeypatch.setattr(export, "_run_written", lambda *a: [*written(*a)[:-1], written(*a)[-1] + 1e-3])
    assert main(["export", "--bundle", str(trained[3]), "--out", str(out)]) == 1
    assert "image_svm's" in capsys.readouterr().err and not out.exists()


def test_the_readme_export_line_is_a_command_the_cli_takes():
    from pathlib import Path

    from cadcam_numeric.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("cadcam export "))
    args = build_parser().parse_args(line.split("#")[0].split()[1:])
    assert args.command == "export" and args.out_file == "demo_model.onnx" and args.format == "onnx"
