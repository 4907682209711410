"""Classifiers beyond SVC as users fit them on the PCA scores (issue 14): each one's class
scores are its own ``decision_function`` (oriented per derivations/NOTES.md §2), its predictions
are its ``predict()`` exactly, and the gradients the maps use equal that decision function
differentiated by central differences (exact for linear scores up to rounding; a check to 1e-6
for the kernel SVMs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, NuSVC

from cadcam_numeric import CadcamInputError
from cadcam_numeric.engine.svm import parse_svm

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
}


def data(n_classes: int, strings: bool):
    rng = np.random.default_rng(n_classes)
    centres = rng.normal(size=(n_classes, 3)) * 3
    labels = np.arange(90) % n_classes
    p = centres[labels] + rng.normal(size=(90, 3))
    names = np.array(["cat", "dog", "eel", "fox"])[labels] if strings else labels
    return p, names


def oriented(est, p: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """scikit-learn's decision function as class scores: binary (−d, d), else as returned."""
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
    if head.scheme != "ovo" and not name.startswith("ovr"):  # one-vs-one scores: derivations/NOTES.md §2
        np.testing.assert_allclose(
            head.class_scores(z).numpy(), oriented(est, probe, head.classes), rtol=1e-9, atol=1e-9
        )
    grads = head.class_score_gradients(z).numpy()  # (N, C, B)
    h = 1e-4
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        up = head.class_scores(torch.from_numpy(probe + e)).numpy()
        down = head.class_scores(torch.from_numpy(probe - e)).numpy()
        np.testing.assert_allclose(grads[:, :, j], (up - down) / (2 * h), rtol=1e-6, atol=1e-7)


def test_a_search_without_refit_and_an_unknown_classifier_are_refused():
    from sklearn.neighbors import KNeighborsClassifier

    p, labels = data(2, False)
    search = GridSearchCV(SVC(), {"C": [1.0]}, cv=2, refit=False).fit(p, labels)
    with pytest.raises(CadcamInputError, match="no best_estimator_"):
        parse_svm(search, torch.zeros(()))
    with pytest.raises(CadcamInputError, match="svm: expected a fitted SVC, NuSVC, LinearSVC, LogisticRegression"):
        parse_svm(KNeighborsClassifier().fit(p, labels), torch.zeros(()))
