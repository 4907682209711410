"""Test-side helpers around the references of ``cadcam_numeric.verification.sklearn_references``:
checking a reference against scikit-learn's own outputs before it is used, and the Keras layout."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.multiclass import OneVsOneClassifier
from sklearn.svm import SVC, NuSVC
from torch import nn

from cadcam_numeric.verification.references import ReferencePCA
from cadcam_numeric.verification.sklearn_references import (
    ReferenceClassScores,
    ReferenceTransform,
    _svc_pairwise,
    _t,
    estimator_parts,
    reference_decision,
)

__all__ = ["Permute", "ReferenceClassScores", "ReferenceTransform", "check_reference_matches_sklearn", "reference_pca"]


def check_reference_matches_sklearn(svm, p: torch.Tensor) -> None:
    """The reference's scores equal scikit-learn's own outputs (so the reference is right)."""
    svm = svm.best_estimator_ if hasattr(svm, "best_estimator_") else svm
    pre, est = estimator_parts(svm)
    z = p.numpy()
    for step in pre:
        z = step.transform(z)
    scores = ReferenceClassScores(svm)(p).detach().numpy()
    if isinstance(est, CalibratedClassifierCV):
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(scores, np.log(est.predict_proba(z)), rtol=1e-9, atol=1e-9)
        return
    if isinstance(est, OneVsOneClassifier):
        confidences = [e.decision_function(z) for e in est.estimators_]
        ref = np.stack(confidences, axis=1)
        mine = np.stack([reference_decision(e, torch.from_numpy(z)).numpy() for e in est.estimators_], axis=1)
        np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)
        return
    sk = np.asarray(est.decision_function(z))
    if isinstance(est, SVC | NuSVC) and len(est.classes_) > 2:
        ref = np.stack([d.detach().numpy() for _, _, d in _svc_pairwise(est, torch.from_numpy(z))], axis=1)
        shape, est.decision_function_shape = est.decision_function_shape, "ovo"  # the raw pairwise decisions
        try:
            sk = np.asarray(est.decision_function(z))
        finally:
            est.decision_function_shape = shape
    elif len(est.classes_) == 2:
        ref = scores[:, 1]
    else:
        ref = scores
    # libsvm sums the kernel expansion in its own order: agree to 1e-9 of the largest decision
    np.testing.assert_allclose(ref, sk.reshape(ref.shape), rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(sk).max())))


class Permute(nn.Module):
    """NCHW -> NHWC, so that Flatten gives a Keras (channels-last) layout."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1)


def reference_pca(pca, like) -> ReferencePCA:
    var = _t(pca.explained_variance_, like) if pca.whiten else None
    return ReferencePCA(_t(pca.components_, like), _t(pca.mean_, like), var)
