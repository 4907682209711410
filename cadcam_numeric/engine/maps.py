"""Post-processing of raw maps: upsample to the image, normalise, overlay on the image.

Raw maps from :func:`cadcam_numeric.explain` stay at feature resolution and unscaled; these
helpers are separate so the numbers a user checks are never touched by display choices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = ["normalise", "normalise_pca_pair", "upsample"]


def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (..., M, N') maps to (..., H, W) (half-pixel centres, as cv2.resize)."""
    if maps.dim() < 2:
        raise CadcamInputError(f"maps: expected (..., M, N'), got shape {tuple(maps.shape)}")
    if len(size) != 2 or min(size) < 1:
        raise CadcamInputError(f"size: expected (H, W) with positive entries, got {size}")
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    out = F.interpolate(flat, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-2:])


def normalise(maps: Tensor) -> Tensor:
    """Per-map min–max scaling to [0, 1]: (x − min) / (max − min) over the last two dims.

    Exact and scale-invariant; a constant map becomes 0. A fixed ε in the denominator (as in
    pytorch-grad-cam's ``scale_cam_image``, 1e-7) distorts maps whose range is small: a plain-sum
    Grad-CAM of a small head can peak at 1e-5, where ε would pull the maximum down to 0.994.
    """
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    shifted = maps - lo
    span = shifted.amax(dim=(-2, -1), keepdim=True)
    return torch.where(
        span > 0, shifted / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(shifted)
    )


def normalise_pca_pair(positive: Tensor, negative: Tensor) -> tuple[Tensor, Tensor]:
    """Scale P_b⊕ and P_b⊖ by their shared ν_b = max(max P_b⊕, max P_b⊖) (Eq. 12).

    Both maps are ≥ 0 (ReLU outputs), so one colour scale [0, ν_b] shows which sign dominates.
    A pair that is zero everywhere stays zero.
    """
    if positive.shape != negative.shape:
        raise CadcamInputError(f"negative: shape {tuple(negative.shape)} differs from positive {tuple(positive.shape)}")
    nu = torch.maximum(positive.amax(dim=(-2, -1), keepdim=True), negative.amax(dim=(-2, -1), keepdim=True))
    nu = torch.where(nu > 0, nu, torch.ones_like(nu))
    return positive / nu, negative / nu
