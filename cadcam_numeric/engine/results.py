"""What the closed form returns: :class:`CAMResult` (maps and weights), :class:`PositionGradients`
(∂/∂F per position) and :class:`TargetScores` (the explained quantities, forward only), and the
one check of a batch of features before any of them is computed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = ["CAMResult", "PositionGradients", "TargetScores", "checked_features"]


@dataclass(frozen=True)
class CAMResult:
    """Raw maps at feature resolution and the channel weights, on the features' device.

    ``pca_*`` and ``svm*`` are None when no PCA / SVM was given; ``gradcam``, ``class_weights``,
    ``cnn_*`` and ``logits`` are None when the head has no class output (no ``Linear``). ``logits``
    is the head's output (after a final ``Softmax``/``LogSoftmax`` when it has one). ``svm_prediction`` holds the SVM's
    predicted labels (a tensor when they are numbers, else a NumPy array); ``svm_target`` the
    labels explained, ``cnn_target`` the class indices explained by ``gradcam``.
    """

    gradcam: Tensor | None
    class_weights: Tensor | None
    cnn_prediction: Tensor | None
    cnn_target: Tensor | None
    logits: Tensor | None
    method: str
    pca_positive: Tensor | None = None
    pca_negative: Tensor | None = None
    pca_weights: Tensor | None = None
    pca_scores: Tensor | None = None
    svm: Tensor | None = None
    svm_weights: Tensor | None = None
    svm_prediction: Tensor | np.ndarray | None = None
    svm_target: Tensor | np.ndarray | None = None
    svm_scores: Tensor | None = None


@dataclass(frozen=True)
class PositionGradients:
    """∂(target)/∂F at every position, (N, T, M, N') each; ``pca`` is (N, B, T, M, N').

    ``cnn_target``: the class index differentiated per image; ``svm_target_index``: the SVM class
    (position in ``classes_``) differentiated per image, or None without an SVM.
    """

    gradcam: Tensor | None
    pca: Tensor | None
    svm: Tensor | None
    features: Tensor
    cnn_target: Tensor | None
    svm_target_index: Tensor | None


@dataclass(frozen=True)
class TargetScores:
    """Forward-only outputs: the head's output (N, C; None without a class output), PCA scores (N, B),
    SVM class scores (N, C_svm)."""

    logits: Tensor | None
    pca_scores: Tensor | None
    svm_scores: Tensor | None


def checked_features(features: object, dtype: torch.dtype | None) -> Tensor:
    """``features`` as a detached (N, T, M, N′) tensor in ``dtype`` (default: its own float32/float64,
    else float32); a clear :class:`CadcamInputError` for anything else, an empty batch or NaN/Inf.

    >>> checked_features(torch.zeros(2, 3, 4, 4, dtype=torch.float16), None).dtype
    torch.float32
    """
    if not isinstance(features, Tensor):
        raise CadcamInputError(f"features: expected a torch.Tensor (N, T, M, N'), got {type(features).__name__}")
    if features.dim() not in (3, 4):
        raise CadcamInputError(
            f"features: expected 4 dimensions (N, T, M, N') — or 3, tokens (N, T, D) of a transformer head —, "
            f"got shape {tuple(features.shape)}"
        )
    if not features.is_floating_point():
        raise CadcamInputError(f"features: expected a floating-point tensor, got {features.dtype}")
    if features.shape[0] == 0:
        raise CadcamInputError("features: the batch is empty")
    if dtype is None:
        dtype = features.dtype if features.dtype in (torch.float32, torch.float64) else torch.float32
    if dtype not in (torch.float32, torch.float64):
        raise CadcamInputError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    features = features.detach().to(dtype)
    # One reduction instead of a boolean mask: the sum is finite when every value is; only when it
    # is not (a NaN/Inf, or an overflow of huge but finite values) is the elementwise check run.
    if not torch.isfinite(features.sum()) and not torch.isfinite(features).all():
        bad = int((~torch.isfinite(features)).sum())
        raise CadcamInputError(f"features: {bad} NaN/Inf values; the maps would be meaningless")
    return features
