"""PCA on dense layer l (or on the pooled features, l = 0) and the SVMs on its scores, fitted on
training data only; Table 3.

SVMs as the paper (C = 1, γ = 1, no tuning): linear and RBF, each on the raw PCA scores and on
standardised scores (``StandardScaler`` fitted on the training scores). derivations/NOTES.md §7: with ReLU
features the scores can have a scale of tens, where γ = 1 puts every training point beyond
d* = 1/√2 of every other and the RBF SVM can collapse toward chance; the standardised variant
shows the fix. Table 3 reports both, so the effect is visible, not hidden.

The common CNN-SVM recipe (``--recipe cnn-svm``): pooled features → StandardScaler → PCA → SVC and
→ LogisticRegression; ``CLASSIFIER_KINDS`` are the classifiers ``--classifier`` adds beside the four.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA, IncrementalPCA, TruncatedSVD
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from torch import Tensor

from cadcam_numeric.engine.head import layer_cut
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.names import CLASSIFIER_NAMES
from cadcam_numeric.pipeline.backbones import CNN
from cadcam_numeric.pipeline.data import ImageSet

__all__ = [
    "CLASSIFIER_KINDS",
    "SVM_NAMES",
    "LayerOutputs",
    "fit_pca_and_svms",
    "layer_outputs",
    "svm_label",
    "table3",
]

SVM_NAMES = {
    "linear": "Lin-SVM",
    "rbf": "RBF-SVM",
    "linear-std": "Lin-SVM (standardised scores)",
    "rbf-std": "RBF-SVM (standardised scores)",
    "logistic": "Logistic regression (standardised scores)",
    "linear-svc": "LinearSVC (standardised scores)",
    "lda": "LDA",
    "ridge": "Ridge classifier (standardised scores)",
}

#: classifiers ``cadcam train --classifier NAME`` fits beside the paper's four, from C and the seed
CLASSIFIER_KINDS = {
    "logistic": lambda c, seed: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)),
    "linear-svc": lambda c, seed: make_pipeline(StandardScaler(), LinearSVC(C=c, random_state=seed, max_iter=20000)),
    "lda": lambda c, seed: LinearDiscriminantAnalysis(),
    "ridge": lambda c, seed: make_pipeline(StandardScaler(), RidgeClassifier()),
}
if tuple(sorted(CLASSIFIER_KINDS)) != CLASSIFIER_NAMES:  # the CLI offers cadcam_numeric.names' list
    raise ImportError("fitting: CLASSIFIER_KINDS must build one estimator per name of names.CLASSIFIER_NAMES")


def svm_label(name: str, kernel: str | None = None, scaled: bool = False) -> str:
    """Display name of an SVM of a bundle: the paper's four by name, the spec's by its kernel."""
    if name in SVM_NAMES:
        return SVM_NAMES[name]
    if name == "spec":
        return f"Spec SVM ({kernel or '?'}{', standardised scores' if scaled else ''})"
    return name


@dataclass
class LayerOutputs:
    """q_l (activated output of dense layer l) and the CNN's logits for one split."""

    q: np.ndarray
    logits: np.ndarray
    labels: np.ndarray


@torch.no_grad()
def layer_outputs(
    model: CNN, images: ImageSet, input_size: int, pca_after: int, device: torch.device, features: Tensor | None = None
) -> LayerOutputs:
    """q_l and logits for a split; ``features`` (precomputed backbone outputs) skips the backbone."""
    model.eval()
    cut = layer_cut(model.head, pca_after)
    qs, logits = [], []
    if features is not None:
        batches = (features[i : i + 256].to(device) for i in range(0, len(features), 256))
    else:
        batches = (model.backbone(x.to(device)) for x, _ in images.batches(128, input_size))
    for feats in batches:
        q: Tensor = model.head[:cut](feats)
        qs.append(q.cpu())
        logits.append(model.head[cut:](q).cpu())
    return LayerOutputs(torch.cat(qs).double().numpy(), torch.cat(logits).numpy(), images.labels.numpy())


def fit_pca_and_svms(
    train: LayerOutputs,
    n_components: int = 3,
    c: float = 1.0,
    gamma: float = 1.0,
    seed: int = 0,
    whiten: bool = False,
    extra: dict[str, object] | None = None,
    scale_before_pca: bool = False,
    classifiers: tuple[str, ...] = (),
    pca_kind: str = "pca",
) -> tuple[PCA | Pipeline, dict[str, SVC | Pipeline]]:
    """PCA (optionally whitened; after a StandardScaler with ``scale_before_pca``) on q_l, then the
    paper's four SVMs, the ``classifiers`` named in ``CLASSIFIER_KINDS`` and any ``extra`` estimators."""
    unknown = sorted(set(classifiers) - set(CLASSIFIER_KINDS))
    if unknown:
        raise ValueError(f"unknown classifier(s) {unknown}; expected some of {sorted(CLASSIFIER_KINDS)}")
    projections = {
        "pca": lambda: PCA(n_components, whiten=whiten, random_state=seed),
        "incremental_pca": lambda: IncrementalPCA(n_components, whiten=whiten),
        "truncated_svd": lambda: TruncatedSVD(n_components, random_state=seed),
    }
    pca = projections[pca_kind]()
    pca = make_pipeline(StandardScaler(), pca) if scale_before_pca else pca
    try:
        pca.fit(train.q)
    except ValueError as exc:  # e.g. more components than samples or features
        raise CadcamInputError(f"pca: scikit-learn could not fit it on {train.q.shape} inputs ({exc})") from exc
    scores = pca.transform(train.q)
    svms: dict[str, SVC | Pipeline] = {
        "linear": SVC(kernel="linear", C=c),
        "rbf": SVC(kernel="rbf", C=c, gamma=gamma),
        "linear-std": make_pipeline(StandardScaler(), SVC(kernel="linear", C=c)),
        "rbf-std": make_pipeline(StandardScaler(), SVC(kernel="rbf", C=c, gamma=gamma)),
        **{name: CLASSIFIER_KINDS[name](c, seed) for name in classifiers},
        **(extra or {}),
    }
    for svm in svms.values():
        svm.fit(scores, train.labels)
    return pca, svms


def _kernel_and_scaling(svm: object) -> tuple[str, bool]:
    steps = svm.steps if isinstance(svm, Pipeline) else [("svm", svm)]
    kernel = getattr(steps[-1][1], "kernel", "linear")
    name = kernel if isinstance(kernel, str) else getattr(getattr(kernel, "code", None), "name", "callable")
    return name, isinstance(steps[0][1], StandardScaler)


def table3(pca: PCA | Pipeline, svms: dict, train: LayerOutputs, test: LayerOutputs) -> list[dict[str, object]]:
    """Macro-F1 on train and test for the CNN and every SVM (the paper's Table 3, plus the
    standardised-score rows)."""
    rows = []

    def f1(y: np.ndarray, pred: np.ndarray) -> float:
        return round(float(f1_score(y, pred, average="macro")), 4)

    rows.append(
        {
            "model": "CNN",
            "train_macro_f1": f1(train.labels, train.logits.argmax(1)),
            "test_macro_f1": f1(test.labels, test.logits.argmax(1)),
        }
    )
    for key, svm in svms.items():
        rows.append(
            {
                "model": svm_label(key, *_kernel_and_scaling(svm)),
                "train_macro_f1": f1(train.labels, svm.predict(pca.transform(train.q))),
                "test_macro_f1": f1(test.labels, svm.predict(pca.transform(test.q))),
            }
        )
    return rows
