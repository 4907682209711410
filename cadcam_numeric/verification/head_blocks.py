"""Check the blocks beyond the paper's chain against PyTorch autograd, at run time (``cadcam verify``).

Each block is exercised through the engine's own reader on a scikit-learn estimator fitted for real
on random data, and compared in float64 with autograd through the independent references of
:mod:`cadcam_numeric.verification.sklearn_references` (or PyTorch's own module):

* a final ``Softmax``/``LogSoftmax`` (generated ``pullback_softmax``/``pullback_log_softmax``);
* ``Normalizer`` x/‖x‖ (``pullback_l2_normalize``);
* ``KernelPCA`` with each kernel (its centring folded into a decision block, ``block/kernel_pca/*``);
* ``CalibratedClassifierCV``, sigmoid and isotonic (``block/calibration/*``), as log-probabilities.

Isotonic calibration is checked at points away from its thresholds, where it is differentiable.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA, KernelPCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from torch import nn

from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.pca import KERNEL_PCA_KERNELS, pca_layer_from_sklearn
from cadcam_numeric.generated.blocks import pullback_log_softmax, pullback_softmax
from cadcam_numeric.verification.errors import ErrorAccumulator, VerificationRow, autograd_jacobian
from cadcam_numeric.verification.sklearn_references import ReferenceClassScores, ReferenceTransform

__all__ = ["head_block_rows"]


def _normal(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _eye(n: int, width: int) -> torch.Tensor:
    return torch.eye(width, dtype=torch.float64).expand(n, width, width)


def _output_rows(cases: int, gen: torch.Generator) -> list[VerificationRow]:
    soft = ErrorAccumulator("blocks.pullback_softmax", "autograd of torch.nn.Softmax")
    log_soft = ErrorAccumulator("blocks.pullback_log_softmax", "autograd of torch.nn.LogSoftmax")
    for case in range(cases):
        delta = _normal(gen, 6, 4) * (0.5, 3.0)[case % 2]
        s = torch.softmax(delta, dim=1)
        soft.add(pullback_softmax(_eye(6, 4), s), autograd_jacobian(nn.Softmax(dim=1), delta))
        log_soft.add(pullback_log_softmax(_eye(6, 4), s), autograd_jacobian(nn.LogSoftmax(dim=1), delta))
    return [soft.row(), log_soft.row()]


def _transform_rows(cases: int, gen: torch.Generator) -> list[VerificationRow]:
    like = torch.zeros((), dtype=torch.float64)
    makers = {"normalizer-pca": lambda: make_pipeline(Normalizer(), PCA(3))}
    for kernel in KERNEL_PCA_KERNELS:
        params = {"gamma": 0.2, "coef0": 0.5, "degree": 2} if kernel != "linear" else {}
        params = {k: v for k, v in params.items() if kernel in ("poly", "sigmoid") or k == "gamma"}
        makers[f"kernel_pca.{kernel}"] = lambda kernel=kernel, params=params: make_pipeline(
            StandardScaler(), KernelPCA(3, kernel=kernel, **params)
        )
    rows = []
    for name, make in makers.items():
        acc = ErrorAccumulator(f"transform.{name}", "autograd of scikit-learn's transform, written in torch")
        for _ in range(cases):
            fitted = make().fit(_normal(gen, 24, 4).numpy())
            layer = pca_layer_from_sklearn(fitted, 4, like)
            x = _normal(gen, 5, 4)
            acc.add(layer.pullback(_eye(5, 3), x), autograd_jacobian(ReferenceTransform(fitted), x))
        rows.append(acc.row())
    return rows


def _calibration_rows(cases: int, gen: torch.Generator) -> list[VerificationRow]:
    like = torch.zeros((), dtype=torch.float64)
    rows = []
    for method in ("sigmoid", "isotonic"):
        acc = ErrorAccumulator(
            f"calibration.{method}", "autograd of log predict_proba, written in torch (CalibratedClassifierCV)"
        )
        for case in range(cases):
            classes = 2 + case % 2
            labels = np.arange(60) % classes
            p = _normal(gen, 60, 3).numpy() + np.eye(3)[labels] * 2.0
            cal = CalibratedClassifierCV(LogisticRegression(), method=method, cv=2).fit(p, labels)
            head = parse_svm(cal, like)
            probe = _normal(gen, 8, 3)
            if method == "isotonic":  # keep the probes off the thresholds (the kinks)
                keep = _off_thresholds(cal, probe)
                probe = probe[keep] if keep.any() else probe[:0]
                if probe.shape[0] == 0:
                    continue
            acc.add(head.class_score_gradients(probe), autograd_jacobian(ReferenceClassScores(cal), probe))
        rows.append(acc.row())
    return rows


def _off_thresholds(cal: CalibratedClassifierCV, probe: torch.Tensor, margin: float = 1e-6) -> torch.Tensor:
    """Probes whose every base decision value lies more than ``margin`` from every isotonic threshold."""
    keep = torch.ones(probe.shape[0], dtype=torch.bool)
    for copy in cal.calibrated_classifiers_:
        d = np.asarray(copy.estimator.decision_function(probe.numpy())).reshape(probe.shape[0], -1)
        for column, calibrator in zip(d.T, copy.calibrators):
            gap = np.abs(column[:, None] - np.asarray(calibrator.X_thresholds_)[None, :]).min(axis=1)
            keep &= torch.from_numpy(gap > margin)
    return keep


def head_block_rows(cases: int, gen: torch.Generator) -> list[VerificationRow]:
    """Every block beyond the paper's chain against autograd (module docstring); ``cases`` draws each."""
    return _output_rows(cases, gen) + _transform_rows(cases, gen) + _calibration_rows(cases, gen)
