"""``explain`` vs autograd through an equivalent torch module of the whole head (float64, 1e-10).

Random heads (pooling or none, channel-major or channels-last, 2–4 dense layers, random
catalogue activations), PCA on the pooled features x themselves (``pca_after=0``) or after any
layer before the last (plain or whitened), and every SVM kind scikit-learn offers here (SVC with
each kernel, LinearSVC, OneVsRestClassifier), binary and multi-class, with and without a
StandardScaler — all fitted for real on the head's own outputs.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from torch import nn

from cadcam_numeric.engine.activation_modules import activation_module
from cadcam_numeric.engine.explain import explain, position_gradients
from cadcam_numeric.generated import ACTIVATIONS
from proofs_tests.reference_head import Permute, ReferenceClassScores, check_reference_matches_sklearn, reference_pca
from proofs_tests.strategies import parameter_values

POOLINGS = {
    "none": lambda: None,
    "max2": lambda: nn.MaxPool2d(2),
    "max3s2p1": lambda: nn.MaxPool2d(3, stride=2, padding=1),
    "avg2": lambda: nn.AvgPool2d(2),
    "avg3s2p1_incl": lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True),
    "avg3s2p1_excl": lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    "adaptive2": lambda: nn.AdaptiveAvgPool2d((2, 2)),
    "adaptivemax2": lambda: nn.AdaptiveMaxPool2d((2, 2)),
    "adaptivemax3": lambda: nn.AdaptiveMaxPool2d(3),
}
SVMS = ["svc-linear", "svc-poly", "svc-rbf", "svc-sigmoid", "linearsvc", "ovr-svc-rbf", "ovr-linearsvc"]


def make_svm(kind: str, n_classes: int):
    if kind.startswith("svc-"):
        shape = "ovo" if n_classes > 2 else "ovr"
        return SVC(kernel=kind[4:], gamma=0.5, coef0=0.3, degree=2, decision_function_shape=shape)
    if kind == "linearsvc":
        return LinearSVC(C=1.0, max_iter=20000)
    if kind == "ovr-svc-rbf":
        return OneVsRestClassifier(SVC(kernel="rbf", gamma=0.5))
    return OneVsRestClassifier(LinearSVC(max_iter=20000))


@st.composite
def problems(draw):
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    t, h, w = draw(st.integers(1, 4)), draw(st.integers(4, 6)), draw(st.integers(4, 6))
    pool_name = draw(st.sampled_from(sorted(POOLINGS)))
    pool = POOLINGS[pool_name]()
    channels_last = draw(st.booleans())
    probe = pool(torch.zeros(1, t, h, w)) if pool is not None else torch.zeros(1, t, h, w)
    depth = draw(st.integers(2, 4))
    widths = [probe[0].numel()] + [draw(st.integers(3, 8)) for _ in range(depth)]
    dense: list[nn.Module] = []
    for i in range(depth):
        lin = nn.Linear(widths[i], widths[i + 1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen, dtype=torch.float64) / widths[i] ** 0.5)
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen, dtype=torch.float64) * 0.3)
        name = draw(st.sampled_from(sorted(ACTIVATIONS)))
        dense += [lin, activation_module(name, **draw(parameter_values(ACTIVATIONS[name].parameters)))]
    front = [pool] if pool is not None else []
    head = nn.Sequential(*front, nn.Flatten(), *dense)
    reference = nn.Sequential(*front, *([Permute()] if channels_last else []), nn.Flatten(), *dense)
    features = torch.randn(30, t, h, w, generator=gen, dtype=torch.float64)
    if draw(st.booleans()):
        features = features.relu()  # post-ReLU conv features, as a real backbone gives
    pca_after = draw(st.integers(0, depth - 1))  # 0: PCA on the pooled, flattened features x
    to_l = reference[: len(front) + (1 if channels_last else 0) + 1 + 2 * pca_after]  # up to q_l
    with torch.no_grad():
        q_l = to_l(features)
    b = draw(st.integers(1, min(3, widths[pca_after])))
    pca = PCA(b, whiten=draw(st.booleans())).fit(q_l.numpy())
    # a whitened component without variance makes scikit-learn's own transform NaN (cadcam refuses it)
    assume(not pca.whiten or bool(np.all(pca.explained_variance_ > 1e-12 * pca.explained_variance_.max())))
    scores = pca.transform(q_l.numpy())
    n_classes = draw(st.sampled_from([2, 3]))
    labels = np.arange(len(scores)) % n_classes
    kind = draw(st.sampled_from(SVMS))
    svm = make_svm(kind, n_classes)
    if draw(st.booleans()):
        svm = make_pipeline(StandardScaler(with_mean=draw(st.booleans()), with_std=draw(st.booleans())), svm)
    svm.fit(scores, labels)
    return head, reference, to_l, features, pca, pca_after, svm, channels_last, f"{pool_name}/{kind}/{n_classes}"


def grads_wrt_features(module: nn.Module, features: torch.Tensor, select) -> torch.Tensor:
    """∂(selected output)/∂F for every image, (N, T, M, N'), by autograd (images are independent)."""
    f = features.clone().requires_grad_(True)
    out = select(module(f))
    (g,) = torch.autograd.grad(out.sum(), f)
    return g


def close(actual, expected, what):
    scale = max(float(expected.abs().max()), 1e-300)
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10 * scale, msg=lambda m: f"{what}: {m}")


