"""Bundles (round trip, tampering) and the pipeline's commands (demo, train, explain)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cadcam_numeric import explain
from cadcam_numeric.cli import main
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.backbones import build_backbone
from cadcam_numeric.pipeline.bundle import load_bundle, save_bundle
from cadcam_numeric.pipeline.data import load_data, to_model_input
from cadcam_numeric.pipeline.fitting import fit_pca_and_svms, layer_outputs
from cadcam_numeric.pipeline.small_demo import small_demo
from proofs_tests.test_pipeline_data import make_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    demo = small_demo(epochs=2)
    directory = demo.save(tmp_path_factory.mktemp("b") / "bundle")
    images = to_model_input(demo.data.test.images[:8], 32)
    return demo.model, demo.pca, demo.svms, directory, images


def test_bundle_round_trip_gives_identical_maps(trained):
    model, pca, svms, directory, images = trained
    bundle = load_bundle(directory)
    with torch.no_grad():
        before = explain(model.backbone(images), model.head, pca, 2, svms["rbf-std"])
        after = explain(bundle.model.backbone(images), bundle.model.head, bundle.pca, 2, bundle.svms["rbf-std"])
    for name in ("gradcam", "pca_positive", "pca_negative", "svm", "class_weights", "pca_weights", "svm_weights"):
        a, b = getattr(before, name), getattr(after, name)
        assert torch.equal(a, b), (name, float((a - b).abs().max()), float(b.abs().max()))
    assert np.array_equal(np.asarray(before.svm_prediction), np.asarray(after.svm_prediction))
    assert set(bundle.svms) == {"linear", "rbf", "linear-std", "rbf-std"}
    p = bundle.pca.scores(torch.zeros(3, 30, dtype=torch.float64))
    for key, svm in svms.items():  # native prediction rule == scikit-learn's, after reload
        assert np.array_equal(bundle.svms[key].predict(p), svm.predict(p.numpy()))


def _as_version_1(document: dict) -> dict:
    """What cadcam wrote before version 2: the settings under "spec", no backbone.feature_shape."""
    old = {**document, "version": 1, "spec": document["config"]}
    del old["config"]
    old["backbone"] = {k: v for k, v in document["backbone"].items() if k != "feature_shape"}
    return old


def test_a_previous_version_bundle_loads_through_the_migration(trained, tmp_path):
    """A version-1 bundle.json (as the previous cadcam wrote it) is migrated on reading: the same document
    once migrated, and the same maps."""
    from cadcam_numeric.pipeline.bundle_document import read_bundle_document

    model, pca, svms, directory, images = trained
    b = copy_bundle(directory, tmp_path)
    current = json.loads((b / "bundle.json").read_text())
    (b / "bundle.json").write_text(json.dumps(_as_version_1(current), indent=2))
    migrated, fresh = read_bundle_document(b), read_bundle_document(directory)
    assert migrated.read_from_version == 1 and fresh.read_from_version == 2
    assert migrated == fresh and migrated.to_json() == current  # nothing lost or changed by the migration
    old = load_bundle(b)
    with torch.no_grad():
        a = explain(old.model.backbone(images), old.model.head, old.pca, 2, old.svms["rbf-std"])
        e = explain(model.backbone(images), model.head, pca, 2, svms["rbf-std"])
    assert torch.equal(a.svm, e.svm) and torch.equal(a.gradcam, e.gradcam)


@pytest.mark.parametrize("version", [0, 3, "2", True, None])
def test_a_version_this_cadcam_cannot_read_is_refused_by_name(trained, tmp_path, version):
    b = copy_bundle(trained[3], tmp_path)
    doc = json.loads((b / "bundle.json").read_text())
    doc["version"] = version
    (b / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(CadcamInputError, match=r"bundle: format version .*; this cadcam reads versions 1..2"):
        load_bundle(b)


def test_the_public_bundle_api_preprocesses_and_hands_out_a_closed_form(trained):
    """cadcam_numeric.load_bundle: preprocess(images) is the training resize/normalisation, and
    closed_form(svm) gives the maps explain() gives on the bundle's own head."""
    import cadcam_numeric
    from cadcam_numeric.pipeline.data import to_model_input

    model, pca, svms, directory, _ = trained
    bundle = cadcam_numeric.load_bundle(directory)
    raw = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    x = bundle.preprocess(raw)
    assert torch.equal(x, to_model_input(raw, 32))
    with torch.no_grad():
        features = bundle.model.backbone(x)
        out = bundle.closed_form("rbf")(features)
        expected = explain(features, model.head, pca, 2, svms["rbf"])
    for key in ("gradcam", "pca_positive", "svm"):
        torch.testing.assert_close(out[key], getattr(expected, key), rtol=1e-5, atol=1e-6)
    with pytest.raises(CadcamInputError, match=r"images: expected a uint8 tensor"):
        bundle.preprocess(x)
    with pytest.raises(CadcamInputError, match=r"svm: 'knn' is not in the bundle"):
        bundle.closed_form("knn")


