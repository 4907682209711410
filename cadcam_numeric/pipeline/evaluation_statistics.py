"""What a reviewer asks of an evaluation table: is a method better than chance, and is a difference
between two methods more than noise?

* **Baseline maps**, scored like every method: a random map (uniform noise on the feature grid,
  drawn per image from the seed and the image's position in the source (:func:`image_seed`), so
  any sharding gives the same map) and a centre prior (an isotropic Gaussian of standard deviation
  size/4 at the centre).
* **95 % bootstrap intervals** of each figure's mean over images (percentile method, 2,000
  resamples of the images, seeded).
* **Paired Wilcoxon signed-rank tests** of each class-map method against Grad-CAM on the same images
  (two-sided; SciPy), with the number of images. Scores of other families have other scales, so
  only maps judged by the same score are paired.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import wilcoxon
from torch import Tensor

from cadcam_numeric.engine.maps import normalise, upsample

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "REFERENCE",
    "bootstrap_interval",
    "centre_gaussian_maps",
    "image_seed",
    "paired_wilcoxon",
    "random_maps",
    "statistics_rows",
]

BOOTSTRAP_RESAMPLES = 2000
#: the method every other class-map method is paired with
REFERENCE = "Grad-CAM (class)"


def image_seed(seed: int, stream: int, position: int) -> int:
    """A seed for one image's draws of one kind (``stream``: 0 random maps, 1 ROAD MoRF, 2 ROAD LeRF),
    from the run's seed and the image's position in the source: independent streams, whatever the sharding.

    >>> image_seed(0, 0, 5) == image_seed(0, 0, 5) != image_seed(0, 1, 5)
    True
    """
    return int(np.random.SeedSequence([seed, stream, position]).generate_state(1, dtype=np.uint64)[0] >> 1)


def random_maps(positions: np.ndarray, grid: tuple[int, int], size: int, seed: int) -> Tensor:
    """Uniform noise on the feature grid, upsampled to ``size`` and scaled to [0, 1]: (N, size, size).

    >>> random_maps(np.array([3, 3]), (2, 2), 4, 0).shape, bool((random_maps(np.array([3]), (2, 2), 4, 0) ==
    ...     random_maps(np.array([5, 3]), (2, 2), 4, 0)[1]).all())
    (torch.Size([2, 4, 4]), True)
    """
    maps = [torch.rand(grid, generator=torch.Generator().manual_seed(image_seed(seed, 0, int(p)))) for p in positions]
    return normalise(upsample(torch.stack(maps), (size, size)))


def centre_gaussian_maps(n: int, size: int) -> Tensor:
    """exp(−‖x − c‖² / (2 (size/4)²)) scaled to [0, 1], the same for every image: (N, size, size)."""
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    sigma = size / 4
    g = torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * sigma**2))
    return normalise(g.float().expand(n, size, size).clone())


def bootstrap_interval(values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """The 2.5 % and 97.5 % percentiles of the mean of ``values`` over resamples with replacement.

    >>> bootstrap_interval(np.array([1.0, 1.0, 1.0]), 0)
    (1.0, 1.0)
    """
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_wilcoxon(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided p-value of the Wilcoxon signed-rank test on a − b (None when every difference is 0)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.any(d != 0):
        return None
    return float(wilcoxon(a, b).pvalue)


def statistics_rows(per_image: dict[str, dict[str, np.ndarray]], families: dict[str, str], seed: int) -> list[dict]:
    """One row per method and figure: n, mean, its 95 % interval, and for class maps the p-value
    of the paired test against :data:`REFERENCE` (``per_image[method][figure]`` (N,) arrays)."""
    rows = []
    for method, figures in per_image.items():
        for figure, values in figures.items():
            low, high = bootstrap_interval(values, seed)
            row = {
                "method": method,
                "figure": figure,
                "images": len(values),
                "mean": round(float(np.mean(values)), 4),
                "ci95_low": round(low, 4),
                "ci95_high": round(high, 4),
                "wilcoxon_p_vs_grad_cam": "n/a",
            }
            reference = per_image.get(REFERENCE, {}).get(figure)
            if families[method] == "class" and method != REFERENCE and reference is not None:
                p = paired_wilcoxon(values, reference)
                row["wilcoxon_p_vs_grad_cam"] = "n/a" if p is None else float(f"{p:.3g}")
            rows.append(row)
    return rows
