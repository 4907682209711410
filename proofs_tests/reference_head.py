"""Independent autograd references for the engine tests: the whole head as torch modules.

The SVM's oriented class scores (derivations/NOTES.md §2 convention) are written here from scikit-learn's
documented attributes with plain loops, separately from ``cadcam_numeric.engine.svm``, and checked
against scikit-learn's own ``decision_function`` before use.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC
from torch import nn

from cadcam_numeric.verification.references import ReferencePCA, reference_kernel


def _t(a, like):
    return torch.as_tensor(np.asarray(a, dtype=np.float64)).to(like)


def _svc_pairwise(est: SVC, z: torch.Tensor) -> list[tuple[int, int, torch.Tensor]]:
    params = {"gamma": est._gamma, "coef0": est.coef0, "degree": est.degree}
    used = {
        k: v
        for k, v in params.items()
        if k
        in {"linear": (), "poly": ("gamma", "coef0", "degree"), "rbf": ("gamma",), "sigmoid": ("gamma", "coef0")}[
            est.kernel
        ]
    }
    K = reference_kernel(est.kernel, z, _t(est.support_vectors_, z), **used)
    if len(est.classes_) == 2:
        return [(0, 1, K @ _t(est.dual_coef_[0], z) + float(est.intercept_[0]))]
    starts = np.concatenate([[0], np.cumsum(est.n_support_)])
    out, k = [], 0
    for i in range(len(est.classes_)):
        for j in range(i + 1, len(est.classes_)):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            d = K[:, si] @ _t(est.dual_coef_[j - 1, si], z) + K[:, sj] @ _t(est.dual_coef_[i, sj], z)
            out.append((i, j, d + float(est.intercept_[k])))
            k += 1
    return out


def _binary_decision(est, z):
    if isinstance(est, SVC):
        return _svc_pairwise(est, z)[0][2]
    return z @ _t(est.coef_[0], z) + float(est.intercept_[0])


class ReferenceClassScores(nn.Module):
    """a_c(p) for every class, oriented per derivations/NOTES.md, from a fitted scikit-learn SVM."""

    def __init__(self, svm):
        super().__init__()
        self.svm = svm

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        svm, z = self.svm, p
        if isinstance(svm, Pipeline):
            scaler, est = svm.steps[0][1], svm.steps[-1][1]
            # as StandardScaler.transform: mean_ is filled even when with_mean=False, but not used
            z = p - _t(scaler.mean_, p) if scaler.with_mean else p
            z = z / _t(scaler.scale_, p) if scaler.with_std else z
        else:
            est = svm
        if isinstance(est, SVC):
            pairs = _svc_pairwise(est, z)
            if len(est.classes_) == 2:
                d = pairs[0][2]
                return torch.stack([-d, d], dim=1)
            cols = [0.0] * len(est.classes_)
            for i, j, d in pairs:
                cols[i] = cols[i] + d
                cols[j] = cols[j] - d
            return torch.stack(cols, dim=1)
        if isinstance(est, LinearSVC):
            d = z @ _t(est.coef_, z).T + _t(est.intercept_, z)
            return torch.cat([-d, d], dim=1) if len(est.classes_) == 2 else d
        if isinstance(est, OneVsRestClassifier):
            ds = [_binary_decision(e, z) for e in est.estimators_]
            return torch.stack([-ds[0], ds[0]], 1) if len(est.classes_) == 2 else torch.stack(ds, 1)
        raise TypeError(type(est))


def check_reference_matches_sklearn(svm, p: torch.Tensor) -> None:
    """The reference's raw decisions equal scikit-learn's decision_function (so the reference is right)."""
    est = svm.steps[-1][1] if isinstance(svm, Pipeline) else svm
    z = p
    if isinstance(svm, Pipeline):
        z = torch.as_tensor(svm.steps[0][1].transform(p.numpy()))
    sk = np.asarray(est.decision_function(z.numpy()))
    scores = ReferenceClassScores(svm)(p).detach().numpy()
    if isinstance(est, SVC) and len(est.classes_) > 2:
        assert est.decision_function_shape == "ovo"
        ref = np.stack([d.detach().numpy() for _, _, d in _svc_pairwise(est, z)], axis=1)
    elif len(est.classes_) == 2:
        ref = scores[:, 1]
    else:
        ref = scores
    np.testing.assert_allclose(ref, sk.reshape(ref.shape), rtol=1e-9, atol=1e-9)


class Permute(nn.Module):
    """NCHW -> NHWC, so that Flatten gives a Keras (channels-last) layout."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1)


def reference_pca(pca, like) -> ReferencePCA:
    var = _t(pca.explained_variance_, like) if pca.whiten else None
    return ReferencePCA(_t(pca.components_, like), _t(pca.mean_, like), var)
