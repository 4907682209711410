"""The PCA layer (paper Eq. 4–5, 23), plain and whitened, as scikit-learn computes it.

Plain:     p = Vᵀ (q − u),                 ∂p/∂q = Vᵀ                       (Eq. 5, 23)
Whitened:  p = diag(λ)^{−1/2} Vᵀ (q − u),  ∂p/∂q = diag(λ)^{−1/2} Vᵀ

with ``components_`` = Vᵀ (B × D), ``mean_`` = u and ``explained_variance_`` = λ.
The mean drops out of the Jacobian.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

__all__ = ["PCA_VARIANTS", "PCAVariant"]


@dataclass(frozen=True)
class PCAVariant:
    name: str
    whiten: bool
    description: str

    def scores(self, components: sp.Matrix, mean: sp.Matrix, variance: sp.Matrix, q: sp.Matrix) -> sp.Matrix:
        """p(q) written out elementwise (B × 1)."""
        p = components * (q - mean)
        if self.whiten:
            p = sp.Matrix([p[b] / sp.sqrt(variance[b]) for b in range(p.rows)])
        return p


PCA_VARIANTS: tuple[PCAVariant, ...] = (
    PCAVariant("plain", False, "p = V^T (q - u)  (sklearn PCA(whiten=False))"),
    PCAVariant("whitened", True, "p = diag(lambda)^(-1/2) V^T (q - u)  (sklearn PCA(whiten=True))"),
)
