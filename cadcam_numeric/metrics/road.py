"""ROAD: remove and debias (Rong et al. 2022), the noisy linear imputation of removed pixels.

A removed pixel becomes the weighted mean of its 8 neighbours — weight 1/6 for the 4 edge
neighbours, 1/12 for the 4 corner ones, renormalised at the border — where a neighbour that is
also removed is itself unknown: for the m removed pixels of an image this is one sparse linear
system A v = b (m × m, one right-hand side per channel), solved with SciPy, plus Gaussian noise of
standard deviation ``noise`` on the imputed values. The imputed image no longer shows *where*
pixels were removed (the leak that makes plain deletion reward any map with a sharp edge).

Percentiles mean what pytorch-grad-cam's ``ROADMostRelevantFirst(p)`` / ``ROADLeastRelevantFirst(p)``
mean: ``"morf"`` at p keeps the pixels whose saliency is below its p-th percentile (so p = 90 removes
the 10 % most relevant), ``"lerf"`` at p keeps those whose 1 − saliency is below its p-th percentile
(p = 90 removes the 10 % least relevant). With ``noise=0`` the imputed images and the scores equal
theirs (``return_diff=False``) at every p. Ties count as theirs do: a ReLU'd map whose zeros hold p %
of its pixels or more has threshold 0 and keeps none of them, and a map with no pixel below the
threshold (a constant map) keeps nothing at all. There the system is singular: pytorch-grad-cam
hands it to SciPy (a MatrixRankWarning) and gets 0, and here every pixel is imputed as 0 without
solving (no neighbour carries a value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = ["NEIGHBOUR_WEIGHTS", "road", "road_impute", "road_keep_masks"]

#: (row offset, column offset) -> weight of that neighbour in the imputation
NEIGHBOUR_WEIGHTS = (
    ((1, 1), 1 / 12),
    ((0, 1), 1 / 6),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((0, -1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((-1, 0), 1 / 6),
)


def _system(keep: np.ndarray, image: np.ndarray) -> tuple[sparse.csc_matrix, np.ndarray, np.ndarray]:
    """A (m, m), b (m, C) and the flat indices of the m removed pixels of one mask (H, W)."""
    h, w = keep.shape
    known = keep.reshape(-1)
    flat = image.reshape(image.shape[0], -1).astype(np.float64)
    removed = np.flatnonzero(~known)
    m = removed.size
    variable = np.zeros(h * w, dtype=np.int64)
    variable[removed] = np.arange(m)
    rows, cols = removed // w, removed % w
    weight_sum = np.ones(m)
    b = np.zeros((m, flat.shape[0]))
    a_rows, a_cols, a_values = [np.arange(m)], [np.arange(m)], []
    for (dr, dc), weight in NEIGHBOUR_WEIGHTS:
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (c >= 0) & (r < h) & (c < w)
        weight_sum[~inside] -= weight
        ids = np.flatnonzero(inside)
        neighbour = r[inside] * w + c[inside]
        has_value = known[neighbour]
        b[ids[has_value]] -= weight * flat[:, neighbour[has_value]].T
        a_rows.append(ids[~has_value])
        a_cols.append(variable[neighbour[~has_value]])
        a_values.append(np.full(a_rows[-1].size, weight))
    values = np.concatenate([-weight_sum, *a_values])
    a = sparse.csc_matrix((values, (np.concatenate(a_rows), np.concatenate(a_cols))), shape=(m, m))
    return a, b, removed


def _nothing_kept(keep: np.ndarray) -> tuple[None, None, np.ndarray]:
    """Every pixel removed: no system to solve (see :func:`_impute_many`)."""
    return None, None, np.arange(keep.size)


def _check_image(image: object, what: str = "image") -> None:
    if not isinstance(image, Tensor) or image.dim() != 3 or not image.is_floating_point():
        raise CadcamInputError(f"{what}: expected a floating-point (C, H, W) tensor")


def _impute_many(image: Tensor, keeps: Sequence[np.ndarray], noise: float, generator) -> Tensor:
    """``image`` (C, H, W) imputed under each mask: (P, C, H, W), the P systems solved as one
    block-diagonal system (one SciPy call per image)."""
    data = image.detach().cpu().numpy()
    # nothing kept (a constant map removes every pixel): A v = 0 is singular and no neighbour carries a
    # value, so the imputation is 0 — each of these masks gets the zero image (plus noise)
    systems = [_system(k, data) if k.any() else _nothing_kept(k) for k in keeps]
    out = image.detach().cpu().unsqueeze(0).repeat(len(keeps), 1, 1, 1).reshape(len(keeps), image.shape[0], -1)
    solvable = [s for s in systems if s[0] is not None and s[2].size]
    solved = np.zeros((0, image.shape[0]))
    if solvable:
        b = np.concatenate([s[1] for s in solvable])
        solved = np.asarray(spsolve(sparse.block_diag([s[0] for s in solvable], format="csc"), b)).reshape(b.shape)
    start = 0
    for i, (a, _, removed) in enumerate(systems):
        if removed.size:
            if a is None:
                part = torch.zeros(image.shape[0], removed.size, dtype=out.dtype)
            else:
                part = torch.from_numpy(solved[start : start + removed.size]).T.to(out.dtype)
                start += removed.size
            if noise:
                part = part + noise * torch.randn(part.shape, generator=generator, dtype=out.dtype)
            out[i][:, torch.from_numpy(removed)] = part
    return out.reshape(len(keeps), *image.shape).to(image.device)


def road_impute(
    image: Tensor, keep: Tensor, *, noise: float = 0.01, generator: torch.Generator | None = None
) -> Tensor:
    """``image`` (C, H, W) with the pixels where ``keep`` (H, W, bool) is False replaced by the noisy
    linear imputation of the module docstring; kept pixels are unchanged. Returns (C, H, W).

    >>> image = torch.zeros(1, 3, 3); image[0, 0] = 1.0  # top row 1, the rest 0
    >>> keep = torch.ones(3, 3, dtype=torch.bool); keep[1, 1] = False
    >>> float(road_impute(image, keep, noise=0)[0, 1, 1])  # (1/12 + 1/6 + 1/12) of its neighbours' sum
    0.3333333432674408
    """
    _check_image(image)
    if not isinstance(keep, Tensor) or keep.dtype != torch.bool or keep.shape != image.shape[-2:]:
        raise CadcamInputError(f"keep: expected a bool tensor of shape {tuple(image.shape[-2:])}")
    if noise < 0:
        raise CadcamInputError(f"noise: expected >= 0, got {noise}")
    return _impute_many(image, [keep.cpu().numpy()], noise, generator)[0]


def road_keep_masks(saliency: Tensor, percentiles: Sequence[float], order: str) -> list[np.ndarray]:
    """The kept pixels (H, W) of one map at each percentile (module docstring), thresholds as
    pytorch-grad-cam computes them: NumPy's percentile of the map, compared in the map's dtype."""
    s = saliency.detach().cpu()
    ranked = s if order == "morf" else 1 - s
    values = ranked.numpy()
    return [(ranked < np.percentile(values, p)).numpy() for p in percentiles]


def road(
    score: Callable[[Tensor, Tensor], Tensor],
    images: Tensor,
    saliency: Tensor,
    *,
    percentiles: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
    order: str = "morf",
    noise: float = 0.01,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    batch_size: int = 64,
) -> Tensor:
    """ROAD scores: ``score`` of each image after imputation at each percentile, (N, P).

    ``score(x, index)`` as :func:`~cadcam_numeric.metrics.deletion_insertion` takes it: a batch of
    images and the index of the original image of each row -> one score per row. ``saliency``
    (N, H, W) at image resolution; ``order`` ``"morf"`` (most relevant first) or ``"lerf"``;
    ``generator`` draws the noise, or one generator per image (so an image's noise does not depend
    on the batch it is in). The N·P imputed images are scored ``batch_size`` at a time.

    >>> images = torch.rand(2, 3, 8, 8)
    >>> road(lambda x, i: x.mean(dim=(1, 2, 3)), images, torch.rand(2, 8, 8), percentiles=(50, 90)).shape
    torch.Size([2, 2])
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point() or not len(images):
        raise CadcamInputError("images: expected a floating-point (N, C, H, W) tensor with N >= 1")
    if not isinstance(saliency, Tensor) or saliency.shape != (images.shape[0], *images.shape[-2:]):
        raise CadcamInputError(f"saliency: expected shape (N, H, W) = {(images.shape[0], *images.shape[-2:])}")
    if order not in ("morf", "lerf"):
        raise CadcamInputError(f"order: expected 'morf' or 'lerf', got {order!r}")
    percentiles = tuple(percentiles)
    if not percentiles or any(not 0 <= p <= 100 for p in percentiles):
        raise CadcamInputError(f"percentiles: expected values in [0, 100], got {percentiles}")
    if noise < 0:
        raise CadcamInputError(f"noise: expected >= 0, got {noise}")
    if batch_size < 1:
        raise CadcamInputError(f"batch_size: expected >= 1, got {batch_size}")
    n, p = images.shape[0], len(percentiles)
    generators = list(generator) if isinstance(generator, list | tuple) else [generator] * n
    if len(generators) != n:
        raise CadcamInputError(f"generator: expected one generator or {n} (one per image), got {len(generators)}")
    pending: list[Tensor] = []  # imputed images not yet scored: fewer than batch_size + P at any time
    scores: list[Tensor] = []
    done = 0
    with torch.no_grad():
        for i in range(n):
            keep = road_keep_masks(saliency[i], percentiles, order)
            pending.append(_impute_many(images[i], keep, noise, generators[i]))
            held = torch.cat(pending)
            while held.shape[0] >= batch_size or (i == n - 1 and held.shape[0]):
                chunk, held = held[:batch_size], held[batch_size:]
                which = torch.arange(done, done + chunk.shape[0], device=images.device) // p
                scores.append(score(chunk, which).reshape(-1))
                done += chunk.shape[0]
            pending = [held]
    return torch.cat(scores).reshape(n, p)
