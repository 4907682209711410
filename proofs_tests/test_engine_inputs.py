"""Bad input gets a clear error naming the argument; options behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric import CadcamInputError, PCASVMGradCAM, explain, normalise_pca_pair, overlay, upsample


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    head = nn.Sequential(
        nn.Flatten(), nn.Linear(4 * 3 * 3, 6), nn.ReLU(), nn.Linear(6, 5), nn.Sigmoid(), nn.Linear(5, 3)
    )
    features = torch.rand(20, 4, 3, 3)
    with torch.no_grad():
        q2 = head[:5](features).numpy()
    pca = PCA(2).fit(q2)
    svm = SVC(kernel="rbf").fit(pca.transform(q2), np.arange(20) % 3)
    return head, features, pca, svm


def raises(match, *args, **kwargs):
    with pytest.raises(CadcamInputError, match=match):
        explain(*args, **kwargs)


def test_shape_mismatch_between_head_and_features(setup):
    head, features, _, _ = setup
    raises(
        r"features: shape \(20, 4, 3, 4\) flattens to 4x3x4 = 48.*in_features = 36",
        features.new_zeros(20, 4, 3, 4),
        head,
    )
    raises(r"features: expected 4 dimensions", features[0], head)
    raises(r"features: expected a torch.Tensor", features.numpy(), head)


def test_nan_and_inf_features(setup):
    head, features, _, _ = setup
    bad = features.clone()
    bad[0, 0, 0, 0] = float("nan")
    bad[1, 0, 0, 0] = float("inf")
    raises(r"features: 2 NaN/Inf values", bad, head)


def test_pca_width_and_position(setup):
    head, features, pca, _ = setup
    raises(r"pca: fitted on 5 features, but dense layer pca_after has width 6", features, head, pca, 1)
    raises(r"pca_after: expected an integer in 0..3, got None", features, head, pca)
    raises(
        r"pca_after: expected 0 \(PCA on the pooled features x\) or the 1-based index .* in 1..3, got 4",
        features,
        head,
        pca,
        4,
    )
    raises(r"pca: fitted on 5 features, but the pooled features x \(pca_after=0\) has width", features, head, pca, 0)


def test_unfitted_estimators(setup):
    head, features, pca, _ = setup
    raises(r"pca: PCA is not fitted", features, head, PCA(2), 2)
    raises(r"svm: SVC is not fitted", features, head, pca, 2, SVC())


def test_unsupported_estimators_and_layers(setup):
    head, features, pca, svm = setup
    knn = KNeighborsClassifier(1).fit(np.zeros((3, 2)), [0, 1, 2])
    raises(
        r"svm: expected a fitted SVC, NuSVC, LinearSVC, LogisticRegression, .*, a OneVsRestClassifier",
        features,
        head,
        pca,
        2,
        knn,
    )
    pre = SVC(kernel="precomputed").fit(np.eye(4), [0, 1, 0, 1])
    raises(r"svm: kernel 'precomputed' is not supported", features, head, pca, 2, pre)
    raises(r"pca_after: expected an integer", features, head, svm=svm)  # a probe names the layer it reads
    conv_head = nn.Sequential(nn.Flatten(), nn.Linear(36, 3), nn.LayerNorm(3))
    raises(r"head: cannot differentiate LayerNorm at position 2 \(0-based\)", features, conv_head)
    raises(r"head: expected a torch.nn.Sequential", features, nn.Linear(36, 3))
    raises(
        r"head: expected optional pooling .* then Flatten first, found Linear",
        features,
        nn.Sequential(nn.Linear(36, 3)),
    )
    raises(
        r"head: cannot differentiate a second activation",
        features,
        nn.Sequential(nn.Flatten(), nn.Linear(36, 3), nn.ReLU(), nn.Tanh()),
    )


def test_training_mode_dropout_is_refused_and_eval_dropout_is_a_no_op(setup):
    _, features, _, _ = setup
    torch.manual_seed(1)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(36, 6), nn.ReLU(), nn.Linear(6, 3))
    dropped = nn.Sequential(plain[0], plain[1], plain[2], nn.Dropout(0.5), plain[3])
    raises(r"Dropout is in training mode", features, dropped)
    dropped.eval()
    torch.testing.assert_close(explain(features, dropped).gradcam, explain(features, plain).gradcam)


def test_batchnorm_is_folded(setup):
    _, features, _, _ = setup
    torch.manual_seed(2)
    bn = nn.BatchNorm1d(6)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    head = nn.Sequential(nn.Flatten(), nn.Linear(36, 6), bn, nn.ReLU(), nn.Linear(6, 3)).double().eval()
    f = features.double().requires_grad_(True)
    out = head(f)
    target = out.argmax(1)
    (g,) = torch.autograd.grad(out[torch.arange(20), target].sum(), f)
    torch.testing.assert_close(explain(features.double(), head).class_weights, g.sum((-2, -1)), rtol=1e-10, atol=1e-12)


def test_targets(setup):
    head, features, pca, svm = setup
    r = explain(features, head, pca, 2, svm, targets=[2] * 20)
    assert r.cnn_target.tolist() == [2] * 20 and r.svm_target.tolist() == [2] * 20
    raises(r"targets: class indices must lie in \[0, 3\)", features, head, targets=[5] * 20)
    raises(r"targets: expected 20 labels", features, head, targets=[0, 1])
    with torch.no_grad():
        scores = pca.transform(head[:5](features).numpy())
    svm_02 = SVC().fit(scores, 2 * (np.arange(20) % 2))  # classes {0, 2}: label 1 is valid for the CNN only
    raises(r"targets: 1 is not one of the SVM's classes \[0, 2\]", features, head, pca, 2, svm_02, targets=[1] * 20)


def test_dtype_and_method_options(setup):
    head, features, pca, svm = setup
    assert explain(features, head, pca, 2, svm).gradcam.dtype == torch.float32
    r64 = explain(features, head, pca, 2, svm, dtype=torch.float64)
    assert r64.gradcam.dtype == r64.pca_weights.dtype == r64.svm.dtype == torch.float64
    raises(r"method: expected one of", features, head, method="layer-cam")
    raises(r"dtype: expected torch.float32 or torch.float64", features, head, dtype=torch.float16)


def test_pca_pair_normalisation_shares_nu():
    pos = torch.tensor([[[0.0, 2.0], [1.0, 0.0]]])
    neg = torch.tensor([[[4.0, 0.0], [0.0, 1.0]]])
    p, n = normalise_pca_pair(pos, neg)
    assert p.tolist() == [[[0.0, 0.5], [0.25, 0.0]]] and n.tolist() == [[[1.0, 0.0], [0.0, 0.25]]]
    zp, zn = normalise_pca_pair(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))
    assert zp.abs().sum() == 0 and zn.abs().sum() == 0


def test_normalise_is_exact_for_tiny_maps_and_zero_for_constant_maps():
    from cadcam_numeric import normalise

    tiny = torch.tensor([[[0.0, 1e-5], [2e-5, 4e-5]]], dtype=torch.float64)
    assert normalise(tiny).tolist() == [[[0.0, 0.25], [0.5, 1.0]]]
    assert normalise(torch.full((1, 2, 2), 3.0)).abs().sum() == 0


def test_upsample_and_overlay():
    maps = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    up = upsample(maps, (4, 4))
    assert up.shape == (1, 4, 4) and float(up[0, 0, 0]) == 0.0 and float(up[0, 0, 3]) == 1.0
    blended = overlay(np.zeros((4, 4, 3)), up[0].numpy(), alpha=0.5)
    assert blended.shape == (4, 4, 3) and blended.max() <= 0.5 + 1e-12
    with pytest.raises(CadcamInputError, match="cam: shape"):
        overlay(np.zeros((4, 4, 3)), np.zeros((2, 2)))


def test_model_entry_point_rejects_a_head_that_is_not_the_rest_of_the_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    wrong_head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with (
        pytest.raises(CadcamInputError, match="does not reproduce model"),
        PCASVMGradCAM(model, model[1], wrong_head) as cam,
    ):
        cam(torch.rand(2, 1, 4, 4))
    with pytest.raises(CadcamInputError, match="target_layer: must be a submodule"):
        PCASVMGradCAM(model, nn.ReLU(), wrong_head)


@pytest.mark.parametrize("kind", ["svc", "linearsvc", "ovr", "svc3"])
def test_prediction_ties_follow_scikit_learn(kind):
    """Decisions exactly 0 (constant scores): each estimator's own tie rule is reproduced."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    from cadcam_numeric.engine.classifiers import parse_svm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    n_classes = 3 if kind in ("ovr", "svc3") else 2
    y = np.arange(40) % n_classes
    est = {
        "svc": SVC(kernel="linear"),
        "linearsvc": LinearSVC(),
        "ovr": OneVsRestClassifier(SVC(kernel="linear")),
        "svc3": SVC(kernel="linear"),
    }[kind].fit(x, y)
    head = parse_svm(est, torch.zeros((), dtype=torch.float64))
    for block in head.blocks:  # force every decision to exactly 0
        block.dual_coef.zero_()
        block.intercept.zero_()
    if kind == "ovr":
        for e in est.estimators_:
            e._dual_coef_[:] = 0
            e._intercept_[:] = 0
    elif kind == "linearsvc":
        est.coef_[:] = 0
        est.intercept_[:] = 0
    else:
        est._dual_coef_[:] = 0
        est._intercept_[:] = 0
    p = torch.from_numpy(x[:5])
    assert np.array_equal(head.predict(p), est.predict(x[:5]))