def expected_maps(grad: torch.Tensor, features: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    weights = grad.sum(dim=(-2, -1))
    if method == "grad-cam":
        signed = torch.einsum("nt,nthw->nhw", weights, features)
    elif method == "hires-cam":
        signed = (grad * features).sum(1)
    else:
        xw = (grad * features / (features.sum(dim=(-2, -1), keepdim=True) + 1e-7)).sum(dim=(-2, -1))
        signed = torch.einsum("nt,nthw->nhw", xw, features)
    return weights, signed


@given(problem=problems(), method=st.sampled_from(["grad-cam", "xgrad-cam", "hires-cam"]))
def test_every_map_and_weight_matches_autograd(problem, method):
    head, reference, to_l, features, pca, pca_after, svm, channels_last, label = problem
    result = explain(features, head, pca, pca_after, svm, method=method, channels_last=channels_last)
    grads = position_gradients(features, head, pca, pca_after, svm, channels_last=channels_last)
    n = features.shape[0]
    rows = torch.arange(n)

    # Grad-CAM for the CNN's own prediction
    logits = reference(features).detach()
    torch.testing.assert_close(result.logits, logits, rtol=1e-12, atol=1e-12)
    assert torch.equal(result.cnn_prediction, logits.argmax(1))
    g = grads_wrt_features(reference, features, lambda y: y[rows, result.cnn_target])
    close(grads.gradcam, g, f"class position gradients [{label}]")
    weights, signed = expected_maps(g, features, method)
    close(result.class_weights, weights, f"class weights [{label}]")
    close(result.gradcam, signed.relu(), f"gradcam [{label}]")

    # PCA-Grad-CAM, every component and sign
    pca_module = nn.Sequential(to_l, reference_pca(pca, features))
    close(result.pca_scores, pca_module(features).detach(), f"pca scores [{label}]")
    for b in range(pca.n_components_):
        g = grads_wrt_features(pca_module, features, lambda p, b=b: p[:, b])
        close(grads.pca[:, b], g, f"pca position gradients b={b} [{label}]")
        weights, signed = expected_maps(g, features, method)
        close(result.pca_weights[:, b], weights, f"pca weights b={b} [{label}]")
        close(result.pca_positive[:, b], signed.relu(), f"pca positive b={b} [{label}]")
        close(result.pca_negative[:, b], (-signed).relu(), f"pca negative b={b} [{label}]")

    # SVM-Grad-CAM for the SVM's own prediction, oriented per derivations/NOTES.md
    p = pca_module(features).detach()
    check_reference_matches_sklearn(svm, p)
    np.testing.assert_array_equal(np.asarray(result.svm_prediction.cpu()), svm.predict(p.numpy()))
    classes = list(svm.classes_)
    index = torch.tensor([classes.index(c) for c in svm.predict(p.numpy())])
    svm_module = nn.Sequential(pca_module, ReferenceClassScores(svm))
    close(result.svm_scores, svm_module(features).detach(), f"svm scores [{label}]")
    g = grads_wrt_features(svm_module, features, lambda a: a[rows, index])
    close(grads.svm, g, f"svm position gradients [{label}]")
    weights, signed = expected_maps(g, features, method)
    close(result.svm_weights, weights, f"svm weights [{label}]")
    close(result.svm, signed.relu(), f"svm map [{label}]")