def copy_bundle(directory: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return target


def test_tampered_tensors_are_refused(trained, tmp_path):
    b = copy_bundle(trained[3], tmp_path)
    data = bytearray((b / "tensors.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (b / "tensors.safetensors").write_bytes(bytes(data))
    with pytest.raises(CadcamInputError, match="does not match the sha256"):
        load_bundle(b)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("pca"), "lacks 'pca'"),
        (lambda d: d.update(format="other"), "not a cadcam bundle"),
        (lambda d: d.update(version=99), "format version 99"),
        (
            lambda d: d["svms"]["rbf"]["blocks"][0].update(kernel="laplacian"),
            r"svms.rbf.blocks\[0\].kernel 'laplacian' is not in the catalogue",
        ),
        (lambda d: d["svms"]["rbf"].update(scheme="magic"), r"svms.rbf.scheme must be binary, ovr or ovo, got 'magic'"),
        (lambda d: d.update(default_svm="knn"), "default_svm 'knn'"),
        (lambda d: d["head"].update(widths=[41, 30, 20]), "do not fit the recorded architecture"),
        (lambda d: d.pop("config"), "lacks 'config'"),
        (lambda d: d["backbone"].update(feature_shape=[32, 8]), "feature_shape must be three positive integers"),
        (lambda d: d["backbone"].update(feature_shape=[32, 9, 9]), r"feature_shape \[32, 9, 9\] is not what small_vgg"),
    ],
)
def test_incomplete_or_edited_json_is_refused(trained, tmp_path, edit, message):
    b = copy_bundle(trained[3], tmp_path)
    doc = json.loads((b / "bundle.json").read_text())
    edit(doc)
    (b / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(CadcamInputError, match=message):
        load_bundle(b)


def test_the_bundle_records_its_feature_shape_and_the_report_reads_it_without_building(trained, monkeypatch):
    from cadcam_numeric.pipeline import backbones
    from cadcam_numeric.pipeline import bundle as bundle_module
    from reports.build import view_of_bundle

    directory = trained[3]
    doc = json.loads((directory / "bundle.json").read_text())
    assert doc["backbone"]["feature_shape"] == [32, 8, 8]
    for module, name in ((backbones, "build_backbone"), (backbones, "vgg16_features"), (backbones, "small_vgg")):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("the report built a backbone"))
    monkeypatch.setattr(bundle_module, "build_backbone", lambda *a, **k: pytest.fail("the report built a backbone"))
    view = view_of_bundle(directory)
    assert view.feature_maps == (32, 8, 8)
    spec = view.spec
    assert (spec.widths, spec.classes, spec.pca_after, spec.n_components) == ((40, 30, 20), 10, 2, 3)
    assert (spec.kernel, spec.scaler, view.svm_params) == ("rbf", True, {"gamma": 1.0})


