"""Evaluation protocols of the seed papers: deletion/insertion AUC, pointing game, box localisation.

* Deletion / insertion (Decom-CAM paper; Petsiuk et al. 2018): pixels are removed from the image
  (replaced by the baseline) or added to the baseline, in decreasing order of the map, ``steps``
  equal chunks; the curve is the model's score after each chunk and the AUC its trapezoid integral
  over the removed/added fraction in [0, 1]. Lower deletion AUC and higher insertion AUC are better.
* Pointing game: a hit when the map's maximum lies inside the annotated box.
* Weakly-supervised localisation (Eigen-CAM paper): scale the map to [0, 255], keep pixels at or
  above ``threshold`` × max, take the box around the largest 8-connected segment; correct when its
  IoU with the ground-truth box is ≥ 0.5.

Boxes are (x0, y0, x1, y1) in pixels, half-open: column x0 ≤ x < x1, row y0 ≤ y < y1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = [
    "Curves",
    "box_from_map",
    "deletion_insertion",
    "iou",
    "localisation_hits",
    "pointing_game",
    "stratified_by_accuracy",
]


@dataclass(frozen=True)
class Curves:
    """``fractions`` (S+1,); ``deletion``/``insertion`` (N, S+1) scores; their AUCs (N,)."""

    fractions: Tensor
    deletion: Tensor
    insertion: Tensor
    deletion_auc: Tensor
    insertion_auc: Tensor


def _auc(x: Tensor, y: Tensor) -> Tensor:
    return ((y[..., 1:] + y[..., :-1]) * (x[1:] - x[:-1]) / 2).sum(-1)


#: the most bytes of perturbed images :func:`deletion_insertion` builds at once
STACK_BYTES = 256 << 20


def deletion_insertion(
    score: Callable[[Tensor], Tensor],
    images: Tensor,
    saliency: Tensor,
    baseline: Tensor,
    steps: int = 16,
    batch_size: int = 64,
) -> Curves:
    """Deletion and insertion curves for ``images`` (N, C, H, W) ordered by ``saliency`` (N, H, W).

    ``score(x, index)`` maps a batch of images, and the index of the original image each row comes
    from, to one score each (e.g. the probability of that image's target class);
    ``baseline`` (N, C, H, W) is what removed pixels become (a blurred copy, or zeros). Ties in
    the map are broken by pixel index (stable sort), so curves are reproducible. The N·(steps+1)
    perturbed images of each curve are scored ``batch_size`` at a time (one forward per chunk,
    across images and steps); they are built for as many images at once as fit in
    :data:`STACK_BYTES`, so memory is bounded whatever N is.
    """
    if images.dim() != 4 or saliency.shape != (images.shape[0], *images.shape[-2:]):
        raise CadcamInputError(f"saliency: expected shape (N, H, W) = {(images.shape[0], *images.shape[-2:])}")
    if baseline.shape != images.shape:
        raise CadcamInputError("baseline: must have the images' shape")
    if steps < 1:
        raise CadcamInputError(f"steps: expected >= 1, got {steps}")
    n, _, h, w = images.shape
    hw = h * w
    order = torch.sort(saliency.reshape(n, hw), dim=1, descending=True, stable=True).indices
    counts = [min(hw, round(k * hw / steps)) for k in range(steps + 1)]
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(hw, device=order.device).expand(n, hw))
    rank = rank.reshape(n, 1, 1, h, w)
    limits = torch.tensor(counts, device=images.device).view(1, steps + 1, 1, 1, 1)
    per = steps + 1
    which = torch.arange(n, device=images.device).repeat_interleave(per)

    # images whose perturbed stacks are built at once: all of them when they fit STACK_BYTES
    image_bytes = per * images[0].numel() * images.element_size()
    group = max((batch_size - 1) // per + 2, STACK_BYTES // max(1, image_bytes))

    def run(removing: bool) -> Tensor:
        # the N·(steps+1) perturbed images in image-major order, scored batch_size at a time; the
        # stacks are built for a group of images at a time, so memory stays bounded
        first, second = (baseline, images) if removing else (images, baseline)
        out, g0, g1, stack = [], 0, 0, images[:0]
        for i in range(0, n * per, batch_size):
            j = min(i + batch_size, n * per)
            lo, hi = i // per, (j - 1) // per + 1
            if hi > g1:  # the next group starts at this chunk's first image
                g0, g1 = lo, min(n, lo + group)
                chosen = rank[g0:g1] < limits  # (m, steps+1, 1, H, W): the k most salient pixels
                stack = torch.where(chosen, first[g0:g1].unsqueeze(1), second[g0:g1].unsqueeze(1))
                stack = stack.reshape(-1, *images.shape[1:])
            out.append(score(stack[i - g0 * per : j - g0 * per], which[i:j]))
        return torch.cat(out).reshape(n, per)

    deletion, insertion = run(True), run(False)
    x = torch.tensor(counts, dtype=deletion.dtype, device=deletion.device) / hw
    return Curves(x, deletion, insertion, _auc(x, deletion), _auc(x, insertion))


def pointing_game(saliency: Tensor, boxes: Tensor) -> Tensor:
    """Hit (True) when the map's maximum (first in row-major order on ties) lies in the box: (N,)."""
    n, _, w = saliency.shape
    flat = saliency.reshape(n, -1).argmax(1)
    y, x = flat // w, flat % w
    b = boxes.to(flat.device)
    return (x >= b[:, 0]) & (x < b[:, 2]) & (y >= b[:, 1]) & (y < b[:, 3])


def box_from_map(saliency: np.ndarray, threshold: float = 0.15) -> tuple[int, int, int, int]:
    """Box around the largest 8-connected segment of pixels ≥ threshold × max (map scaled to 0–255)."""
    if not 0 < threshold < 1:
        raise CadcamInputError(f"threshold: expected a fraction in (0, 1), got {threshold}")
    m = np.asarray(saliency, dtype=np.float64)
    lo, hi = m.min(), m.max()
    scaled = np.zeros_like(m) if hi <= lo else 255.0 * (m - lo) / (hi - lo)
    mask = scaled >= threshold * scaled.max() if scaled.max() > 0 else np.ones_like(m, dtype=bool)
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1 if count else 0
    ys, xs = np.nonzero(labels == largest) if count else np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two half-open boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def localisation_hits(saliency: Tensor, boxes: Tensor, threshold: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """IoU of each map's box with the ground truth, and whether it is ≥ 0.5: (N,), (N,)."""
    ious = np.array(
        [
            iou(box_from_map(s.cpu().numpy(), threshold), tuple(int(v) for v in b))
            for s, b in zip(saliency, boxes, strict=True)
        ]
    )
    return ious, ious >= 0.5


def stratified_by_accuracy(
    values: np.ndarray, correct: np.ndarray, subset_size: int = 50, bins: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Decom-CAM's stratified protocol: the metric on sub-test-sets of controlled model accuracy.

    For accuracies a = 1/bins, 2/bins, …, 1 a sub-test-set of ``subset_size`` images holds
    round(a · size) correctly and the rest wrongly classified images (drawn without replacement,
    seeded). The metric (``values``, one per image) is averaged over the sub-set's *correct*
    predictions only. Returns the accuracies, the metric at each, and the AUC of metric vs
    accuracy (trapezoid over [1/bins, 1]). ``subset_size`` shrinks to what the images allow.
    """
    values, correct = np.asarray(values, dtype=np.float64), np.asarray(correct, dtype=bool)
    if values.shape != correct.shape:
        raise CadcamInputError("values and correct: expected one entry per image each")
    right, wrong = np.flatnonzero(correct), np.flatnonzero(~correct)
    size = min(subset_size, len(right), int(len(wrong) / (1 - 1 / bins)) if len(wrong) else 0)
    if size < bins:
        raise CadcamInputError(
            f"correct: the protocol needs at least {bins} correct and {bins - 1} wrong predictions "
            f"(got {len(right)} and {len(wrong)})"
        )
    rng = np.random.default_rng(seed)
    accuracies = np.arange(1, bins + 1) / bins
    metric = []
    for a in accuracies:
        k = round(a * size)
        chosen = rng.choice(right, size=k, replace=False)
        rng.choice(wrong, size=size - k, replace=False)  # the misclassified part of the sub-set
        metric.append(float(values[chosen].mean()))
    metric_arr = np.array(metric)
    auc = float(np.sum((metric_arr[1:] + metric_arr[:-1]) * np.diff(accuracies) / 2))
    return accuracies, metric_arr, auc
