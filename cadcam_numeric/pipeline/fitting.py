"""PCA on dense layer l and the SVMs on its scores, fitted on training data only; Table 3.

SVMs as the paper (C = 1, γ = 1, no tuning): linear and RBF, each on the raw PCA scores and on
standardised scores (``StandardScaler`` fitted on the training scores). derivations/NOTES.md §7: with ReLU
features the scores can have a scale of tens, where γ = 1 puts every training point beyond
d* = 1/√2 of every other and the RBF SVM can collapse toward chance; the standardised variant
shows the fix. Table 3 reports both, so the effect is visible, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import Tensor

from cadcam_numeric.pipeline.backbones import CNN
from cadcam_numeric.pipeline.data import ImageSet

__all__ = ["SVM_NAMES", "LayerOutputs", "fit_pca_and_svms", "layer_outputs", "svm_label", "table3"]

SVM_NAMES = {
    "linear": "Lin-SVM",
    "rbf": "RBF-SVM",
    "linear-std": "Lin-SVM (standardised scores)",
    "rbf-std": "RBF-SVM (standardised scores)",
}


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
    head = list(model.head)
    first_linear = next(i for i, m in enumerate(head) if isinstance(m, torch.nn.Linear))
    cut = first_linear + 2 * pca_after  # Linear + activation per dense layer
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
) -> tuple[PCA, dict[str, SVC | Pipeline]]:
    """PCA (optionally whitened) on q_l, then the paper's four SVMs and any ``extra`` estimators."""
    pca = PCA(n_components, whiten=whiten, random_state=seed).fit(train.q)
    scores = pca.transform(train.q)
    svms: dict[str, SVC | Pipeline] = {
        "linear": SVC(kernel="linear", C=c),
        "rbf": SVC(kernel="rbf", C=c, gamma=gamma),
        "linear-std": make_pipeline(StandardScaler(), SVC(kernel="linear", C=c)),
        "rbf-std": make_pipeline(StandardScaler(), SVC(kernel="rbf", C=c, gamma=gamma)),
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


def table3(pca: PCA, svms: dict, train: LayerOutputs, test: LayerOutputs) -> list[dict[str, object]]:
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
