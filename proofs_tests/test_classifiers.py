"""Classifiers beyond SVC as users fit them on the PCA scores (issue 14): each one's class
scores are its own ``decision_function`` (oriented per derivations/NOTES.md §2), its predictions
are its ``predict()`` exactly, and the gradients the maps use equal that decision function
differentiated by central differences (exact for linear scores up to rounding; a check to 1e-6
for the kernel SVMs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC, NuSVC

from cadcam_numeric import CadcamInputError
from cadcam_numeric.engine.classifiers import parse_svm

CLASSIFIERS = {
    "logistic": lambda: LogisticRegression(max_iter=2000),
    "ridge": lambda: RidgeClassifier(alpha=0.5),
    "sgd-hinge": lambda: SGDClassifier(loss="hinge", random_state=0),
    "sgd-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "perceptron": lambda: Perceptron(random_state=0),
    "lda": lambda: LinearDiscriminantAnalysis(),
    "nusvc-rbf": lambda: NuSVC(nu=0.3, gamma=0.5),
    "nusvc-poly": lambda: NuSVC(nu=0.3, kernel="poly", degree=2, gamma=0.4, coef0=1.0),
    "ovr-logistic": lambda: OneVsRestClassifier(LogisticRegression(max_iter=2000)),
    "scaled-logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    "grid-svc": lambda: GridSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": [0.5, 2.0]}, cv=2),
    "ovo-svc": lambda: OneVsOneClassifier(SVC(gamma=0.5)),
    "ovo-linear": lambda: OneVsOneClassifier(LinearSVC()),
    "robust-normalizer-logistic": lambda: make_pipeline(RobustScaler(), Normalizer(), LogisticRegression()),
    "minmax-svc": lambda: make_pipeline(MinMaxScaler(), SVC(kernel="poly", degree=2)),
    "calibrated-sigmoid": lambda: CalibratedClassifierCV(LogisticRegression(), method="sigmoid", cv=3),
    "calibrated-sigmoid-linearsvc": lambda: CalibratedClassifierCV(LinearSVC(), cv=2, ensemble=False),
    "calibrated-isotonic": lambda: CalibratedClassifierCV(
        make_pipeline(StandardScaler(), LinearSVC()), method="isotonic"
    ),
}


def data(n_classes: int, strings: bool):
    rng = np.random.default_rng(n_classes)
    centres = rng.normal(size=(n_classes, 3)) * 3
    labels = np.arange(90) % n_classes
    p = centres[labels] + rng.normal(size=(90, 3))
    names = np.array(["cat", "dog", "eel", "fox"])[labels] if strings else labels
    return p, names


def oriented(est, p: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The score each map explains, from scikit-learn's own outputs: the decision function as class
    scores (binary (−d, d), else as returned); for OneVsOneClassifier the oriented sum of its pairwise
    estimators' decisions (scikit-learn's sum of confidences); log predict_proba when calibrated."""
    if isinstance(est, CalibratedClassifierCV):
        with np.errstate(divide="ignore"):
            return np.log(est.predict_proba(p))
    if isinstance(est, OneVsOneClassifier):
        ds = [e.decision_function(p) for e in est.estimators_]
        if len(classes) == 2:
            return np.stack([-ds[0], ds[0]], axis=1)
        out, k = np.zeros((len(p), len(classes))), 0
        for i in range(len(classes)):
            for j in range(i + 1, len(classes)):
                out[:, i] -= ds[k]
                out[:, j] += ds[k]
                k += 1
        return out
    d = est.decision_function(p)
    return np.stack([-d, d], axis=1) if d.ndim == 1 else d


@pytest.mark.parametrize("strings", [False, True])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_scores_predictions_and_gradients_are_the_estimators(name, n_classes, strings):
    p, labels = data(n_classes, strings)
    est = CLASSIFIERS[name]().fit(p, labels)
    head = parse_svm(est, torch.zeros((), dtype=torch.float64))
    probe = np.random.default_rng(7).normal(size=(25, 3)) * 3
    z = torch.from_numpy(probe)
    np.testing.assert_array_equal(head.predict(z), est.predict(probe))
    svc_ovo = getattr(head, "scheme", None) == "ovo" and not name.startswith("ovo")
    if not svc_ovo and not name.startswith("ovr"):  # SVC's one-vs-one scores: derivations/NOTES.md §2
        np.testing.assert_allclose(
            head.class_scores(z).numpy(), oriented(est, probe, head.classes), rtol=1e-9, atol=1e-9
        )
    grads = head.class_score_gradients(z).numpy()  # (N, C, B)
    assert np.abs(grads).max() > 0  # not vacuous (an isotonic fit is flat in places, not everywhere)
    h = 1e-6
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        up = head.class_scores(torch.from_numpy(probe + e)).numpy()
        down = head.class_scores(torch.from_numpy(probe - e)).numpy()
        finite = np.isfinite(up) & np.isfinite(down)  # an isotonic probability of exactly 0: log is -inf
        with np.errstate(invalid="ignore"):
            expected = (up - down) / (2 * h)
        np.testing.assert_allclose(grads[:, :, j][finite], expected[finite], rtol=1e-6, atol=1e-7)


