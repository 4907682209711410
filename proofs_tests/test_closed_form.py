"""Issue 24: ``ClosedForm`` — the maps as one module. It equals ``explain()`` for every classifier
kind (float64), explains every class at once against autograd, holds its state as buffers, and
exports: ``torch.export`` with a dynamic batch, ONNX Runtime on another batch size and
``torch.compile(fullgraph=True)`` all equal eager (float32, to 1e-5 of max(1, |value|); see
``_assert_equal_to``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsOneClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC
from torch import nn

from cadcam_numeric import CadcamInputError, ClosedForm, ExplainingModel, explain
from cadcam_numeric.engine.map_methods import METHODS

CLASSIFIERS = {
    "svc-rbf-ovo": lambda: SVC(kernel="rbf", gamma=0.5),
    "svc-poly-binary": lambda: SVC(kernel="poly", degree=2, gamma=0.3, coef0=1.0),
    "linear-svc-ovr": lambda: LinearSVC(),
    "logistic": lambda: LogisticRegression(max_iter=2000),
    "ovo-linear": lambda: OneVsOneClassifier(LinearSVC()),
    "pipeline-std-svc": lambda: make_pipeline(StandardScaler(), SVC(gamma=0.5)),
    "pipeline-minmax-logistic": lambda: make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000)),
    "calibrated-sigmoid": lambda: CalibratedClassifierCV(LinearSVC(), method="sigmoid", cv=3),
    "calibrated-isotonic": lambda: CalibratedClassifierCV(LogisticRegression(max_iter=2000), method="isotonic", cv=3),
}
MAPS = ("gradcam", "class_weights", "pca_positive", "pca_negative", "pca_weights", "svm", "svm_weights")


def problem(name: str, pca_after: int, dtype: torch.dtype = torch.float64):
    """A small head over 8 x 5 x 5 features, PCA(3) after dense layer ``pca_after`` (0: on x), and
    the classifier ``name`` fitted on the scores (string labels; two classes for the binary kind)."""
    torch.manual_seed(0)
    head = nn.Sequential(
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(),
        nn.Linear(12, 4),
    ).to(dtype).eval()  # fmt: skip
    features = torch.rand(30, 8, 5, 5, dtype=dtype, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q = (head[:2] if pca_after == 0 else head[: 2 + 2 * pca_after])(features).double().numpy()
    pca = PCA(3).fit(q)
    k = 2 if "binary" in name else 3
    labels = np.array(["cat", "dog", "owl"])[np.arange(len(q)) % k]
    svm = CLASSIFIERS[name]().fit(pca.transform(q), labels)
    return head, features, pca, svm


@pytest.mark.parametrize("pca_after", [0, 2])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_closed_form_equals_explain_for_every_classifier_kind(name, pca_after):
    head, features, pca, svm = problem(name, pca_after)
    for method in ("grad-cam", "xgrad-cam", "hires-cam"):
        cf = ClosedForm(head, pca, pca_after, svm, method=method, dtype=torch.float64)
        out = cf(features)
        expected = explain(features, head, pca, pca_after, svm, method=method)
        for key in (*MAPS, "logits", "pca_scores", "svm_scores"):
            torch.testing.assert_close(out[key], getattr(expected, key), rtol=1e-12, atol=1e-14, msg=key)
        assert cf.svm_classes[out["svm_prediction"].numpy()].tolist() == list(expected.svm_prediction)
        assert list(out) == [
            "logits", "cnn_prediction", "gradcam", "class_weights", "pca_scores", "pca_positive", "pca_negative",
            "pca_weights", "svm_scores", "svm_prediction", "svm", "svm_weights", "finite",
        ]  # fmt: skip


def test_a_head_without_linear_and_a_kernel_pca_on_the_pooled_features():
    """The CNN-SVM recipe with KernelPCA: no Linear, so T is read from what the transform was fitted on."""
    from sklearn.decomposition import KernelPCA

    head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())
    features = torch.rand(30, 8, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = head(features).numpy()
    pca = KernelPCA(3, kernel="rbf", gamma=0.1).fit(x)
    svm = SVC(gamma=0.5).fit(pca.transform(x), np.arange(30) % 3)
    cf = ClosedForm(head, pca, 0, svm, dtype=torch.float64)
    out, expected = cf(features), explain(features, head, pca, 0, svm)
    assert next(iter(out)) == "pca_scores" and "gradcam" not in out
    for key in ("pca_positive", "pca_negative", "pca_weights", "svm", "svm_weights", "pca_scores", "svm_scores"):
        torch.testing.assert_close(out[key], getattr(expected, key), rtol=1e-12, atol=1e-14, msg=key)


def test_explain_on_the_module_takes_targets_as_explain_does():
    head, features, pca, svm = problem("svc-rbf-ovo", 2)
    cf = ClosedForm(head, pca, 2, svm, method="xgrad-cam", dtype=torch.float64)
    got = cf.explain(features, targets=2, svm_targets="owl")
    want = explain(features, head, pca, 2, svm, targets=2, svm_targets="owl", method="xgrad-cam")
    for key in MAPS:
        torch.testing.assert_close(getattr(got, key), getattr(want, key), rtol=0, atol=0, msg=key)
    plain = cf.explain(features)
    torch.testing.assert_close(plain.gradcam, cf(features)["gradcam"], rtol=1e-12, atol=1e-14)


def test_every_class_at_once_equals_autograd_per_class():
    head, features, pca, svm = problem("svc-rbf-ovo", 2)
    out = ClosedForm(head, pca, 2, svm, classes="all", dtype=torch.float64)(features)
    assert out["gradcam"].shape == (30, 4, 5, 5) and out["svm"].shape == (30, 3, 5, 5)
    leaf = features.clone().requires_grad_(True)
    logits = head(leaf)
    for c in range(4):
        (grad,) = torch.autograd.grad(logits[:, c].sum(), leaf, retain_graph=True)
        torch.testing.assert_close(out["class_weights"][:, c], grad.sum(dim=(-2, -1)), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(out["gradcam"][:, c], explain(features, head, targets=c).gradcam, rtol=1e-12, atol=0)
    for k, label in enumerate(svm.classes_):
        per = explain(features, head, pca, 2, svm, targets=0, svm_targets=label)
        torch.testing.assert_close(out["svm"][:, k], per.svm, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(out["svm_weights"][:, k], per.svm_weights, rtol=1e-12, atol=1e-14)


def test_its_state_is_buffers():
    """.double(), state_dict() and load_state_dict() work as for any module."""
    head, features, pca, svm = problem("pipeline-std-svc", 2, torch.float32)
    cf = ClosedForm(head, pca, 2, svm)
    assert cf.state_dict() and all(v.dtype == torch.float32 for v in cf.state_dict().values())
    single = cf(features)
    as_double = cf.double()(features.double())  # the same (float32-rounded) numbers, computed in float64
    assert all(as_double[key].dtype == torch.float64 for key in MAPS)
    assert torch.equal(as_double["svm_prediction"], single["svm_prediction"])
    for key in MAPS:
        scale = float(as_double[key].abs().max())
        assert float((as_double[key] - single[key].double()).abs().max()) <= 1e-4 * scale, key
    other = ClosedForm(problem("pipeline-std-svc", 2, torch.float64)[0].apply(_reset), pca, 2, svm, dtype=torch.float64)
    other.load_state_dict(cf.state_dict())
    for key in MAPS:
        torch.testing.assert_close(other(features.double())[key], as_double[key], rtol=0, atol=0, msg=key)


def _reset(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        module.reset_parameters()


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_features_are_flagged_not_raised_and_shapes_named(method):
    head, features, pca, svm = problem("logistic", 2, torch.float32)
    cf = ClosedForm(head, pca, 2, svm, method=method)
    assert cf(features)["finite"].all()
    for value, image, at in [(float("nan"), 3, (0, 0, 0)), (float("inf"), 5, (7, 4, 2)), (-float("inf"), 0, (2, 1, 3))]:
        bad = features.clone()
        bad[(image, *at)] = value
        assert cf(bad)["finite"].tolist() == [i != image for i in range(30)], (method, value)
    # a max pool drops a -inf from what it passes on; the flag must not miss it
    bad = features.clone()
    bad[4, 1, 2, 2] = -float("inf")
    max_pooled = ClosedForm(nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 3)), method=method)
    assert max_pooled(bad)["finite"].tolist() == [i != 4 for i in range(30)]
    with pytest.raises(CadcamInputError, match=r"features: expected \(N, 8, M, N'\), got \(30, 7, 5, 5\)"):
        cf(features[:, :7])
    with pytest.raises(CadcamInputError, match="feature_shape: this head's pooling does not fix"):
        ClosedForm(nn.Sequential(nn.Flatten(), nn.Linear(200, 3)))
    ClosedForm(nn.Sequential(nn.Flatten(), nn.Linear(200, 3)), feature_shape=(8, 5, 5))(features)
    with pytest.raises(CadcamInputError, match="classes: expected 'predicted' or 'all'"):
        ClosedForm(head, classes="some")


def _onnx_outputs(cf: nn.Module, example: torch.Tensor, other: torch.Tensor, path) -> list[np.ndarray]:
    import onnxruntime

    batch = torch.export.Dim("batch")
    torch.onnx.export(cf, (example,), str(path), dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: other.numpy()})


def _assert_equal_to(eager: dict, got: dict | list, what: str) -> None:
    """Integer and boolean outputs equal; floats to 1e-5 of max(1, their largest magnitude): a kernel
    SVM's decision is a sum of O(1) terms that cancels to about 0.02 here, so float32 rounding in
    another summation order (ONNX Runtime's) moves it by ~1e-6, far above 1e-5 of the sum itself. Non-finite
    entries (an isotonic calibration's log-probability of a class it rules out is -inf) must be equal."""
    values = list(got.values()) if isinstance(got, dict) else got
    assert len(values) == len(eager), what
    for (key, want), value in zip(eager.items(), values, strict=True):
        value = torch.as_tensor(value)
        if want.dtype in (torch.bool, torch.int64):
            assert torch.equal(value, want), (what, key)
        else:
            finite = torch.isfinite(want)
            assert torch.equal(want[~finite], value[~finite]), (what, key, "non-finite entries differ")
            scale = max(float(want[finite].abs().max()), 1.0) if finite.any() else 1.0
            difference = float((value[finite] - want[finite]).abs().max()) if finite.any() else 0.0
            assert difference <= 1e-5 * scale, (what, key, difference)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_it_exports_compiles_and_runs_in_onnx_runtime(name, tmp_path):
    head, features, pca, svm = problem(name, 2, torch.float32)
    cf = ClosedForm(head, pca, 2, svm).eval()
    other = features[:7] * 1.5
    eager = cf(other)
    exported = torch.export.export(cf, (features,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    _assert_equal_to(eager, exported.module()(other), "torch.export")
    _assert_equal_to(eager, _onnx_outputs(cf, features, other, tmp_path / "cf.onnx"), "ONNX Runtime")
    torch._dynamo.reset()
    _assert_equal_to(eager, torch.compile(cf, fullgraph=True, backend="aot_eager")(other), "torch.compile")


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="inductor needs a C++ compiler")
@pytest.mark.parametrize(
    ("name", "pca_after", "classes"), [("svc-rbf-ovo", 2, "predicted"), ("calibrated-isotonic", 0, "all")]
)
def test_it_compiles_with_the_default_inductor_backend(name, pca_after, classes):
    """torch.compile's default backend (inductor: generated C++ on the CPU), whole graph, a second
    batch size, and the same values as eager; isotonic calibration and PCA on x included. The batches
    are off the calibration set: at one of its points f sits on an isotonic threshold, where float32
    rounding in another summation order picks the other one-sided slope (see engine/calibrated.py)."""
    torch._dynamo.reset()  # each class mode once, on one problem each (an inductor build costs ~20 s on 2 cores)
    head, features, pca, svm = problem(name, pca_after, torch.float32)
    cf = ClosedForm(head, pca, pca_after, svm, classes=classes, method="hires-cam").eval()
    compiled = torch.compile(cf, fullgraph=True)
    for batch in (features * 1.01, features[:5] * 1.5):
        _assert_equal_to(cf(batch), compiled(batch), f"inductor {name} {classes}")


def test_the_whole_model_is_one_graph_images_in_maps_out(tmp_path):
    """ExplainingModel(backbone, cf): cf's keys plus the image-resolution maps, as ImageMaps scales
    them (checked against PCASVMGradCAM on the same model), exported to ONNX Runtime too."""
    from cadcam_numeric import PCASVMGradCAM

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    head, _, pca, svm = problem("svc-rbf-ovo", 2, torch.float32)
    images = torch.rand(6, 3, 10, 10, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        q = head[:6](backbone(images)).numpy()
    pca = PCA(3).fit(q)
    svm = SVC(gamma=0.5).fit(pca.transform(q), list("abcabc"))
    model = ExplainingModel(backbone, ClosedForm(head, pca, 2, svm)).eval()
    out = model(images)
    with PCASVMGradCAM(nn.Sequential(backbone, head), backbone, head, pca, 2, svm) as cam:
        maps = cam(images)
    assert list(out)[: len(model.closed_form(backbone(images)))] == list(model.closed_form(backbone(images)))
    assert list(out)[-4:] == ["image_gradcam", "image_pca_positive", "image_pca_negative", "image_svm"]
    pairs = [("gradcam", maps.gradcam), ("pca_positive", maps.pca_positive), ("pca_negative", maps.pca_negative)]
    for key, value in (*pairs, ("svm", maps.svm)):
        torch.testing.assert_close(out[f"image_{key}"], value, rtol=1e-5, atol=1e-6, msg=key)
    other = images[:2]
    with torch.no_grad():
        eager = model(other)
    _assert_equal_to(eager, _onnx_outputs(model, images, other, tmp_path / "model.onnx"), "ONNX Runtime")


@pytest.mark.parametrize("classes", ["predicted", "all"])
def test_a_head_alone_explains_exports_and_matches_autograd(classes, tmp_path):
    """No transform, no classifier: Grad-CAM only. Weights equal autograd's of the predicted (or each)
    class in float64; the float32 module exports with a dynamic batch and runs in ONNX Runtime."""
    head, features, _, _ = problem("svc-rbf-ovo", 2)
    out = ClosedForm(head, classes=classes, dtype=torch.float64)(features)
    assert list(out) == ["logits", "cnn_prediction", "gradcam", "class_weights", "finite"]
    leaf = features.clone().requires_grad_(True)
    logits = head(leaf)
    for c in range(logits.shape[1]):
        (grad,) = torch.autograd.grad(logits[:, c].sum(), leaf, retain_graph=True)
        chosen = out["cnn_prediction"] == c
        got = out["class_weights"][:, c] if classes == "all" else out["class_weights"][chosen]
        want = grad.sum(dim=(-2, -1)) if classes == "all" else grad.sum(dim=(-2, -1))[chosen]
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    head32, features32, _, _ = problem("svc-rbf-ovo", 2, torch.float32)
    cf = ClosedForm(head32, classes=classes).eval()
    other = features32[:7] * 1.5
    exported = torch.export.export(cf, (features32,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    _assert_equal_to(cf(other), exported.module()(other), f"head alone export {classes}")
    onnx = _onnx_outputs(cf, features32, other, tmp_path / "head.onnx")
    _assert_equal_to(cf(other), onnx, f"head alone ORT {classes}")
