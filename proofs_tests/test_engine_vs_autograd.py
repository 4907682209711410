"""``explain`` vs autograd through an equivalent torch module of the whole head (float64, 1e-10).

Hypothesis draws heads from the whole accepted space: pooling or none, channel-major or
channels-last, 2–4 dense layers with random catalogue activations (PReLU shared or per unit), a
final Softmax/LogSoftmax or none, or no Linear at all (PCA on the pooled features); the transform
on x itself (``pca_after=0``) or after any layer before the last — PCA (plain, whitened),
IncrementalPCA, TruncatedSVD, KernelPCA with each kernel — after 0–2 scalers/normalisers; and
every classifier kind (SVC/NuSVC with each kernel, LinearSVC, LogisticRegression, LDA, Ridge, SGD,
one-vs-rest, one-vs-one, CalibratedClassifierCV sigmoid/isotonic, a fitted GridSearchCV), after
0–2 scalers, binary and multi-class, integer and string labels — all fitted for real on the head's
own outputs. The references (``cadcam_numeric/verification/sklearn_references.py``) are written from
scikit-learn's attributes and checked against its own outputs first; ``svm_prediction`` must equal
``predict()`` on every case. ``ClosedForm`` on the same draw must equal ``explain`` exactly, and with
``classes="all"`` equal autograd for every class of the CNN and of the classifier. Beside the 40
random draws, every transform and every classifier kind is drawn twice by name
(``test_every_kind_is_exercised``), so none is left to chance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA, IncrementalPCA, KernelPCA, TruncatedSVD
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC, NuSVC
from torch import nn

from cadcam_numeric.engine.activation_modules import activation_module
from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.explain import explain, position_gradients
from cadcam_numeric.generated import ACTIVATIONS
from proofs_tests.reference_head import (
    Permute,
    ReferenceClassScores,
    ReferenceTransform,
    check_reference_matches_sklearn,
)
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
CLASSIFIERS = {
    "svc-linear": lambda: SVC(kernel="linear"),
    "svc-poly": lambda: SVC(kernel="poly", gamma=0.5, coef0=0.3, degree=2),
    "svc-rbf": lambda: SVC(kernel="rbf", gamma=0.5),
    "svc-sigmoid": lambda: SVC(kernel="sigmoid", gamma=0.5, coef0=0.3),
    "svc-rbf-ovo-shape": lambda: SVC(gamma=0.5, decision_function_shape="ovo"),
    "nusvc-rbf": lambda: NuSVC(nu=0.3, gamma=0.5),
    "linearsvc": lambda: LinearSVC(C=1.0, max_iter=20000),
    "logistic": lambda: LogisticRegression(max_iter=2000),
    "lda": lambda: LinearDiscriminantAnalysis(),
    "ridge": lambda: RidgeClassifier(),
    "sgd-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "ovr-svc-rbf": lambda: OneVsRestClassifier(SVC(kernel="rbf", gamma=0.5)),
    "ovr-linearsvc": lambda: OneVsRestClassifier(LinearSVC(max_iter=20000)),
    "ovo-svc-rbf": lambda: OneVsOneClassifier(SVC(gamma=0.5)),
    "ovo-logistic": lambda: OneVsOneClassifier(LogisticRegression()),
    "ovo-linearsvc": lambda: OneVsOneClassifier(LinearSVC()),
    "perceptron": lambda: Perceptron(random_state=0),
    "randomized-logistic": lambda: RandomizedSearchCV(
        LogisticRegression(), {"C": [0.1, 1.0, 10.0]}, n_iter=2, cv=2, random_state=0
    ),
    "calibrated-sigmoid": lambda: CalibratedClassifierCV(LogisticRegression(), method="sigmoid", cv=2),
    "calibrated-isotonic": lambda: CalibratedClassifierCV(LinearSVC(), method="isotonic", cv=2),
    "grid-svc": lambda: GridSearchCV(SVC(gamma=0.5), {"C": [0.5, 2.0]}, cv=2),
}
TRANSFORMS = {
    "pca": lambda b: PCA(b),
    "pca-whiten": lambda b: PCA(b, whiten=True),
    "incremental": lambda b: IncrementalPCA(b),
    "incremental-whiten": lambda b: IncrementalPCA(b, whiten=True),
    "truncated-svd": lambda b: TruncatedSVD(b, random_state=0),
    "kernel-linear": lambda b: KernelPCA(b, kernel="linear"),
    "kernel-poly": lambda b: KernelPCA(b, kernel="poly", degree=2, coef0=1.0),
    "kernel-rbf": lambda b: KernelPCA(b, kernel="rbf"),
    "kernel-sigmoid": lambda b: KernelPCA(b, kernel="sigmoid", gamma=0.05, coef0=0.2),
    "kernel-cosine": lambda b: KernelPCA(b, kernel="cosine"),
}
PREPROCESSORS = {
    "standard": StandardScaler,
    "robust": RobustScaler,
    "minmax": MinMaxScaler,
    "maxabs": MaxAbsScaler,
    "normalizer": Normalizer,
}
LABELS = np.array(["ant", "bee", "cat"])


def normaliser_inputs_nonzero(estimator, x: np.ndarray) -> bool:
    """x/‖x‖ has no derivative at 0: the drawn inputs of every Normalizer stay away from it."""
    if not hasattr(estimator, "steps"):
        return True
    for _, step in estimator.steps[:-1]:
        if isinstance(step, Normalizer) and float(np.linalg.norm(x, axis=1).min()) < 1e-3:
            return False
        x = step.transform(x)
    return True


def fitted_parts(est):
    """Every fitted estimator inside ``est`` (pipelines, searches, one-vs-rest/one, calibration)."""
    yield est
    inner = [s for _, s in getattr(est, "steps", [])]
    inner += list(getattr(est, "estimators_", []))
    inner += [c.estimator for c in getattr(est, "calibrated_classifiers_", [])]
    inner += [est.best_estimator_] if hasattr(est, "best_estimator_") else []
    for part in inner:
        yield from fitted_parts(part)


def well_conditioned(est) -> bool:
    """A libsvm expansion Σ α_i K_i + b with Σ|α_i| large cancels: its float64 value is good to
    ~1e-16 Σ|α_i|, not to 1e-10 of the result. Such fits (NuSVC on near-degenerate scores) are skipped;
    so is a KernelPCA component whose eigenvalue is tiny (its coefficients scale as 1/√eigenvalue)."""
    for part in fitted_parts(est):
        if hasattr(part, "dual_coef_") and float(np.abs(part.dual_coef_).sum()) >= 1e4:
            return False
        if hasattr(part, "eigenvalues_") and float(part.eigenvalues_.min()) < 1e-6 * float(part.eigenvalues_.max()):
            return False
    return True


def kernel_pca_cancels(est, x: np.ndarray) -> bool:
    """A KernelPCA score Σ_i A_ib k̃_i much smaller than its terms Σ_i |A_ib k_i| has lost digits to
    cancellation in any summation order (float64 gives ~1e-16 of the terms, not 1e-10 of the score)."""
    steps = [s for _, s in est.steps] if hasattr(est, "steps") else [est]
    for step in steps[:-1]:
        x = step.transform(x)
    kpca = steps[-1]
    if not isinstance(kpca, KernelPCA):
        return False
    terms = np.abs(kpca._get_kernel(x, kpca.X_fit_)) @ np.abs(kpca.eigenvectors_ / np.sqrt(kpca.eigenvalues_))
    return bool(terms.max() > 1e3 * max(np.abs(kpca.transform(x)).max(), 1e-300))


def with_preprocessors(draw, estimator, width: int):
    """0–2 scalers before ``estimator``; no Normalizer of a single feature (x/|x| = ±1, a constant)."""
    choices = sorted(PREPROCESSORS) if width > 1 else sorted(set(PREPROCESSORS) - {"normalizer"})
    names = draw(st.lists(st.sampled_from(choices), max_size=2))
    return make_pipeline(*(PREPROCESSORS[n]() for n in names), estimator) if names else estimator


@st.composite
def problems(draw, transforms=None, classifiers=None):
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
        act = activation_module(name, **draw(parameter_values(ACTIVATIONS[name].parameters))).double()
        if name == "prelu" and draw(st.booleans()):  # one learned slope per unit
            act = nn.PReLU(widths[i + 1]).double()
            with torch.no_grad():
                act.weight.copy_(torch.rand(widths[i + 1], generator=gen, dtype=torch.float64))
        dense += [lin, act]
    output = draw(st.sampled_from(["none", "softmax", "log_softmax"]))
    dense += {"none": [], "softmax": [nn.Softmax(dim=1)], "log_softmax": [nn.LogSoftmax(dim=1)]}[output]
    pca_after = draw(st.integers(0, depth - 1))  # 0: the transform reads the pooled, flattened features x
    if pca_after == 0 and draw(st.integers(0, 4)) == 0:
        dense = []  # no Linear at all: no class output, the transform and classifier on x
        output = "no class output"
    front = [pool] if pool is not None else []
    head = nn.Sequential(*front, nn.Flatten(), *dense)
    reference = nn.Sequential(*front, *([Permute()] if channels_last else []), nn.Flatten(), *dense)
    # fitted on one batch, explained on another: the explained points are not the training points,
    # where an isotonic calibration has its kinks (every training decision value is a threshold)
    features, fitting = torch.randn(2, 30, t, h, w, generator=gen, dtype=torch.float64)
    if draw(st.booleans()):
        features, fitting = features.relu(), fitting.relu()  # post-ReLU conv features, as a real backbone gives
    to_l = reference[: len(front) + (1 if channels_last else 0) + 1 + 2 * pca_after]  # up to q_l
    with torch.no_grad():
        q_l = to_l(fitting)
    b = draw(st.integers(1, min(3, widths[pca_after])))
    transform_name = draw(transforms if transforms is not None else st.sampled_from(sorted(TRANSFORMS)))
    pca = with_preprocessors(draw, TRANSFORMS[transform_name](b), q_l.shape[1]).fit(q_l.numpy())
    projection = pca.steps[-1][1] if hasattr(pca, "steps") else pca
    # a whitened component without variance makes scikit-learn's own transform NaN (cadcam refuses it)
    assume(
        not getattr(projection, "whiten", False)
        or bool(np.all(projection.explained_variance_ > 1e-12 * projection.explained_variance_.max()))
    )
    scores = pca.transform(q_l.numpy())
    assume(well_conditioned(pca) and not kernel_pca_cancels(pca, q_l.numpy()))
    with torch.no_grad():
        explained_q = to_l(features).numpy()
    assume(normaliser_inputs_nonzero(pca, q_l.numpy()) and normaliser_inputs_nonzero(pca, explained_q))
    assume(bool(np.all(np.isfinite(scores))) and float(np.ptp(scores, axis=0).max()) > 1e-6)
    n_classes = draw(st.sampled_from([2, 3]))
    labels = np.arange(len(scores)) % n_classes
    if draw(st.booleans()):
        labels = LABELS[labels]
    kind = draw(classifiers if classifiers is not None else st.sampled_from(sorted(CLASSIFIERS)))
    svm = with_preprocessors(draw, CLASSIFIERS[kind](), b)
    try:
        svm.fit(scores, labels)
    except ValueError:  # e.g. libsvm's "dual coefficients ... not finite" on degenerate scores
        assume(False)
    assume(well_conditioned(svm))
    assume(normaliser_inputs_nonzero(svm, scores) and normaliser_inputs_nonzero(svm, pca.transform(explained_q)))
    label = f"{pool_name}/{output}/{transform_name}/{kind}/{n_classes}"
    return head, reference, to_l, features, pca, pca_after, svm, channels_last, label


def grads_wrt_features(module: nn.Module, features: torch.Tensor, select) -> torch.Tensor:
    """∂(selected output)/∂F for every image, (N, T, M, N'), by autograd (images are independent)."""
    f = features.clone().requires_grad_(True)
    out = select(module(f))
    (g,) = torch.autograd.grad(out.sum(), f)
    return g


def close(actual, expected, what, reference=None):
    """Equal to 1e-10 relative to the largest finite value (of ``reference`` when given: a ReLU'd map
    is judged on the scale of its signed map, whose rounding it inherits); infinities (log 0) must
    match exactly."""
    finite = torch.isfinite(expected)
    assert torch.equal(torch.isfinite(actual), finite), f"{what}: non-finite entries differ"
    assert torch.equal(actual[~finite], expected[~finite]), f"{what}: infinities differ"
    # plus 1e-12 absolute: where the true gradient vanishes (a flat isotonic piece, a pullback through
    # x/|x| of a row nearly parallel to x), float64 rounding leaves 1e-16 to 1e-13, and 1e-10 of a zero scale would
    # demand exact zeros
    scale = float(expected[finite].abs().max()) if finite.any() else 0.0
    if reference is not None:
        scale = max(scale, float(reference.abs().max()))
    torch.testing.assert_close(
        actual[finite], expected[finite], rtol=1e-10, atol=1e-10 * scale + 1e-12, msg=lambda m: f"{what}: {m}"
    )


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
    check_against_autograd(problem, method)


@pytest.mark.parametrize(
    "kind",
    [("transform", name) for name in sorted(TRANSFORMS)] + [("classifier", name) for name in sorted(CLASSIFIERS)],
)
def test_every_kind_is_exercised(kind):
    """Each transform and each classifier by name, twice (other choices still drawn at random)."""
    axis, name = kind
    strategy = problems(**{f"{axis}s": st.just(name)})

    @settings(max_examples=2, database=None)
    @given(problem=strategy, method=st.sampled_from(["grad-cam", "hires-cam"]))
    def run(problem, method):
        assert f"/{name}/" in problem[-1]
        check_against_autograd(problem, method)

    run()


def check_against_autograd(problem, method):
    head, reference, to_l, features, pca, pca_after, svm, channels_last, label = problem
    for part in label.split("/")[1:4]:
        event(part)  # --hypothesis-show-statistics: what was drawn
    result = explain(features, head, pca, pca_after, svm, method=method, channels_last=channels_last)
    grads = position_gradients(features, head, pca, pca_after, svm, channels_last=channels_last)
    n = features.shape[0]
    rows = torch.arange(n)

    # Grad-CAM for the CNN's own prediction (of its output, after a final softmax / log-softmax)
    if "no class output" in label:
        assert result.gradcam is None and result.class_weights is None and grads.gradcam is None
    else:
        logits = reference(features).detach()
        torch.testing.assert_close(result.logits, logits, rtol=1e-12, atol=1e-12)
        assert torch.equal(result.cnn_prediction, logits.argmax(1))
        g = grads_wrt_features(reference, features, lambda y: y[rows, result.cnn_target])
        close(grads.gradcam, g, f"class position gradients [{label}]")
        weights, signed = expected_maps(g, features, method)
        close(result.class_weights, weights, f"class weights [{label}]")
        close(result.gradcam, signed.relu(), f"gradcam [{label}]", signed)

    # PCA-Grad-CAM, every component and sign
    pca_module = nn.Sequential(to_l, ReferenceTransform(pca))
    np.testing.assert_allclose(
        pca_module(features).detach().numpy(), pca.transform(to_l(features).detach().numpy()), rtol=1e-9, atol=1e-9
    )
    close(result.pca_scores, pca_module(features).detach(), f"pca scores [{label}]")
    for b in range(result.pca_scores.shape[1]):
        g = grads_wrt_features(pca_module, features, lambda p, b=b: p[:, b])
        close(grads.pca[:, b], g, f"pca position gradients b={b} [{label}]")
        weights, signed = expected_maps(g, features, method)
        close(result.pca_weights[:, b], weights, f"pca weights b={b} [{label}]")
        close(result.pca_positive[:, b], signed.relu(), f"pca positive b={b} [{label}]", signed)
        close(result.pca_negative[:, b], (-signed).relu(), f"pca negative b={b} [{label}]", signed)

    # SVM-Grad-CAM for the SVM's own prediction, oriented per derivations/NOTES.md
    p = pca_module(features).detach()
    check_reference_matches_sklearn(svm, p)
    predicted = result.svm_prediction
    predicted = predicted.cpu().numpy() if isinstance(predicted, torch.Tensor) else predicted
    np.testing.assert_array_equal(predicted, svm.predict(p.numpy()), err_msg=f"svm prediction [{label}]")
    classes = list(svm.classes_)
    index = torch.tensor([classes.index(c) for c in svm.predict(p.numpy())])
    svm_module = nn.Sequential(pca_module, ReferenceClassScores(svm))
    close(result.svm_scores, svm_module(features).detach(), f"svm scores [{label}]")
    g = grads_wrt_features(svm_module, features, lambda a: a[rows, index])
    close(grads.svm, g, f"svm position gradients [{label}]")
    weights, signed = expected_maps(g, features, method)
    close(result.svm_weights, weights, f"svm weights [{label}]")
    close(result.svm, signed.relu(), f"svm map [{label}]", signed)

    check_closed_form_module(problem, method, result, svm_module)


def check_closed_form_module(problem, method, result, svm_module):
    """``ClosedForm``'s forward equals ``explain`` exactly; with ``classes="all"`` every class's map
    and weights equal autograd's for that class (the CNN's and the classifier's)."""
    head, reference, _, features, pca, pca_after, svm, channels_last, label = problem
    options = dict(method=method, channels_last=channels_last, dtype=torch.float64)
    shape = tuple(features.shape[1:])
    out = ClosedForm(head, pca, pca_after, svm, **options, feature_shape=shape)(features)
    assert bool(out.pop("finite").all())
    index = out.pop("svm_prediction")
    predicted = result.svm_prediction
    predicted = predicted.cpu().numpy() if isinstance(predicted, torch.Tensor) else predicted
    np.testing.assert_array_equal(np.asarray(svm.classes_)[index.numpy()], predicted)
    for key, value in out.items():
        assert torch.equal(value, getattr(result, key)), f"ClosedForm {key} != explain's [{label}]"

    every = ClosedForm(head, pca, pca_after, svm, **options, classes="all", feature_shape=shape)(features)
    blocks = [("svm", "svm_weights", svm_module)]
    if "no class output" not in label:
        blocks.append(("gradcam", "class_weights", reference))
    for maps, weights_key, module in blocks:
        for c in range(every[maps].shape[1]):
            g = grads_wrt_features(module, features, lambda y, c=c: y[:, c])
            weights, signed = expected_maps(g, features, method)
            close(every[weights_key][:, c], weights, f"classes=all {weights_key} c={c} [{label}]")
            close(every[maps][:, c], signed.relu(), f"classes=all {maps} c={c} [{label}]", signed)
