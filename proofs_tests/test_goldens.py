"""Hand-computed goldens, one per map family, on a tiny head with set weights (exact numbers, as
Captum's tests do). They pin the conventions an oracle could share with the engine: plain sums
over positions (no 1/MN), the binary and one-vs-one orientation of the SVM score, ν_b of Eq. 12,
and the XGrad-CAM/HiRes-CAM forms.

The problem, worked by hand:
  F¹ = [1, 2], F² = [3, 0] (T = 2, M = 1, N' = 2), so x = [1, 2, 3, 0] (channel-major);
  W₁ = [[1, 0, 1, 0], [0, 1, 0, −1]], β₁ = [0, −1]: δ₁ = [4, 1], q₁ = ReLU(δ₁) = [4, 1], f′ = [1, 1];
  W₂ = [[1, 2], [−1, 1]], β₂ = 0: y = [6, −3], the CNN predicts class 0;
  ∂y₀/∂x = W₂[0] W₁ = [1, 2, 1, −2]  → Grad-CAM weights a = [3, −1], map ReLU(3F¹ − F²) = [0, 6];
  PCA on q₁ with Vᵀ = [[0.6, −0.8]], u = [1, 1]: p = 1.8, ∂p/∂x = [0.6, −0.8, 0.6, 0.8],
  e = [−0.2, 1.4], P = −0.2F¹ + 1.4F² = [4, −0.4] → P⊕ = [4, 0], P⊖ = [0, 0.4], ν = 4;
  binary SVM, linear kernel, d(p) = 0.5·2·p − 1 = 0.8 > 0 → classes_[1]; ∂d/∂p = 1;
  one-vs-one, d₀₁ = p − 1, d₀₂ = 2p, d₁₂ = −p + 3 at p = 1.8: 0.8, 3.6, 1.2 → votes (2, 1, 0),
  a₀ = d₀₁ + d₀₂ = 4.4, a₁ = −d₀₁ + d₁₂ = 0.4, a₂ = −d₀₂ − d₁₂ = −4.8; ∂a₀/∂p = 3, ∂a₂/∂p = −1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cadcam_numeric import explain, normalise_pca_pair
from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.svm import DecisionBlock, SVMHead
from cadcam_numeric.generated import KERNELS

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


@pytest.fixture
def problem():
    features = t([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, 2, 1, 2)
    l1, l2 = nn.Linear(4, 2).double(), nn.Linear(2, 2).double()
    with torch.no_grad():
        l1.weight.copy_(t([[1, 0, 1, 0], [0, 1, 0, -1]]))
        l1.bias.copy_(t([0, -1]))
        l2.weight.copy_(t([[1, 2], [-1, 1]]))
        l2.bias.zero_()
    head = nn.Sequential(nn.Flatten(), l1, nn.ReLU(), l2)
    pca = PCALayer(t([[0.6, -0.8]]), t([1.0, 1.0]))
    return features, head, pca


def binary_svm() -> SVMHead:
    block = DecisionBlock(KERNELS["linear"], t([[2.0]]), t([[0.5]]), t([-1.0]), {})
    return SVMHead("binary", [block], t([[-1.0], [1.0]]), np.array(["neg", "pos"]), None, None, 1, True)


def ovo_svm() -> SVMHead:
    block = DecisionBlock(KERNELS["linear"], t([[1.0]]), t([[1.0], [2.0], [-1.0]]), t([-1.0, 0.0, 3.0]), {})
    orientation = t([[1, 1, 0], [-1, 0, 1], [0, -1, -1]])
    return SVMHead("ovo", [block], orientation, np.array([0, 1, 2]), None, None, 1, True)


def exact(actual, expected):
    torch.testing.assert_close(actual, t(expected), rtol=1e-12, atol=1e-12)


def test_grad_cam_plain_sums(problem):
    features, head, _ = problem
    r = explain(features, head)
    exact(r.logits, [[6, -3]])
    exact(r.class_weights, [[3, -1]])  # plain sums over positions, no 1/MN
    exact(r.gradcam, [[[0, 6]]])
    exact(explain(features, head, targets=1).class_weights, [[0, -2]])  # ∂y₁/∂x = W₂[1] W₁ = [−1, 1, −1, −1]


def test_pca_grad_cam_pair_and_nu(problem):
    features, head, pca = problem
    r = explain(features, head, pca, 1)
    exact(r.pca_scores, [[1.8]])
    exact(r.pca_weights, [[[-0.2, 1.4]]])
    exact(r.pca_positive, [[[[4.0, 0.0]]]])
    exact(r.pca_negative, [[[[0.0, 0.4]]]])
    pos, neg = normalise_pca_pair(r.pca_positive, r.pca_negative)  # one scale, ν = max(4, 0.4) = 4
    exact(pos, [[[[1.0, 0.0]]]])
    exact(neg, [[[[0.0, 0.1]]]])


def test_svm_grad_cam_binary_orientation(problem):
    features, head, pca = problem
    r = explain(features, head, pca, 1, binary_svm())
    assert r.svm_prediction.tolist() == ["pos"]
    exact(r.svm_scores, [[-0.8, 0.8]])
    exact(r.svm_weights, [[-0.2, 1.4]])
    exact(r.svm, [[[4.0, 0.0]]])
    other = explain(features, head, pca, 1, binary_svm(), svm_targets="neg")  # a = −d for classes_[0]
    exact(other.svm_weights, [[0.2, -1.4]])
    exact(other.svm, [[[0.0, 0.4]]])


def test_svm_grad_cam_one_vs_one_orientation(problem):
    features, head, pca = problem
    r = explain(features, head, pca, 1, ovo_svm())
    assert r.svm_prediction.tolist() == [0]
    exact(r.svm_scores, [[4.4, 0.4, -4.8]])
    exact(r.svm_weights, [[-0.6, 4.2]])  # ∂a₀/∂p = 3
    exact(r.svm, [[[12.0, 0.0]]])
    two = explain(features, head, pca, 1, ovo_svm(), svm_targets=2)  # ∂a₂/∂p = −1
    exact(two.svm_weights, [[0.2, -1.4]])
    exact(two.svm, [[[0.0, 0.4]]])


def test_xgrad_and_hires_forms(problem):
    features, head, pca = problem
    eps = 1e-7  # pytorch-grad-cam's ε in XGrad-CAM's normaliser
    x = explain(features, head, pca, 1, method="xgrad-cam")
    exact(x.class_weights, [[3, -1]])  # the weight fields stay the paper's plain sums
    exact(x.gradcam, [[[14 / (3 + eps), 10 / (3 + eps)]]])  # xw = [5, 3]/(3 + ε); map xw¹F¹ + xw²F²
    h = explain(features, head, pca, 1, method="hires-cam")
    exact(h.gradcam, [[[4.0, 4.0]]])  # Σ_t ∂y₀/∂F^t ⊙ F^t = [1·1 + 1·3, 2·2 − 2·0]
    exact(h.pca_positive, [[[[2.4, 0.0]]]])  # [0.6·1 + 0.6·3, −0.8·2 + 0.8·0] = [2.4, −1.6]
    exact(h.pca_negative, [[[[0.0, 1.6]]]])
