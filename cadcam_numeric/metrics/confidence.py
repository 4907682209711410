"""Average Drop and Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++; torch-cam's
``ClassificationMetric``): the score of each image, Y, against the score of the image multiplied by
its map, O (saliency in [0, 1] at image resolution):

    Average Drop = (1/N) Σ max(0, Y − O) / Y × 100,    Increase in Confidence = (1/N) Σ [O > Y] × 100.

A lower drop and a higher increase are better. The score should be positive (a probability).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = ["average_drop_increase", "confidence_changes"]


def confidence_changes(
    score: Callable[[Tensor, Tensor], Tensor], images: Tensor, saliency: Tensor
) -> tuple[Tensor, Tensor]:
    """Per image: the drop max(0, Y − O)/Y × 100 (N,) float64 and whether O > Y (N,) bool — the terms
    :func:`average_drop_increase` averages (what a bootstrap interval resamples).

    >>> images = torch.ones(2, 1, 2, 2)
    >>> maps = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    >>> confidence_changes(lambda x, i: x.mean(dim=(1, 2, 3)), images, maps)
    (tensor([50.,  0.], dtype=torch.float64), tensor([False, False]))
    """
    if not isinstance(images, Tensor) or images.dim() != 4:
        raise CadcamInputError("images: expected a (N, C, H, W) tensor")
    if not isinstance(saliency, Tensor) or saliency.shape != (images.shape[0], *images.shape[-2:]):
        raise CadcamInputError(f"saliency: expected shape (N, H, W) = {(images.shape[0], *images.shape[-2:])}")
    if float(saliency.min()) < 0 or float(saliency.max()) > 1:
        raise CadcamInputError("saliency: expected values in [0, 1] (scale each map first)")
    index = torch.arange(images.shape[0], device=images.device)
    with torch.no_grad():
        y = score(images, index).double()
        o = score(images * saliency.unsqueeze(1).to(images), index).double()
    if bool((y <= 0).any()):
        raise CadcamInputError("score: expected positive scores of the original images (a probability)")
    return (y - o).clamp_min(0) / y * 100, o > y


def average_drop_increase(
    score: Callable[[Tensor, Tensor], Tensor], images: Tensor, saliency: Tensor
) -> tuple[float, float]:
    """(Average Drop %, Increase in Confidence %) of ``saliency`` (N, H, W) on ``images`` (N, C, H, W).

    ``score(x, index)`` as :func:`~cadcam_numeric.metrics.deletion_insertion` takes it.

    >>> images = torch.ones(2, 1, 2, 2)
    >>> maps = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    >>> average_drop_increase(lambda x, i: x.mean(dim=(1, 2, 3)), images, maps)  # drops 50 % and 0 %
    (25.0, 0.0)
    """
    drop, increased = confidence_changes(score, images, saliency)
    return float(drop.mean()), float(increased.double().mean() * 100)
