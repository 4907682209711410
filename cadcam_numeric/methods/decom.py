"""Decom-CAM (Yang et al. 2023) for the CNN class, each PCA component and the SVM decision.

Stage 1 (derivations/NOTES.md §6): S = ∂y_ℓ/∂A ⊙ A (T × M × N'), S* ∈ R^{T×MN} (channels as rows),
S* = UΣVᵀ, keep the top p: the orthogonal feature maps F* = U′ᵀS* = Σ′V′ᵀ (p × MN; its *rows* are
orthogonal — the paper says columns: erratum), reshaped to p × M × N'.
Stage 2: H_i = bilinear upsample of F_i to the image, min–max to [0, 1]; I_b = Gaussian blur of the
image; masked_i = max(I ⊙ H_i, I_b ⊙ (1 − H_i)) per colour channel; gain
C_i = F(masked_i)_ℓ − F(I_b)_ℓ; final map Σ_i softmax(C)_i H_i.

The gradient ∂y_ℓ/∂A comes from the closed-form engine (:func:`cadcam_numeric.engine.position_gradients`),
and F(·)_ℓ is the explained quantity itself, so ℓ can be the CNN's class score (``target="class"``),
a PCA component p_b or −p_b (``target="pca"``, ``component=b``, ``sign=±1``) or the SVM's oriented
class score (``target="svm"``) — Decom-CAM for PCA and SVM layers, which no other implementation offers.

Defaults follow the paper. The authors' public code differs; each difference is a named option:
``preselect`` (keep the k channels with the largest Grad-CAM weight before the SVD), ``center``
(PCA-style centring of S*'s columns over channels), ``relu_components`` (ReLU on each F_i),
``blur_sigma``/``blur_truncate`` (their 10 px and 4), ``p`` (their 10).
A sign rule (each F_i oriented so its largest-magnitude value is positive, as Eigen-CAM) makes
the result deterministic; the paper leaves the SVD's signs open. Stage 2 is applied to the tensor
the model takes; for images in [0, 1] that is exactly the paper's masking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cadcam_numeric.engine.explain import position_gradients, target_scores
from cadcam_numeric.engine.maps import normalise, upsample
from cadcam_numeric.engine.targets import ClassTarget, ComponentTarget, SVMClassTarget
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.methods.eigen import orient_by_largest_magnitude

__all__ = ["DecomCAMResult", "decom_cam", "decompose", "gaussian_blur"]


@dataclass(frozen=True)
class DecomCAMResult:
    """``saliency`` (N, H, W) in [0, 1]; ``feature_maps`` F* (N, p, M, N'); ``masks`` H (N, p, H, W);
    ``gains`` C (N, p) and ``weights`` softmax(C) (N, p)."""

    saliency: Tensor
    feature_maps: Tensor
    masks: Tensor
    gains: Tensor
    weights: Tensor


def decompose(s: Tensor, p: int, center: bool = False, relu_components: bool = False) -> tuple[Tensor, Tensor]:
    """Stage 1 on S* (N, T, MN): the top-p orthogonal feature maps F* = Σ′V′ᵀ (N, p, MN) and U′ (N, T, p)."""
    if center:
        s = s - s.mean(dim=1, keepdim=True)
    u, sigma, vh = torch.linalg.svd(s, full_matrices=False)
    p = min(p, sigma.shape[-1])
    maps = sigma[:, :p, None] * vh[:, :p, :]
    oriented = orient_by_largest_magnitude(maps.unsqueeze(-1)).squeeze(-1)
    sign = torch.where((oriented * maps).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(maps)
    u_p = u[:, :, :p] * sign.transpose(1, 2)
    if relu_components:
        oriented = oriented.relu()
    return oriented, u_p


def gaussian_blur(images: Tensor, sigma: float, truncate: float = 4.0) -> Tensor:
    """Separable Gaussian blur, radius round(truncate·σ), edges replicated (works for any image size)."""
    if sigma <= 0:
        return images
    radius = max(1, round(truncate * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    out = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _score(
    features: Tensor, head: nn.Module, pca, pca_after, svm, target: str, component: int, sign: float, index: Tensor
) -> Tensor:
    s = target_scores(features, head, pca, pca_after, svm)
    rows = torch.arange(features.shape[0], device=features.device)
    if target == "class":
        return s.logits[rows, index]
    if target == "pca":
        return sign * s.pca_scores[:, component]
    return s.svm_scores[rows, index]


def decom_cam(
    images: Tensor,
    backbone: nn.Module,
    head: nn.Sequential,
    pca=None,
    pca_after: int | None = None,
    svm=None,
    *,
    target: Literal["class", "pca", "svm"] | ClassTarget | ComponentTarget | SVMClassTarget = "class",
    component: int = 0,
    sign: float = 1.0,
    targets: object = None,
    p: int = 10,
    center: bool = False,
    relu_components: bool = False,
    preselect: int | None = None,
    blur_sigma: float = 10.0,
    blur_truncate: float = 4.0,
) -> DecomCAMResult:
    """Decom-CAM maps for model-ready ``images`` (N, C, H, W); see the module docstring.

    ``target`` names the quantity explained — ``"class"`` (the CNN's, ``targets`` as in :func:`explain`),
    ``"pca"`` (``sign`` · p_``component``) or ``"svm"`` (the SVM's oriented class score) — or is a target
    object: ``ClassTarget(c)``, ``ComponentTarget(b, sign)``, ``SVMClassTarget(label)``.
    """
    svm_targets = None
    if isinstance(target, ClassTarget):
        target, targets = "class", target
    elif isinstance(target, ComponentTarget):
        target, component, sign = "pca", int(target.component), float(target.sign)
    elif isinstance(target, SVMClassTarget):
        target, svm_targets = "svm", target
    if not isinstance(target, str) or target not in ("class", "pca", "svm"):
        raise CadcamInputError(f"target: expected 'class', 'pca' or 'svm', got {target!r}")
    if target != "class" and pca is None:
        raise CadcamInputError(f"target: {target!r} needs pca (and pca_after)")
    if target == "svm" and svm is None:
        raise CadcamInputError("target: 'svm' needs svm")
    if p < 1:
        raise CadcamInputError(f"p: expected >= 1, got {p}")
    with torch.no_grad():
        features = backbone(images)
    grads = position_gradients(features, head, pca, pca_after, svm if target == "svm" else None, targets, svm_targets)
    if target == "class":
        if grads.gradcam is None:
            raise CadcamInputError("target: 'class' needs a head with a class output (a Linear layer)")
        g = grads.gradcam
    elif target == "pca":
        if not 0 <= component < grads.pca.shape[1]:
            raise CadcamInputError(f"component: expected 0..{grads.pca.shape[1] - 1}, got {component}")
        g = sign * grads.pca[:, component]
    else:
        g = grads.svm
    a = grads.features
    n, t, m, w = a.shape
    s = (g * a).flatten(2)  # S* (N, T, MN)
    if preselect is not None and preselect < t:
        keep = g.sum(dim=(-2, -1)).topk(preselect, dim=1).indices  # channels with the largest Grad-CAM weight
        s = s.gather(1, keep.unsqueeze(-1).expand(-1, -1, s.shape[-1]))
    fmaps, _ = decompose(s, p, center, relu_components)
    fmaps = fmaps.reshape(n, -1, m, w)
    size = tuple(images.shape[-2:])
    masks = normalise(upsample(fmaps, size))  # H_i in [0, 1]
    blurred = gaussian_blur(images, blur_sigma, blur_truncate)
    index = grads.svm_target_index if target == "svm" else grads.cnn_target
    with torch.no_grad():
        base = _score(backbone(blurred), head, pca, pca_after, svm, target, component, sign, index)
        gains = []
        for i in range(masks.shape[1]):
            h = masks[:, i : i + 1].to(images)
            masked = torch.maximum(images * h, blurred * (1 - h))
            gains.append(_score(backbone(masked), head, pca, pca_after, svm, target, component, sign, index) - base)
    gains_t = torch.stack(gains, dim=1)
    weights = torch.softmax(gains_t, dim=1)
    saliency = (weights[:, :, None, None] * masks).sum(1)
    return DecomCAMResult(saliency, fmaps, masks, gains_t, weights)