def test_a_search_without_refit_and_an_unknown_classifier_are_refused():
    from sklearn.neighbors import KNeighborsClassifier

    p, labels = data(2, False)
    search = GridSearchCV(SVC(), {"C": [1.0]}, cv=2, refit=False).fit(p, labels)
    with pytest.raises(CadcamInputError, match="no best_estimator_"):
        parse_svm(search, torch.zeros(()))
    with pytest.raises(CadcamInputError, match="svm: expected a fitted SVC, NuSVC, LinearSVC, LogisticRegression"):
        parse_svm(KNeighborsClassifier().fit(p, labels), torch.zeros(()))
    with pytest.raises(CadcamInputError, match="Normalizer\\(norm='max'\\) is not supported"):
        parse_svm(make_pipeline(Normalizer("max"), SVC()).fit(p, labels), torch.zeros(()))
    p3, labels3 = data(3, False)
    with pytest.raises(CadcamInputError, match="CalibratedClassifierCV of a multi-class one-vs-one"):
        parse_svm(CalibratedClassifierCV(SVC(), cv=2).fit(p3, labels3), torch.zeros(()))


def test_isotonic_values_are_scikit_learns_bit_for_bit():
    """An isotonic calibrator's values equal IsotonicRegression.predict bit for bit (at, between and
    beyond its thresholds); the calibrated probabilities equal predict_proba to 1e-14."""
    p, labels = data(3, False)
    cal = CalibratedClassifierCV(LogisticRegression(max_iter=2000), method="isotonic", cv=2).fit(p, labels)
    head = parse_svm(cal, torch.zeros((), dtype=torch.float64))
    calibrator = cal.calibrated_classifiers_[0].calibrators[0]
    from cadcam_numeric.engine.calibrated import IsotonicCalibrator

    iso = IsotonicCalibrator(torch.from_numpy(calibrator.X_thresholds_), torch.from_numpy(calibrator.y_thresholds_))
    xs = calibrator.X_thresholds_
    probe = np.concatenate([xs, (xs[:-1] + xs[1:]) / 2, [xs[0] - 1, xs[-1] + 1]])
    assert np.array_equal(iso.value(torch.from_numpy(probe)).numpy(), calibrator.predict(probe))
    rows = np.random.default_rng(3).normal(size=(40, 3)) * 3
    np.testing.assert_allclose(head.predict_proba(torch.from_numpy(rows)).numpy(), cal.predict_proba(rows), atol=1e-14)


def test_a_frozen_estimator_is_read_as_the_estimator_it_wraps():
    from sklearn.frozen import FrozenEstimator

    p, labels = data(2, False)
    svc = SVC(gamma=0.5).fit(p, labels)
    like = torch.zeros((), dtype=torch.float64)
    z = torch.from_numpy(np.random.default_rng(4).normal(size=(10, 3)))
    assert torch.equal(parse_svm(FrozenEstimator(svc), like).class_scores(z), parse_svm(svc, like).class_scores(z))


def test_refusals_name_the_argument():
    from sklearn.pipeline import Pipeline

    with pytest.raises(CadcamInputError, match="svm: the Pipeline holds no estimator"):
        parse_svm(Pipeline([("a", "passthrough")]), torch.zeros(()))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_one_vs_rest_of_scaler_pipelines_is_the_pipeline_of_a_one_vs_rest(n_classes):
    """Hardening 9 of issue 23: OneVsRestClassifier(make_pipeline(StandardScaler(), SVC())) is
    accepted as make_pipeline(StandardScaler(), OneVsRestClassifier(SVC())) is: its predictions are
    predict()'s, its class scores decision_function's, its gradients those of finite differences."""
    p, labels = data(n_classes, True)
    p = p * np.array([1.0, 30.0, 0.1])  # scales the scaler changes
    inner = OneVsRestClassifier(make_pipeline(StandardScaler(), SVC(gamma=0.5))).fit(p, labels)
    outer = make_pipeline(StandardScaler(), OneVsRestClassifier(SVC(gamma=0.5))).fit(p, labels)
    like = torch.zeros((), dtype=torch.float64)
    a, b = parse_svm(inner, like), parse_svm(outer, like)
    probe = np.random.default_rng(7).normal(size=(25, 3)) * 3 * np.array([1.0, 30.0, 0.1])
    z = torch.from_numpy(probe)
    np.testing.assert_array_equal(a.predict(z), inner.predict(probe))
    np.testing.assert_allclose(a.class_scores(z).numpy(), oriented(inner, probe, a.classes), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a.class_score_gradients(z), b.class_score_gradients(z), rtol=1e-12, atol=1e-12)
    h, e = 1e-6, np.array([0.0, 1e-6, 0.0])
    up, down = a.class_scores(torch.from_numpy(probe + e)), a.class_scores(torch.from_numpy(probe - e))
    np.testing.assert_allclose(
        a.class_score_gradients(z)[:, :, 1].numpy(), ((up - down) / (2 * h)).numpy(), rtol=1e-6, atol=1e-7
    )


def test_one_vs_rest_pipelines_with_different_scalers_are_refused():
    p, labels = data(3, False)
    ovr = OneVsRestClassifier(make_pipeline(StandardScaler(), SVC())).fit(p, labels)
    ovr.estimators_[1][0].mean_ = ovr.estimators_[1][0].mean_ + 1  # as if fitted on other inputs
    with pytest.raises(CadcamInputError, match="do not share one fitted scaler; put the scalers before"):
        parse_svm(ovr, torch.zeros((), dtype=torch.float64))
