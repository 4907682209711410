"""Pooling between the feature maps F and ``Flatten``, in closed form (no autograd).

With x = flatten(pool(F)), the chain rule gives ∂y/∂F_i^t = Σ_j ∂y/∂x_j^t · ∂x_j/∂F_i^t.

* Channel weights need only Σ_i ∂x_j/∂F_i^t =: r_j, the pooling's row sums. Pooling is
  linear for average pools and selects one input per output for max pools, so r = pool(1):
  1 for max (also adaptive) and adaptive-average pools, (#real cells / divisor) at padded average-pool borders.
  Then Σ_i ∂y/∂F_i^t = Σ_j ∂y/∂x_j^t r_j, which folds into W̄₁ (computed once per head).
* Per-position gradients (HiRes-CAM, XGrad-CAM) need the adjoint Pᵀ: a fixed matrix for
  average pools (the pool applied to the identity basis), a scatter to the arg-max for max pools.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cadcam_numeric.errors import CadcamInputError

__all__ = ["POOLING_TYPES", "Pooling"]

POOLING_TYPES = (nn.MaxPool2d, nn.AdaptiveMaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
MAX_POOLS = (nn.MaxPool2d, nn.AdaptiveMaxPool2d)


@dataclass(frozen=True)
class Pooling:
    """A pooling module between the feature maps and ``Flatten`` (or none)."""

    module: nn.Module | None

    def __post_init__(self) -> None:
        if self.module is not None and not isinstance(self.module, POOLING_TYPES):
            raise CadcamInputError(f"head: unsupported pooling {type(self.module).__name__}")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(Ho, Wo) the pooling gives for an (height, width) feature map."""
        if self.module is None:
            return height, width
        probe = self.module(torch.zeros(1, 1, height, width))
        return int(probe.shape[-2]), int(probe.shape[-1])

    def forward(self, features: Tensor) -> Tensor:
        """The pooled features (the input itself without pooling)."""
        return features if self.module is None else self.module(features)

    def row_sums(self, height: int, width: int, like: Tensor) -> Tensor:
        """r_j = Σ_i ∂x_j/∂F_i for one channel, flattened over pooled positions: (P_out,)."""
        if self.module is None:
            return torch.ones(height * width, dtype=like.dtype, device=like.device)
        ones = torch.ones(1, 1, height, width, dtype=like.dtype, device=like.device)
        if isinstance(self.module, MAX_POOLS):
            return torch.ones_like(self.module(ones)).flatten()
        return self.module(ones).flatten()

    def adjoint(self, grad_pooled: Tensor, features: Tensor) -> Tensor:
        """Pull per-position gradients back through the pooling: (..., T, Ho, Wo) -> (..., T, H, W).

        ``features``: (N, T, H, W); ``grad_pooled``: (N, K, T, Ho, Wo). Exact: average pools use
        their (image-independent) pooling matrix, max pools route each gradient to the arg-max
        PyTorch selects.
        """
        if self.module is None:
            return grad_pooled
        n, t, h, w = features.shape
        ho, wo = grad_pooled.shape[-2:]
        if isinstance(self.module, MAX_POOLS):
            m = self.module
            if isinstance(m, nn.AdaptiveMaxPool2d):
                _, idx = F.adaptive_max_pool2d(features, m.output_size, return_indices=True)
            else:
                _, idx = F.max_pool2d(
                    features, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, return_indices=True
                )
            k = grad_pooled.shape[1]
            out = torch.zeros(n, k, t, h * w, dtype=grad_pooled.dtype, device=grad_pooled.device)
            index = idx.flatten(2).unsqueeze(1).expand(n, k, t, ho * wo)
            out.scatter_add_(-1, index, grad_pooled.flatten(-2))
            return out.reshape(n, k, t, h, w)
        basis = torch.eye(h * w, dtype=grad_pooled.dtype, device=grad_pooled.device).reshape(h * w, 1, h, w)
        matrix = self.module(basis).reshape(h * w, ho * wo)  # P^T: (H*W, Ho*Wo)
        return (grad_pooled.flatten(-2) @ matrix.T).reshape(*grad_pooled.shape[:-2], h, w)