def test_the_report_validates_the_bundle_it_describes(trained, tmp_path):
    from reports.build import view_of_bundle

    b = copy_bundle(trained[3], tmp_path)
    data = bytearray((b / "tensors.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (b / "tensors.safetensors").write_bytes(bytes(data))
    with pytest.raises(CadcamInputError, match="does not match the sha256"):
        view_of_bundle(b)


def test_missing_files_are_refused(trained, tmp_path):
    b = copy_bundle(trained[3], tmp_path)
    (b / "tensors.safetensors").unlink()
    with pytest.raises(CadcamInputError, match=r"tensors\.safetensors is missing"):
        load_bundle(b)
    (b / "bundle.json").write_text("{not json")
    with pytest.raises(CadcamInputError, match="not valid JSON"):
        load_bundle(b)
    (b / "bundle.json").unlink()
    with pytest.raises(CadcamInputError, match=r"has no bundle\.json"):
        load_bundle(b)
    with pytest.raises(CadcamInputError, match=r"nowhere does not exist \(expected the bundle folder"):
        load_bundle(tmp_path / "nowhere")


def test_demo_command_writes_everything(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--epochs", "2", "--no-report"]) == 0
    out = tmp_path / "demo"
    for name in (
        "table3.csv",
        "table3.md",
        "fig5_validation_accuracy.png",
        "fig6_contribution_ratios.png",
        "fig7_pca_scatter.png",
        "fig8_maps.png",
        "fig8_maps.npz",
        "summary.json",
        "bundle/bundle.json",
    ):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        with Image.open(png) as im:
            assert im.size[0] > 300 and im.size[1] > 200
    rows = (out / "table3.csv").read_text().splitlines()
    assert rows[0] == "model,train_macro_f1,test_macro_f1" and len(rows) == 6
    maps = np.load(out / "fig8_maps.npz")
    assert maps["pca_positive"].shape == (10, 3, 32, 32) and maps["gradcam"].max() <= 1.0  # every class
    assert [p.name for p in sorted(out.glob("fig8_maps_part*.png"))] == ["fig8_maps_part1.png", "fig8_maps_part2.png"]
    assert "Table 3" in capsys.readouterr().out
    assert not list(out.glob(".*tmp*")), "no temporary files may be left"
    # explain: happy path on image files, then bad inputs
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((32, 32)) * 255).astype(np.uint8)).save(images / f"{i}.png")
    assert main(["explain", str(images), "--bundle", str(out / "bundle"), "--out", str(tmp_path / "ex")]) == 0
    assert (tmp_path / "ex" / "maps.png").is_file() and np.load(tmp_path / "ex" / "maps.npz")["svm"].shape == (
        2,
        32,
        32,
    )
    assert (
        main(["explain", str(images), "--bundle", str(out / "bundle"), "--out", str(tmp_path / "ex"), "--svm", "knn"])
        == 2
    )
    assert "svm: 'knn' is not in the bundle" in capsys.readouterr().err
    assert (
        main(["explain", str(tmp_path / "missing.png"), "--bundle", str(out / "bundle"), "--out", str(tmp_path)]) == 2
    )


def test_train_bad_inputs_exit_2_with_a_message(tmp_path, capsys, monkeypatch):
    assert main(["train", "--data", "imagenet", "--out", str(tmp_path)]) == 2
    assert "unknown source 'imagenet'" in capsys.readouterr().err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["demo", "--backbone", "vgg16", "--out", str(tmp_path)]) == 2
    assert "no VGG16 ImageNet weights" in capsys.readouterr().err


