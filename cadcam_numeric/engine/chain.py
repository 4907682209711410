"""Compose the generated block Jacobians along the head (paper Eq. 13 and 15).

The chain ∂p/∂x = Vᵀ diag(f′(δ_l)) W_l ⋯ diag(f′(δ_1)) W_1 is evaluated right to left on
stacks of row vectors ("pullbacks"): a stack g of shape (N, K, D_l) becomes
g diag(f′(δ_l)) W_l of shape (N, K, D_{l−1}). No D₀-wide Jacobian is ever formed unless asked
for, and no autograd is used: every derivative comes from ``cadcam_numeric.generated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.moves import moved
from cadcam_numeric.generated.blocks import pca_block_jacobian, pca_scores, pullback_dense

__all__ = ["DenseLayer", "HeadForward", "PCALayer", "forward_dense", "identity_rows", "pullback"]


@dataclass(frozen=True)
class DenseLayer:
    """q_l = f(W_l q_{l−1} + β_l) (Eq. 3, 16) with f a generated catalogue activation."""

    weight: Tensor
    bias: Tensor
    activation: ActivationCode
    parameters: dict[str, float] = field(default_factory=dict)

    def activate(self, delta: Tensor) -> Tensor:
        """q = f(δ) elementwise, with this layer's activation parameters."""
        return self.activation.forward(delta, **self.parameters)

    def fprime(self, delta: Tensor) -> Tensor:
        """f′(δ_l), elementwise (Eq. 18–19 generalised to the catalogue)."""
        return self.activation.derivative(delta, **self.parameters)


@dataclass(frozen=True)
class PCALayer:
    """p = Vᵀ(q_l − u), optionally whitened (Eq. 5); ``components`` = Vᵀ (B, D_l)."""

    components: Tensor
    mean: Tensor
    explained_variance: Tensor | None = None

    def scores(self, q: Tensor) -> Tensor:
        """p = V^T (q − u), whitened by diag(λ)^(−1/2) when fitted so: (N, D) -> (N, B)."""
        return pca_scores(q, self.components, self.mean, self.explained_variance)

    def jacobian(self) -> Tensor:
        """∂p/∂q_l (Eq. 23), (B, D_l)."""
        return pca_block_jacobian(self.components, self.explained_variance)

    def pullback(self, g: Tensor, q: Tensor | None = None) -> Tensor:
        """Rows g (N, K, B) at the scores pulled back to q_l: g ∂p/∂q_l (the Jacobian is constant)."""
        return g @ self.jacobian()

    @property
    def n_components(self) -> int:
        """B, the number of components."""
        return int(self.components.shape[0])

    @property
    def n_features(self) -> int:
        """D, the width of what the PCA reads."""
        return int(self.components.shape[1])

    def to(self, like: Tensor) -> PCALayer:
        """This layer with every tensor in ``like``'s dtype and device."""
        return moved(self, like)


@dataclass(frozen=True)
class HeadForward:
    """Pre-activations δ_l and outputs q_l of every dense layer (index 0 is layer 1)."""

    deltas: list[Tensor]
    outputs: list[Tensor]


def forward_dense(x: Tensor, layers: list[DenseLayer]) -> HeadForward:
    """Run the dense layers on x (N, D₀), keeping δ_l = W_l q_{l−1} + β_l and q_l = f(δ_l)."""
    deltas, outputs = [], []
    q = x
    for layer in layers:
        delta = q @ layer.weight.transpose(0, 1) + layer.bias
        q = layer.activate(delta)
        deltas.append(delta)
        outputs.append(q)
    return HeadForward(deltas, outputs)


def pullback(g: Tensor, layers: list[DenseLayer], forward: HeadForward, top: int, bottom: int = 0) -> Tensor:
    """g · ∂q_top/∂q_bottom = g diag(f′(δ_top)) W_top ⋯ diag(f′(δ_{bottom+1})) W_{bottom+1}.

    ``g``: (N, K, D_top) row vectors at the output of dense layer ``top`` (1-based; q₀ = x);
    returns (N, K, D_bottom). ``bottom == top`` returns ``g`` unchanged.
    """
    if not 0 <= bottom <= top <= len(layers):
        raise ValueError(f"need 0 <= bottom <= top <= {len(layers)}, got bottom={bottom}, top={top}")
    for index in range(top - 1, bottom - 1, -1):
        layer = layers[index]
        g = pullback_dense(g, layer.fprime(forward.deltas[index]), layer.weight)
    return g


def identity_rows(n: int, width: int, like: Tensor) -> Tensor:
    """(n, width, width) stack of identities, to pull back every output of a layer at once."""
    return torch.eye(width, dtype=like.dtype, device=like.device).expand(n, width, width)
