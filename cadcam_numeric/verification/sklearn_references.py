"""Independent references for what scikit-learn estimators compute, as torch modules (autograd side).

Written from scikit-learn's documented fitted attributes, the way its ``transform``,
``decision_function`` and ``predict_proba`` compute them — never from ``cadcam_numeric.engine`` or
the generated code — so that autograd through these modules is an oracle for the closed form:
the scalers and ``Normalizer``, PCA kin and KernelPCA (with scikit-learn's centring), and every
classifier's oriented class scores (derivations/NOTES.md §2; log ``predict_proba`` when
calibrated). ``cadcam verify`` and the tests use them; the tests check them against scikit-learn's
own outputs first.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA, IncrementalPCA, KernelPCA, TruncatedSVD
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from sklearn.svm import SVC, NuSVC
from torch import nn

from cadcam_numeric.verification.references import reference_kernel

__all__ = ["ReferenceClassScores", "ReferenceTransform", "estimator_parts", "reference_decision"]


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


def _scale(step, x: torch.Tensor) -> torch.Tensor:
    """One preprocessing step as scikit-learn's transform computes it."""
    if isinstance(step, StandardScaler):
        x = x - _t(step.mean_, x) if step.with_mean else x
        return x / _t(step.scale_, x) if step.with_std else x
    if isinstance(step, RobustScaler):
        x = x - _t(step.center_, x) if step.with_centering else x
        return x / _t(step.scale_, x) if step.with_scaling else x
    if isinstance(step, MinMaxScaler):
        return x * _t(step.scale_, x) + _t(step.min_, x)
    if isinstance(step, MaxAbsScaler):
        return x / _t(step.scale_, x)
    if isinstance(step, Normalizer):
        norm = x.norm(dim=1, keepdim=True)
        return x / torch.where(norm == 0, torch.ones_like(norm), norm)
    raise TypeError(type(step))


def estimator_parts(est):
    """(preprocessing steps, final estimator) of a Pipeline (a fitted search replaced by its best), or ([], est)."""
    if hasattr(est, "best_estimator_"):
        est = est.best_estimator_
    if isinstance(est, Pipeline):
        steps = [s for _, s in est.steps if s not in (None, "passthrough")]
        inner_pre, final = estimator_parts(steps[-1])
        return [*steps[:-1], *inner_pre], final
    return [], est


class ReferenceTransform(nn.Module):
    """The fitted PCA-position transform (pipeline included), as scikit-learn's ``transform``."""

    def __init__(self, est):
        super().__init__()
        self.est = est

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        pre, proj = estimator_parts(self.est)
        for step in pre:
            q = _scale(step, q)
        if isinstance(proj, TruncatedSVD):
            return q @ _t(proj.components_, q).T
        if isinstance(proj, PCA | IncrementalPCA):
            p = (q - _t(proj.mean_, q)) @ _t(proj.components_, q).T
            return p / _t(proj.explained_variance_, q).sqrt() if proj.whiten else p
        if isinstance(proj, KernelPCA):
            fit = _t(proj.X_fit_, q)

            def k_of(rows_of):
                if proj.kernel == "cosine":
                    return (rows_of / rows_of.norm(dim=1, keepdim=True)) @ (fit / fit.norm(dim=1, keepdim=True)).T
                params = {"linear": {}, "rbf": {"gamma": proj.gamma_}}.get(
                    proj.kernel, {"gamma": proj.gamma_, "coef0": proj.coef0, "degree": proj.degree}
                )
                if proj.kernel == "sigmoid":
                    params.pop("degree")
                return reference_kernel(proj.kernel, rows_of, fit, **params)

            # the training kernel's column and grand means, from the same reference kernel on X_fit_
            # (not KernelPCA's private _centerer)
            rows = k_of(fit).mean(dim=0)
            k = k_of(q)
            k = k - rows - k.mean(dim=1, keepdim=True) + rows.mean()
            values = np.asarray(proj.eigenvalues_)
            alphas = np.where(values > 0, proj.eigenvectors_ / np.sqrt(np.where(values > 0, values, 1.0)), 0.0)
            return k @ _t(alphas, q)
        raise TypeError(type(proj))


def reference_decision(est, z):
    """scikit-learn's decision_function of a binary or one-vs-rest/multinomial linear estimator."""
    if isinstance(est, SVC | NuSVC):
        return _svc_pairwise(est, z)[0][2]
    d = z @ _t(np.atleast_2d(est.coef_), z).T + _t(np.ravel(est.intercept_), z)
    return d[:, 0] if d.shape[1] == 1 else d


