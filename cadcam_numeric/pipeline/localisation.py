"""A localisation set with exact ground truth and no download: digits pasted into cluttered canvases.

Each canvas (default 48×48) holds faint clutter — fragments cut from other digits and mild
noise — and one of scikit-learn's digits, upscaled ×3 or ×4 (nearest neighbour), pasted at a
random position. The ground-truth box is the tight box around that digit's ink (pixels above a
quarter of its maximum), so pointing game and IoU can be measured exactly. Seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from cadcam_numeric.pipeline.data import ImageSet

__all__ = ["LocalisationSet", "make_localisation_set", "scale_boxes"]


@dataclass(frozen=True)
class LocalisationSet:
    images: ImageSet  # uint8 (N, 1, S, S)
    boxes: Tensor  # (N, 4) half-open (x0, y0, x1, y1) in canvas pixels
    canvas: int


def make_localisation_set(
    n: int = 200, canvas: int = 48, scales: tuple[int, ...] = (3, 4), clutter: int = 6, seed: int = 0
) -> LocalisationSet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    images, labels, boxes = [], [], []
    for _ in range(n):
        img = rng.normal(0.0, 0.03, (canvas, canvas)).clip(0, None)
        for _ in range(clutter):  # fragments of other digits, at low intensity
            src = digits.images[rng.integers(len(digits.images))] / 16.0
            y, x = rng.integers(0, 6, size=2)
            frag = np.kron(src[y : y + 3, x : x + 3], np.ones((2, 2))) * rng.uniform(0.2, 0.45)
            py, px = rng.integers(0, canvas - frag.shape[0], size=2)
            region = img[py : py + frag.shape[0], px : px + frag.shape[1]]
            np.maximum(region, frag, out=region)
        k = rng.integers(len(digits.images))
        scale = int(rng.choice(scales))
        digit = np.kron(digits.images[k] / 16.0, np.ones((scale, scale)))
        size = digit.shape[0]
        py, px = rng.integers(0, canvas - size + 1, size=2)
        region = img[py : py + size, px : px + size]
        np.maximum(region, digit, out=region)
        ys, xs = np.nonzero(digit > 0.25 * digit.max())
        boxes.append([px + xs.min(), py + ys.min(), px + xs.max() + 1, py + ys.max() + 1])
        images.append(np.round(img.clip(0, 1) * 255).astype(np.uint8))
        labels.append(int(digits.target[k]))
    data = ImageSet(torch.from_numpy(np.stack(images)[:, None]), torch.tensor(labels, dtype=torch.long))
    return LocalisationSet(data, torch.tensor(boxes, dtype=torch.long), canvas)


def scale_boxes(boxes: Tensor, source: int, target: int) -> Tensor:
    """Boxes from a source×source canvas to target×target pixels, rounded outward."""
    f = target / source
    b = boxes.double()
    out = torch.stack(
        [torch.floor(b[:, 0] * f), torch.floor(b[:, 1] * f), torch.ceil(b[:, 2] * f), torch.ceil(b[:, 3] * f)], 1
    )
    return out.clamp(0, target).long()