@pytest.mark.parametrize("layer", ["pool", "conv"])
def test_vgg16_pipeline_on_an_image_folder(tmp_path, layer):
    root = make_folder(tmp_path / "data", per_class=10, size=24)
    out = tmp_path / "out"
    assert (
        main(
            [
                "train",
                "--data",
                f"folder:{root}",
                "--backbone",
                "vgg16",
                "--random-weights",
                "--feature-layer",
                layer,
                "--input-size",
                "64",
                "--epochs",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    bundle = load_bundle(out / "bundle")
    assert bundle.backbone.name == "vgg16" and bundle.backbone.head_pooling == (layer == "conv")
    assert np.load(out / "fig8_maps.npz")["gradcam"].shape[-2:] == (64, 64)


def test_localisation_set_boxes_are_exact_and_seeded():
    from cadcam_numeric.pipeline.localisation import make_localisation_set, scale_boxes

    s = make_localisation_set(20, canvas=40, scales=(4,), seed=3)
    again = make_localisation_set(20, canvas=40, scales=(4,), seed=3)
    assert torch.equal(s.images.images, again.images.images) and torch.equal(s.boxes, again.boxes)
    for img, box in zip(s.images.images[:, 0].numpy(), s.boxes.tolist(), strict=True):
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= 40 and 0 <= y0 < y1 <= 40
        inside = img[y0:y1, x0:x1]
        assert inside.max() >= 0.9 * img.max()  # the brightest ink is the digit's, inside its box
        assert (img[y0:y1, x0] > 60).any() and (img[y0:y1, x1 - 1] > 60).any()  # tight in x
    assert scale_boxes(torch.tensor([[5, 5, 15, 20]]), 40, 32).tolist() == [[4, 4, 12, 16]]


def test_evaluate_explains_and_scores_the_chosen_targets(trained, tmp_path, monkeypatch, capsys):
    """`evaluate` with a CNN class and an SVM label: the maps are those `explain` gives for them,
    and the deletion/insertion curves follow those targets' scores, not the predictions'."""
    import cadcam_numeric.pipeline.evaluate as evaluation
    from cadcam_numeric import normalise, target_scores, upsample
    from cadcam_numeric.engine.targets import ClassTarget, SVMClassTarget

    seen, real = [], evaluation.deletion_insertion

    def spy(score, images, maps, baseline, steps):
        seen.append((score, images, maps))
        return real(score, images, maps, baseline, steps)

    monkeypatch.setattr(evaluation, "deletion_insertion", spy)
    summary = evaluation.run_evaluation(
        trained[3], tmp_path / "e", data="digits", n=4, steps=2, correct_only=False,
        targets=ClassTarget(3), svm_targets=SVMClassTarget("5"),
    )  # fmt: skip
    assert (summary["targets"], summary["svm_targets"]) == ("CNN class 3", "SVM label 5")
    bundle = load_bundle(trained[3])
    images = seen[0][1]
    index = torch.arange(len(images))
    svm = bundle.svms[bundle.default_svm]
    with torch.no_grad():
        features = bundle.model.backbone(images)
        r = explain(features, bundle.model.head, bundle.pca, 2, svm, targets=3, svm_targets=5)
        scores = target_scores(features, bundle.model.head, bundle.pca, 2, svm)
    (class_score, _, class_map), (svm_score, _, svm_map) = seen[0][:3], seen[1][:3]
    assert torch.allclose(class_score(images, index), torch.softmax(scores.logits, 1)[:, 3])
    assert torch.allclose(svm_score(images, index), scores.svm_scores[:, svm.class_index(np.array([5] * 4), "svm")[0]])
    assert torch.allclose(class_map, normalise(upsample(r.gradcam, (32, 32))))
    assert torch.allclose(svm_map, normalise(upsample(r.svm, (32, 32))))
    with pytest.raises(CadcamInputError, match="svm_targets: 'dog' is not a label of the SVM"):
        evaluation.run_evaluation(trained[3], tmp_path / "f", data="digits", n=2, svm_targets=SVMClassTarget("dog"))
    with pytest.raises(CadcamInputError, match="one target for all images"):
        evaluation.run_evaluation(trained[3], tmp_path / "f", data="digits", n=2, targets=[1, 2])
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--bundle", str(trained[3]), "--out", str(tmp_path / "g"), "--target", "-1"])
    assert exit_.value.code == 2 and "--target: expected an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "f").exists() and not (tmp_path / "g").exists()


def test_evaluate_command_covers_every_method(trained, tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--bundle",
                str(trained[3]),
                "--out",
                str(out),
                "--n",
                "6",
                "--steps",
                "4",
                "--all-images",
                "--metrics",
                "deletion,insertion,road,drop-increase,pointing,localisation",
            ]
        )
        == 0
    )
    rows = (out / "evaluation.csv").read_text().splitlines()
    assert rows[0] == (
        "method,deletion_auc,insertion_auc,insertion_minus_deletion,stratified_auc,road_morf,road_lerf,"
        "road_combined,average_drop,increase_in_confidence,pointing_game,mean_iou,iou_at_least_0_5"
    )
    names = [r.split(",")[0] for r in rows[1:]]
    # 3 variants x (class, SVM, 3 PCA x 2 signs) + Eigen x2 + Decom, and a random map and a centre prior x2
    assert len(names) == 3 * (1 + 1 + 6) + 3 + 4
    for expected in (
        "Grad-CAM (class)", "SVM-HiRes-CAM", "PCA-XGrad-CAM P3-", "Eigen-CAM", "Decom-CAM (class)",
        "Random map (class)", "Centre Gaussian (SVM)",
    ):  # fmt: skip
        assert expected in names
    summary = json.loads((out / "evaluation.json").read_text())
    by_method = {r["method"]: r for r in summary["rows"]}
    stats = {(s["method"], s["figure"]): s for s in summary["statistics"]}
    for name in names:
        s = stats[(name, "insertion_minus_deletion")]
        assert s["images"] == 6 and s["ci95_low"] <= s["mean"] <= s["ci95_high"]
        assert s["mean"] == pytest.approx(by_method[name]["insertion_minus_deletion"], abs=1e-4)
        road = by_method[name]
        assert road["road_combined"] == pytest.approx((road["road_lerf"] - road["road_morf"]) / 2, abs=2e-4)
    assert stats[("Decom-CAM (class)", "road_combined")]["wilcoxon_p_vs_grad_cam"] != "n/a"
    assert stats[("SVM-Grad-CAM", "insertion_minus_deletion")]["wilcoxon_p_vs_grad_cam"] == "n/a"  # other score
    assert by_method["SVM-Grad-CAM"]["average_drop"] == "n/a" and 0 <= by_method["Eigen-CAM"]["average_drop"] <= 100
    assert (out / "evaluation_statistics.md").is_file()
    assert (out / "evaluation_curves.png").is_file() and (out / "evaluation.md").is_file()
    digits = tmp_path / "eval_digits"
    assert (
        main(
            [
                "evaluate",
                "--bundle",
                str(trained[3]),
                "--out",
                str(digits),
                "--data",
                "digits",
                "--n",
                "4",
                "--steps",
                "2",
                "--all-images",
            ]
        )
        == 0
    )
    assert "pointing_game" not in (digits / "evaluation.csv").read_text().splitlines()[0]  # no boxes there
    assert main(["evaluate", "--bundle", str(trained[3]), "--out", str(out), "--svm", "nope"]) == 2
    assert main(["evaluate", "--bundle", str(trained[3]), "--out", str(tmp_path / "m"), "--metrics", "roads"]) == 2
    assert "metrics: expected a comma-separated subset of deletion" in capsys.readouterr().err
    refused = ["--out", str(tmp_path / "p"), "--data", "digits", "--metrics", "deletion,pointing"]
    assert main(["evaluate", "--bundle", str(trained[3]), *refused]) == 2
    assert "metrics: pointing need boxes, and digits has none" in capsys.readouterr().err
    only_road = tmp_path / "only_road"
    args = ["--data", "digits", "--n", "2", "--all-images", "--metrics", "road"]
    assert main(["evaluate", "--bundle", str(trained[3]), "--out", str(only_road), *args]) == 0
    header = (only_road / "evaluation.csv").read_text().splitlines()[0]
    assert header == "method,road_morf,road_lerf,road_combined" and not (only_road / "evaluation_curves.png").exists()


def test_the_cnn_svm_recipe_round_trips_bit_for_bit(trained, tmp_path):
    """Issue 14: pooled features -> StandardScaler -> PCA (pca_after=0) -> RBF SVC and
    LogisticRegression, saved (the scaler folded into the PCA layer) and reloaded: the maps and
    predictions from the bundle equal those of the scikit-learn objects in memory, bit for bit;
    what a bundle cannot hold (KernelPCA, a calibrated classifier) is refused by name."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import KernelPCA
    from sklearn.linear_model import LogisticRegression

    model, _, _, _, images = trained
    data = load_data("digits")
    out = layer_outputs(model, data.train, 32, 0, torch.device("cpu"))
    pca, svms = fit_pca_and_svms(out, scale_before_pca=True, classifiers=("logistic",))
    config = {"feature_layer": "pool", "widths": [40, 30, 20], "activation": "relu", "seed": 0}
    backbone = build_backbone("small_vgg")
    directory = save_bundle(tmp_path / "bundle", model, backbone, config, pca, 0, svms, "logistic", data.class_names)
    doc = json.loads((directory / "bundle.json").read_text())
    assert doc["pca"]["after"] == 0 and doc["pca"]["transform"] == "StandardScaler -> PCA"
    assert doc["svms"]["logistic"]["estimator"] == "LogisticRegression"
    bundle = load_bundle(directory)
    with torch.no_grad():
        features = model.backbone(images)
    for key in ("rbf-std", "logistic"):
        before = explain(features, model.head, pca, 0, svms[key])
        after = explain(features, bundle.model.head, bundle.pca, 0, bundle.svms[key])
        for name in ("gradcam", "pca_positive", "pca_negative", "svm", "pca_scores", "svm_scores"):
            assert torch.equal(getattr(before, name), getattr(after, name)), (key, name)
        first_linear = next(i for i, m in enumerate(model.head) if isinstance(m, torch.nn.Linear))
        pooled = model.head[:first_linear](features).detach().double().numpy()
        assert np.array_equal(np.asarray(after.svm_prediction), svms[key].predict(pca.transform(pooled)))
    with pytest.raises(CadcamInputError, match="only linear transforms"):
        kpca = KernelPCA(3).fit(out.q)
        save_bundle(tmp_path / "k", model, backbone, config, kpca, 0, svms, "logistic", data.class_names)
    calibrated = CalibratedClassifierCV(LogisticRegression(), cv=2).fit(pca.transform(out.q), out.labels)
    with pytest.raises(CadcamInputError, match="classifier 'cal' cannot be saved"):
        save_bundle(tmp_path / "c", model, backbone, config, pca, 0, {"cal": calibrated}, "cal", data.class_names)


def test_the_recipe_and_pca_after_options(tmp_path, capsys):
    assert main(["demo", "--recipe", "cnn-svm", "--out", str(tmp_path / "r"), "--epochs", "1", "--no-report"]) == 0
    doc = json.loads((tmp_path / "r" / "bundle" / "bundle.json").read_text())
    assert doc["pca"]["after"] == 0 and "logistic" in doc["svms"]
    assert "Logistic regression" in (tmp_path / "r" / "table3.md").read_text()
    assert main(["demo", "--pca-after", "4", "--out", str(tmp_path / "bad"), "--epochs", "1"]) == 2
    assert "pca_after: expected 0 (the pooled features) to 3" in capsys.readouterr().err


def test_a_spec_and_a_recipe_do_not_mix(tmp_path, capsys):
    spec = Path(__file__).resolve().parents[1] / "derivations" / "examples" / "paper_head.toml"
    argv = ["demo", "--spec", str(spec), "--recipe", "cnn-svm", "--out", str(tmp_path / "x"), "--epochs", "1"]
    assert main(argv) == 2
    assert "--pca-after/--recipe: the spec fixes the PCA" in capsys.readouterr().err


def test_explain_says_when_images_differ_from_the_training_images(trained, tmp_path, capsys):
    """A colour photo given to the 8x8 grey digits model gets a one-line notice (it is still explained);
    an 8x8 grey image like the training ones gets none."""
    photo, digit = tmp_path / "photo.png", tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(digit)
    assert main(["explain", str(photo), "--bundle", str(trained[3]), "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "notice: 1 of 1 images differ from the training images (grey 8x8; e.g. colour 64x48)" in err
    assert (tmp_path / "a" / "maps.png").is_file()
    assert main(["explain", str(digit), "--bundle", str(trained[3]), "--out", str(tmp_path / "b")]) == 0
    assert "notice" not in capsys.readouterr().err


def test_figure_mode_skips_and_lists_an_unreadable_image(trained, tmp_path, capsys):
    """One corrupt PNG in a small folder: the good images are explained, the bad one is named (exit 0)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(folder / f"good{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    assert main(["explain", str(folder), "--bundle", str(trained[3]), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "broken.png" in out
    assert np.load(tmp_path / "m" / "maps.npz")["gradcam"].shape[0] == 2
    assert main(["explain", str(folder), "--strict", "--bundle", str(trained[3]), "--out", str(tmp_path / "s")]) == 2


def test_an_all_zero_map_is_marked_and_a_non_zero_one_is_not():
    import matplotlib.pyplot as plt

    from cadcam_numeric.pipeline.figures import mark_if_all_zero

    fig, (a, b) = plt.subplots(1, 2)
    assert mark_if_all_zero(a, np.zeros((4, 4))) and [t.get_text() for t in a.texts] == ["all zero"]
    assert not mark_if_all_zero(b, np.eye(4) * 1e-30) and not b.texts
    plt.close(fig)


def test_layer_cut_reads_positions_from_the_modules():
    from torch import nn

    from cadcam_numeric.engine.head import layer_cut

    head = nn.Sequential(
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(), nn.Linear(8, 4), nn.BatchNorm1d(4), nn.ReLU(),
        nn.Linear(4, 3), nn.Tanh(), nn.Dropout(), nn.Linear(3, 2),
    )  # fmt: skip
    assert [layer_cut(head, a) for a in range(3)] == [3, 6, 9]
    with pytest.raises(CadcamInputError, match=r"pca_after: expected 0\.\.2 for a head with 3 Linear layers, got 3"):
        layer_cut(head, 3)


def test_explaining_saved_test_images_reproduces_the_training_conversion(trained, tmp_path):
    """An 8x8 digit written as PNG and explained from the file gets exactly the maps of the same image
    converted as training converted it (no 8-bit resize of the file before the model's own resize)."""
    model, pca, svms, directory, _ = trained
    raw = load_data("digits").test.images[:3]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(raw):
        Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
    assert main(["explain", str(folder), "--bundle", str(directory), "--out", str(tmp_path / "m")]) == 0
    written = np.load(tmp_path / "m" / "maps.npz")
    with torch.no_grad():
        expected = explain(model.backbone(to_model_input(raw, 32)), model.head, pca, 2, svms["rbf-std"])
    np.testing.assert_allclose(written["gradcam_raw"], expected.gradcam.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(written["svm_raw"], expected.svm.numpy(), rtol=1e-5, atol=1e-6)
