"""Eigen-CAM (Muhammad & Yeasin 2020) and Eigen-Grad-CAM, batched on the tensor's device.

With O ∈ R^{MN×T} the feature maps as positions × channels, O = UΣVᵀ, the map is O v₁ (the
projection on the first right singular vector), reshaped to M × N' (a ViT: its patch grid, ``head=``).
derivations/NOTES.md §5 conventions:

* ``center=True`` (default) subtracts each channel's mean over positions first, as the
  best-known implementation (pytorch-grad-cam) does; the paper names no centring.
* Sign rule: a singular vector's sign is arbitrary (it flips between LAPACK builds, devices and
  dtypes). The map is oriented so that its largest-magnitude value is positive, which makes the
  result identical across runs, float32/float64 and devices. pytorch-grad-cam has no such rule.

The result is the signed projection, before any ReLU or scaling.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cadcam_numeric.engine.split_vit import TransformerHead
from cadcam_numeric.errors import CadcamInputError

__all__ = ["eigen_cam", "eigen_grad_cam", "orient_by_largest_magnitude"]


def orient_by_largest_magnitude(maps: Tensor) -> Tensor:
    """Multiply each map (over its last two dims) by the sign of its largest-magnitude entry."""
    flat = maps.flatten(-2)
    pick = flat.gather(-1, flat.abs().argmax(dim=-1, keepdim=True))
    sign = torch.where(pick < 0, -torch.ones_like(pick), torch.ones_like(pick))
    return (flat * sign).reshape(maps.shape)


def _grid(features: object, head: nn.Module | None) -> object:
    """Features as (N, T, M, N′): as given, or a ViT's tokens as the patch grid of its last block's norm1."""
    if head is None:
        return features
    if not isinstance(head, TransformerHead):
        raise CadcamInputError(
            f"head: expected None or a TransformerHead (split_classifier of a ViT), got {type(head).__name__}"
        )
    if not isinstance(features, Tensor) or features.dim() != 3:
        raise CadcamInputError(
            "features: with a TransformerHead, expected the tokens (N, T, D) entering its last block"
        )
    with torch.no_grad():
        return head.target_activations(features)


def eigen_cam(features: Tensor, center: bool = True, *, head: nn.Module | None = None) -> Tensor:
    """Signed Eigen-CAM maps (N, M, N') of features (N, T, M, N'): O v₁ with the sign rule above.

    With ``head`` a :class:`~cadcam_numeric.engine.split_vit.TransformerHead`, ``features`` are the tokens
    (N, T, D) entering its last block and O is the patch grid of that block's norm1 output (the class maps'
    target): the maps are (N, h, w) on the patch grid.

    >>> eigen_cam(torch.rand(2, 8, 3, 4)).shape
    torch.Size([2, 3, 4])
    """
    features = _grid(features, head)
    if not isinstance(features, Tensor) or features.dim() != 4:
        raise CadcamInputError("features: expected a (N, T, M, N') tensor")
    if not torch.isfinite(features).all():
        raise CadcamInputError("features: NaN/Inf values")
    n, _, m, w = features.shape
    o = features.flatten(2).transpose(1, 2)  # (N, MN, T)
    if center:
        o = o - o.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(o, full_matrices=False)
    projection = (o @ vh[:, 0, :].unsqueeze(-1)).squeeze(-1)  # (N, MN)
    return orient_by_largest_magnitude(projection.reshape(n, m, w))


def eigen_grad_cam(
    features: Tensor, gradients: Tensor, center: bool = True, *, head: nn.Module | None = None
) -> Tensor:
    """Eigen-CAM of gradient × activation (N, T, M, N'); gradients e.g. from ``position_gradients``
    (for a ViT, ``head`` as in :func:`eigen_cam`: the gradients are then on the patch grid)."""
    features = _grid(features, head)
    if gradients.shape != features.shape:
        raise CadcamInputError(
            f"gradients: shape {tuple(gradients.shape)} must equal features' {tuple(features.shape)}"
        )
    return eigen_cam(gradients * features, center=center)
