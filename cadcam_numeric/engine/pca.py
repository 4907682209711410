"""Read a fitted scikit-learn projection into the layer p = Vᵀ(q_l − u) (Eq. 4–5) the generated
blocks use.

Accepted: ``PCA`` and ``IncrementalPCA`` (plain or whitened), ``TruncatedSVD`` (no centring:
u = 0), and a ``Pipeline`` of per-feature affine scalers (``StandardScaler``, ``RobustScaler``,
``MinMaxScaler``, ``MaxAbsScaler``) followed by one of those. A scaler x′ = s∘x + o in front of
the projection folds into it exactly (``derivations/blocks.py::prove_scaler_fold``):
Vᵀ(s∘x + o − u) = (Vᵀ diag(s))(x − (u − o)/s), i.e. components Vᵀ diag(s) and mean (u − o)/s,
so the Jacobian is still the generated PCA block. ``Normalizer`` (x/‖x‖) is not affine and is refused.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA, IncrementalPCA, TruncatedSVD
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from torch import Tensor

from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.sklearn_checks import require_fitted
from cadcam_numeric.errors import CadcamInputError

__all__ = ["PROJECTIONS", "SCALERS", "pca_layer_from_sklearn"]

PROJECTIONS = (PCA, IncrementalPCA, TruncatedSVD)
SCALERS = (StandardScaler, RobustScaler, MinMaxScaler, MaxAbsScaler)


def _affine(scaler: object, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(s, o) with scaler(x) = s∘x + o, from the fitted attributes scikit-learn's transform uses."""
    ones, zeros = np.ones(width), np.zeros(width)
    if isinstance(scaler, StandardScaler):
        s = 1.0 / scaler.scale_ if scaler.with_std else ones
        return s, (-scaler.mean_ * s if scaler.with_mean else zeros)
    if isinstance(scaler, RobustScaler):
        s = 1.0 / scaler.scale_ if scaler.with_scaling else ones
        return s, (-scaler.center_ * s if scaler.with_centering else zeros)
    if isinstance(scaler, MinMaxScaler):
        if scaler.clip:
            raise CadcamInputError("pca: MinMaxScaler(clip=True) is not affine (it clips); use clip=False")
        return scaler.scale_.astype(np.float64), scaler.min_.astype(np.float64)
    return 1.0 / scaler.max_abs_, zeros  # MaxAbsScaler (a zero max_abs_ is stored as 1 by scikit-learn)


def _accepted() -> str:
    names = [c.__name__ for c in PROJECTIONS]
    return f"{', '.join(names)}, or a Pipeline of {', '.join(c.__name__ for c in SCALERS)} then one of those"


def pca_layer_from_sklearn(
    pca: object, width: int | None, like: Tensor, reads: str = "dense layer pca_after"
) -> PCALayer:
    """The fitted projection as Vᵀ (``components_``), u (``mean_``) and, when whitened, λ
    (``explained_variance_``), with any scalers in front folded in, cast to ``like``'s dtype and device.

    ``width`` is the width D_l of what the PCA reads, ``reads`` names it for the message (checked;
    None skips the check). A ``PCALayer`` (e.g. loaded from a bundle) is accepted as is.
    """
    if isinstance(pca, PCALayer):
        if width is not None and pca.components.shape[1] != width:
            raise CadcamInputError(f"pca: has {pca.components.shape[1]} input features, but {reads} has width {width}")
        return pca.to(like)
    steps = [s for _, s in pca.steps] if isinstance(pca, Pipeline) else [pca]
    *scalers, projection = steps
    if not isinstance(projection, PROJECTIONS) or not all(isinstance(s, SCALERS) for s in scalers):
        found = " -> ".join(type(s).__name__ for s in steps)
        raise CadcamInputError(f"pca: expected {_accepted()}; got {found}")
    for step in steps:
        require_fitted(step, "pca")
    components = np.asarray(projection.components_, dtype=np.float64)
    d = components.shape[1]
    if width is not None and d != width:
        raise CadcamInputError(f"pca: fitted on {d} features, but {reads} has width {width}")
    mean = np.zeros(d) if isinstance(projection, TruncatedSVD) else np.asarray(projection.mean_, dtype=np.float64)
    whitened = bool(getattr(projection, "whiten", False))
    variance = np.asarray(projection.explained_variance_, dtype=np.float64) if whitened else None
    if variance is not None and not (
        np.all(np.isfinite(variance)) and np.all(variance > 1e-12 * max(float(variance.max(initial=0.0)), 1e-300))
    ):
        raise CadcamInputError(
            "pca: a whitened component has zero (or numerically zero, or non-finite) explained variance; "
            "scikit-learn's own transform divides by it. Use fewer components or whiten=False"
        )
    scale, offset = np.ones(d), np.zeros(d)
    for scaler in scalers:  # compose x -> s∘x + o, left to right
        s, o = _affine(scaler, d)
        scale, offset = s * scale, s * offset + o
    if np.any(scale == 0) or not np.all(np.isfinite(scale)):
        raise CadcamInputError("pca: a scaler in front of the projection has a zero or non-finite scale")
    components, mean = components * scale, (mean - offset) / scale  # the fold: V diag(s), (u − o)/s

    def t(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64)).to(like)

    return PCALayer(t(components), t(mean), t(variance) if variance is not None else None)
