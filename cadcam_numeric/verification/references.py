"""Independent PyTorch references that the generated code is verified against (autograd side).

These are written from scikit-learn's and the paper's definitions without using any generated
code, so that comparing the two is a real check: kernels as scikit-learn defines them, the PCA
layer as an affine map with the mean, and the SVM decision a(p) (Eq. 6) as a module.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ReferencePCA", "ReferenceSVMDecision", "reference_kernel"]


def reference_kernel(
    name: str, p: Tensor, s: Tensor, gamma: float | None = None, coef0: float | None = None, degree: int | None = None
) -> Tensor:
    """scikit-learn's kernel K(s_i, p) for every support vector: (N, B), (I, B) -> (N, I)."""
    if name == "linear":
        return p @ s.T
    if name == "poly":
        return (gamma * (p @ s.T) + coef0) ** degree
    if name == "rbf":
        return torch.exp(-gamma * ((p.unsqueeze(1) - s.unsqueeze(0)) ** 2).sum(-1))
    if name == "sigmoid":
        return torch.tanh(gamma * (p @ s.T) + coef0)
    raise KeyError(f"no reference for kernel {name!r}")


class ReferencePCA(nn.Module):
    """p = Vᵀ(q − u) (Eq. 5), divided by √λ when whitened: ``components`` is Vᵀ (B, D)."""

    def __init__(self, components: Tensor, mean: Tensor, explained_variance: Tensor | None = None) -> None:
        super().__init__()
        self.components, self.mean, self.explained_variance = components, mean, explained_variance

    def forward(self, q: Tensor) -> Tensor:
        p = (q - self.mean) @ self.components.T
        return p if self.explained_variance is None else p / self.explained_variance.sqrt()


class ReferenceSVMDecision(nn.Module):
    """a_k(p) = Σ_i (α_i c_i)_k K(p_i, p) + g_k (Eq. 6) for K decision functions."""

    def __init__(self, kernel: str, support_vectors: Tensor, dual_coef: Tensor, intercept: Tensor, **params: float):
        super().__init__()
        self.kernel, self.support_vectors = kernel, support_vectors
        self.dual_coef, self.intercept, self.params = dual_coef, intercept, params

    def forward(self, p: Tensor) -> Tensor:
        return reference_kernel(self.kernel, p, self.support_vectors, **self.params) @ self.dual_coef.T + self.intercept
