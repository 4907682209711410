"""Heads beyond the paper's, timed from the same VGG16 features: what the blocks beyond the paper's head cost.

Each variant is the benchmark head (or its pooled part) with another transform or classifier,
fitted on the same 200 random ReLU feature maps as the paper's, and timed as ``explain`` from the
features (all maps: class, every PCA pair, the classifier). Comparing each with the backbone
forward at the same batch shows whether a block changes the end-to-end cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA, KernelPCA
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsOneClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from torch import Tensor, nn

from cadcam_numeric.bench.problem import N_CLASSES, N_COMPONENTS, PCA_AFTER, BenchProblem
from cadcam_numeric.engine.explain import explain
from cadcam_numeric.engine.head import layer_cut

__all__ = ["VARIANTS", "head_variants"]

#: route key -> what it is (the bench table's row label)
VARIANTS = {
    "variant_paper": "paper: PCA on q₂, RBF SVC (one-vs-one)",
    "variant_pooled_scaled_pca_svc": "pooled x → StandardScaler → PCA → RBF SVC (pca_after=0)",
    "variant_pooled_logistic": "pooled x → StandardScaler → PCA → LogisticRegression",
    "variant_kernel_pca": "q₂ → KernelPCA (rbf) → RBF SVC",
    "variant_calibrated": "q₂ → PCA → CalibratedClassifierCV (sigmoid, 5 folds)",
    "variant_softmax_ovo": "final Softmax; q₂ → PCA → OneVsOne(LinearSVC)",
}


def _labels(scores: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(scores[:, 0])) * N_CLASSES // len(scores)  # balanced classes


def head_variants(problem: BenchProblem, seed: int = 0) -> dict[str, Callable[[Tensor], object]]:
    """Route key -> ``explain`` of that head variant on given features (module docstring)."""
    t, m, _ = problem.feature_shape
    gen = torch.Generator().manual_seed(seed)
    fit = torch.randn(200, t, m, m, generator=gen).relu().to(problem.device, problem.dtype)
    head = problem.head
    with torch.no_grad():
        pooled = head[:1](fit).cpu().double().numpy()
        q2 = head[: layer_cut(head, PCA_AFTER)](fit).cpu().double().numpy()
    labels = _labels(PCA(1, random_state=seed).fit_transform(q2))
    softmax_head = nn.Sequential(*head, nn.Softmax(dim=1)).eval()

    def fitted(transform: object, data: np.ndarray, classifier: object) -> tuple[object, object]:
        transform.fit(data)
        return transform, classifier.fit(transform.transform(data), labels)

    scaled_pca = make_pipeline(StandardScaler(), PCA(N_COMPONENTS, random_state=seed))
    pooled_svc = fitted(scaled_pca, pooled, make_pipeline(StandardScaler(), SVC(gamma=1.0)))
    pooled_logistic = (scaled_pca, LogisticRegression(max_iter=2000).fit(scaled_pca.transform(pooled), labels))
    kernel = fitted(KernelPCA(N_COMPONENTS, kernel="rbf"), q2, SVC(gamma=1.0))
    calibrated = fitted(PCA(N_COMPONENTS, random_state=seed), q2, CalibratedClassifierCV(LogisticRegression()))
    ovo = fitted(PCA(N_COMPONENTS, random_state=seed), q2, OneVsOneClassifier(LinearSVC()))

    def run(h: nn.Module, pca: object, after: int, svm: object) -> Callable[[Tensor], object]:
        return lambda features: explain(features, h, pca, after, svm)

    return {
        "variant_paper": run(head, problem.pca, PCA_AFTER, problem.svm),
        "variant_pooled_scaled_pca_svc": run(head, pooled_svc[0], 0, pooled_svc[1]),
        "variant_pooled_logistic": run(head, pooled_logistic[0], 0, pooled_logistic[1]),
        "variant_kernel_pca": run(head, kernel[0], PCA_AFTER, kernel[1]),
        "variant_calibrated": run(head, calibrated[0], PCA_AFTER, calibrated[1]),
        "variant_softmax_ovo": run(softmax_head, ovo[0], PCA_AFTER, ovo[1]),
    }
