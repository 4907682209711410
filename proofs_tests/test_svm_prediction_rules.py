"""The SVM's prediction and scaling follow scikit-learn exactly (issue 12, defects 5 and 6).

* ``StandardScaler(with_mean=False)`` fills ``mean_`` but ``transform`` does not subtract it; the
  engine must not either (before the fix: 55/200 RBF predictions differed from ``predict()``).
* ``SVC(break_ties=True)`` breaks one-vs-one vote ties by confidence; the default explained class is
  ``predict()``'s, ties included.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric import explain, position_gradients
from proofs_tests.reference_head import ReferenceClassScores, check_reference_matches_sklearn, reference_pca


def _head(gen: torch.Generator) -> nn.Sequential:
    head = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 4))
    head = head.double()
    with torch.no_grad():
        for m in head:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen, dtype=torch.float64))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=torch.float64) * 0.3)
    return head


def _uncentred_problem(scaler: StandardScaler, n: int = 200):
    """PCA fitted on one population, the SVM on another (shifted): its scores are far from centred."""
    gen = torch.Generator().manual_seed(5)
    head = _head(gen)
    fit_features = torch.randn(60, 3, 2, 2, generator=gen, dtype=torch.float64)
    features = torch.randn(n, 3, 2, 2, generator=gen, dtype=torch.float64) * 0.7 + 0.8
    with torch.no_grad():
        pca = PCA(3).fit(head[:5](fit_features).numpy())
        scores = pca.transform(head[:5](features).numpy())
    assert np.abs(scores.mean(0)).max() > 0.3  # the SVM's training scores are not centred
    labels = (scores[:, 0] + 0.5 * scores[:, 1] ** 2 > np.median(scores[:, 0] + 0.5 * scores[:, 1] ** 2)).astype(int)
    svm = make_pipeline(scaler, SVC(kernel="rbf", gamma=1.0)).fit(scores, labels)
    return head, features, pca, svm, scores


@pytest.mark.parametrize(
    "scaler",
    [StandardScaler(with_mean=False), StandardScaler(with_std=False), StandardScaler()],
    ids=["with_mean=False", "with_std=False", "both"],
)
def test_scaler_options_follow_transform(scaler):
    head, features, pca, svm, scores = _uncentred_problem(scaler)
    r = explain(features, head, pca, 2, svm, dtype=torch.float64)
    np.testing.assert_array_equal(r.svm_prediction.numpy(), svm.predict(scores))
    p = torch.as_tensor(scores)
    check_reference_matches_sklearn(svm, p)
    torch.testing.assert_close(r.svm_scores, ReferenceClassScores(svm)(p), rtol=1e-10, atol=1e-12)
    # the map's gradient against autograd through head + PCA + scaler + SVM
    module = nn.Sequential(head[:5], reference_pca(pca, features), ReferenceClassScores(svm))
    classes = list(svm.classes_)
    index = torch.tensor([classes.index(c) for c in svm.predict(scores)])
    f = features.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(module(f)[torch.arange(len(f)), index].sum(), f)
    grads = position_gradients(features, head, pca, 2, svm, dtype=torch.float64)
    torch.testing.assert_close(grads.svm, expected, rtol=1e-10, atol=1e-12)


def _votes(svm: SVC, x: np.ndarray) -> np.ndarray:
    d = svm.decision_function(x) if svm.decision_function_shape == "ovo" else None
    k, n_classes = 0, len(svm.classes_)
    votes = np.zeros((len(x), n_classes))
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            votes[:, i] += d[:, k] > 0
            votes[:, j] += d[:, k] <= 0
            k += 1
    return votes


def test_break_ties_follows_predict():
    gen = torch.Generator().manual_seed(11)
    head = _head(gen)
    features = torch.randn(2000, 3, 2, 2, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        pca = PCA(3).fit(head[:5](features).numpy())
        scores = pca.transform(head[:5](features).numpy())
    labels = np.random.default_rng(0).integers(0, 5, 300)  # noisy labels: vote ties between the classes
    plain = SVC(kernel="rbf", gamma=2.0, C=10.0, decision_function_shape="ovo").fit(scores[:300], labels)
    votes = _votes(plain, scores)
    tied = (votes == votes.max(1, keepdims=True)).sum(1) > 1
    assert tied.sum() >= 5, "the problem must have vote ties to test tie-breaking"
    broken = SVC(kernel="rbf", gamma=2.0, C=10.0, break_ties=True).fit(scores[:300], labels)
    assert (broken.predict(scores) != plain.predict(scores)).any()  # break_ties changes some predictions
    for svm in (plain, broken):
        r = explain(features, head, pca, 2, svm, dtype=torch.float64)
        np.testing.assert_array_equal(r.svm_prediction.numpy(), svm.predict(scores))
        np.testing.assert_array_equal(r.svm_target.numpy(), svm.predict(scores))
