"""How alike two maps are, per map: Spearman rank correlation and structural similarity (SSIM).

* ``rank_similarity``: Spearman's ρ of the flattened maps — the Pearson correlation of their ranks,
  ties given their average rank (``scipy.stats.spearmanr``); NaN where a map is constant.
* ``ssim``: Wang et al. 2004 with scikit-image's defaults (a 7 × 7 uniform window, reflected at the
  border, sample covariances, K₁ = 0.01, K₂ = 0.03, data range 1), averaged over the positions whose
  window lies inside the map (``skimage.metrics.structural_similarity(a, b, data_range=1)``):

      SSIM = (2 μ_a μ_b + C₁)(2 σ_ab + C₂) / ((μ_a² + μ_b² + C₁)(σ_a² + σ_b² + C₂)),  C_k = (K_k · 1)².

The sanity checks of Adebayo et al. 2018 compare maps before and after randomisation with both.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import rankdata
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = ["rank_similarity", "ssim"]

WINDOW = 7


def _pair(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise CadcamInputError(f"{name}: expected a (N, H, W) tensor of maps")
    if a.shape != b.shape:
        raise CadcamInputError(f"b: expected the shape of a, {tuple(a.shape)}, got {tuple(b.shape)}")
    return a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()


def rank_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's ρ between a[i] and b[i] for each map: (N,) float64.

    >>> a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    >>> rank_similarity(a, a ** 3), rank_similarity(a, -a)
    (tensor([1.], dtype=torch.float64), tensor([-1.], dtype=torch.float64))
    """
    x, y = _pair(a, b)
    rx = rankdata(x.reshape(x.shape[0], -1), axis=1)
    ry = rankdata(y.reshape(y.shape[0], -1), axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
    return torch.from_numpy(rho)


def _ssim_one(x: np.ndarray, y: np.ndarray) -> float:
    n = WINDOW * WINDOW
    cov_norm = n / (n - 1)
    mean = [ndimage.uniform_filter(v, size=WINDOW) for v in (x, y, x * x, y * y, x * y)]
    ux, uy, uxx, uyy, uxy = mean
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (WINDOW - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """SSIM between a[i] and b[i] (maps in [0, 1], at least 7 × 7) for each map: (N,) float64.

    >>> a = torch.rand(2, 8, 8)
    >>> ssim(a, a)
    tensor([1., 1.], dtype=torch.float64)
    """
    x, y = _pair(a, b)
    if min(x.shape[1:]) < WINDOW:
        raise CadcamInputError(
            f"a: SSIM's {WINDOW}×{WINDOW} window needs maps of at least that size, got {x.shape[1:]}"
        )
    return torch.tensor([_ssim_one(u, v) for u, v in zip(x, y, strict=True)], dtype=torch.float64)