def _interpolate(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """IsotonicRegression.predict: constant outside [xs_0, xs_last], linear interpolation inside.
    Autograd gives the right derivative at a threshold (the training points' decision values sit
    exactly on thresholds): the segment to the right, 0 at and beyond xs_last (cadcam's stated rule)."""
    j = (torch.searchsorted(xs, x.detach().contiguous(), right=True) - 1).clamp(0, len(xs) - 2)
    width = xs[j + 1] - xs[j]  # IsotonicRegression can repeat a threshold: keep 0/0 out of the masked branch
    inside = ys[j] + (x - xs[j]) * (ys[j + 1] - ys[j]) / torch.where(width == 0, torch.ones_like(width), width)
    return torch.where(x >= xs[-1], ys[-1], torch.where(x < xs[0], ys[0], inside))


def _calibrated_log_proba(cal: CalibratedClassifierCV, z: torch.Tensor) -> torch.Tensor:
    classes = list(cal.classes_)
    total = 0.0
    for copy in cal.calibrated_classifiers_:
        pre, base = estimator_parts(copy.estimator)
        x = z
        for step in pre:
            x = _scale(step, x)
        d = reference_decision(base, x)
        d = d[:, None] if d.dim() == 1 else d
        columns = []
        for m, calibrator in enumerate(copy.calibrators):
            f = d[:, m]
            if copy.method == "sigmoid":
                columns.append(1.0 / (1.0 + torch.exp(float(calibrator.a_) * f + float(calibrator.b_))))
            else:
                columns.append(_interpolate(f, _t(calibrator.X_thresholds_, z), _t(calibrator.y_thresholds_, z)))
        if len(classes) == 2:
            proba = torch.stack([1 - columns[0], columns[0]], dim=1)
        else:
            u = torch.stack([columns[list(base.classes_).index(c)] for c in classes], dim=1)
            s = u.sum(dim=1, keepdim=True)
            proba = torch.where(s == 0, torch.full_like(u, 1 / len(classes)), u / torch.where(s == 0, 1.0, s))
        total = total + proba
    mean = total / len(cal.calibrated_classifiers_)
    # log 0 = -inf without a NaN gradient leaking into the other classes' backward pass
    positive = mean > 0
    return torch.where(positive, torch.log(torch.where(positive, mean, torch.ones_like(mean))), -torch.inf)


class ReferenceClassScores(nn.Module):
    """a_c(p) for every class, oriented per derivations/NOTES.md, from a fitted scikit-learn classifier."""

    def __init__(self, svm):
        super().__init__()
        self.svm = svm

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        svm = self.svm.best_estimator_ if hasattr(self.svm, "best_estimator_") else self.svm
        pre, est = estimator_parts(svm)
        z = p
        for step in pre:
            z = _scale(step, z)
        if isinstance(est, CalibratedClassifierCV):
            return _calibrated_log_proba(est, z)
        if isinstance(est, SVC | NuSVC):
            pairs = _svc_pairwise(est, z)
            if len(est.classes_) == 2:
                d = pairs[0][2]
                return torch.stack([-d, d], dim=1)
            cols = [0.0] * len(est.classes_)
            for i, j, d in pairs:
                cols[i] = cols[i] + d
                cols[j] = cols[j] - d
            return torch.stack(cols, dim=1)
        if isinstance(est, OneVsRestClassifier):
            ds = [reference_decision(e, z) for e in est.estimators_]
            return torch.stack([-ds[0], ds[0]], 1) if len(est.classes_) == 2 else torch.stack(ds, 1)
        if isinstance(est, OneVsOneClassifier):
            ds = [reference_decision(e, z) for e in est.estimators_]
            if len(est.classes_) == 2:
                return torch.stack([-ds[0], ds[0]], 1)
            cols, k = [0.0] * len(est.classes_), 0
            for i in range(len(est.classes_)):
                for j in range(i + 1, len(est.classes_)):
                    cols[i], cols[j] = cols[i] - ds[k], cols[j] + ds[k]  # a positive decision favours j
                    k += 1
            return torch.stack(cols, dim=1)
        d = reference_decision(est, z)  # the linear classifiers
        return torch.stack([-d, d], dim=1) if d.dim() == 1 else d
