"""The benchmark's problem: VGG16 (random weights — timing does not depend on them), the paper's
head (dense 40, 30, 20, 10 with ReLU; PCA B = 3 on layer 2; an RBF SVM, γ = 1, C = 1, on the PCA
scores, 10 classes one-vs-one), images of 200×200 px."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.svm import SVC
from torch import Tensor, nn

from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.head import layer_cut
from cadcam_numeric.engine.svm import SVMHead
from cadcam_numeric.pipeline.backbones import vgg16_features

__all__ = ["BenchProblem", "make_problem"]

N_CLASSES, N_COMPONENTS, PCA_AFTER = 10, 3, 2


@dataclass
class BenchProblem:
    backbone: nn.Sequential
    head: nn.Sequential
    model: nn.Sequential
    pca: PCA
    svm: SVC
    svm_head: SVMHead
    components: Tensor  # Vᵀ (B, D₂)
    mean: Tensor
    input_size: int
    feature_shape: tuple[int, int, int]
    device: torch.device
    dtype: torch.dtype

    @property
    def pca_after(self) -> int:
        return PCA_AFTER

    def outputs(self, features: Tensor, svm_scores: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
        """The head as a differentiable function of the features: logits, p = Vᵀ(q₂ − u) and the
        SVM class scores a(p) (skipped with ``svm_scores=False``)."""
        q = self.head[: layer_cut(self.head, PCA_AFTER)](features)
        p = (q - self.mean) @ self.components.T
        logits = self.head[layer_cut(self.head, PCA_AFTER) :](q)
        return logits, p, self.svm_head.class_scores(p) if svm_scores else None

    def images(self, batch: int, seed: int = 0) -> Tensor:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, 3, self.input_size, self.input_size, generator=gen)
        return x.to(self.device, self.dtype)


def make_problem(
    device: torch.device, dtype: torch.dtype = torch.float32, input_size: int = 200, seed: int = 0
) -> BenchProblem:
    """Build the problem on ``device``; PCA and SVM are fitted on random ReLU features (200 samples)."""
    bb = vgg16_features("pool", random_weights=True, input_size=input_size, seed=seed)
    backbone = bb.features.to(device, dtype).eval()
    t, m = bb.channels, bb.feature_size
    torch.manual_seed(seed)
    head = (
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(t * m * m, 40),
            nn.ReLU(),
            nn.Linear(40, 30),
            nn.ReLU(),
            nn.Linear(30, 20),
            nn.ReLU(),
            nn.Linear(20, N_CLASSES),
        )
        .to(device, dtype)
        .eval()
    )
    gen = torch.Generator().manual_seed(seed)
    fit_features = torch.randn(200, t, m, m, generator=gen).relu().to(device, dtype)
    with torch.no_grad():
        q2 = head[: layer_cut(head, PCA_AFTER)](fit_features).cpu().double().numpy()
    pca = PCA(N_COMPONENTS, random_state=seed).fit(q2)
    scores = pca.transform(q2)
    labels = np.argsort(np.argsort(scores[:, 0])) * N_CLASSES // len(scores)  # 10 balanced classes
    svm = SVC(kernel="rbf", gamma=1.0, C=1.0).fit(scores, labels)
    like = torch.zeros((), device=device, dtype=dtype)
    return BenchProblem(
        backbone,
        head,
        nn.Sequential(backbone, head).eval(),
        pca,
        svm,
        parse_svm(svm, like),
        torch.as_tensor(pca.components_).to(like),
        torch.as_tensor(pca.mean_).to(like),
        input_size,
        (t, m, m),
        device,
        dtype,
    )
