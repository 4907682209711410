"""Read a fitted scikit-learn projection into the layer p = Vᵀ(q_l − u) (Eq. 4–5) the generated
blocks use, or into a :class:`~cadcam_numeric.engine.transform.TransformLayer` when it is not linear.

Accepted: ``PCA`` and ``IncrementalPCA`` (plain or whitened), ``TruncatedSVD`` (no centring:
u = 0) — the same linear form Vᵀ(x − u) —, ``KernelPCA`` (kernels linear, poly, rbf, sigmoid,
cosine), and a ``Pipeline`` of per-feature affine scalers (``StandardScaler``, ``RobustScaler``,
``MinMaxScaler``, ``MaxAbsScaler``) and ``Normalizer(norm="l2")`` followed by one of those.

Scalers directly in front of a linear projection fold into it exactly
(``derivations/blocks.py::prove_scaler_fold``): Vᵀ(s∘x + o − u) = (Vᵀ diag(s))(x − (u − o)/s),
so the Jacobian is still the generated PCA block. Other steps stay steps of the chain.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA, IncrementalPCA, KernelPCA, TruncatedSVD
from sklearn.frozen import FrozenEstimator
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from torch import Tensor

from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.sklearn_checks import require_fitted
from cadcam_numeric.engine.transform import AffineStep, KernelProjection, L2NormalizeStep, TransformLayer
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import KERNELS

__all__ = [
    "KERNEL_PCA_KERNELS",
    "PROJECTIONS",
    "SCALERS",
    "pca_layer_from_sklearn",
    "preprocessing_steps",
]

LINEAR_PROJECTIONS = (PCA, IncrementalPCA, TruncatedSVD)
PROJECTIONS = (*LINEAR_PROJECTIONS, KernelPCA)
SCALERS = (StandardScaler, RobustScaler, MinMaxScaler, MaxAbsScaler)
PREPROCESSORS = (*SCALERS, Normalizer)
#: KernelPCA kernels with a closed-form gradient (cosine = l2 normalisation + linear, proved)
KERNEL_PCA_KERNELS = ("linear", "poly", "rbf", "sigmoid", "cosine")


def _affine(scaler: object, width: int, argument: str) -> tuple[np.ndarray, np.ndarray]:
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
            raise CadcamInputError(f"{argument}: MinMaxScaler(clip=True) is not affine (it clips); use clip=False")
        return scaler.scale_.astype(np.float64), scaler.min_.astype(np.float64)
    return 1.0 / scaler.scale_, zeros  # MaxAbsScaler: scale_ is max_abs_ with zeros stored as 1, as transform uses


def _accepted() -> str:
    names = [c.__name__ for c in PROJECTIONS]
    return (
        f"{', '.join(names)} (KernelPCA kernels {', '.join(KERNEL_PCA_KERNELS)}), or a Pipeline of "
        f"{', '.join(c.__name__ for c in PREPROCESSORS)} then one of those"
    )


def _tensor(a: np.ndarray, like: Tensor) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64)).to(like)


def preprocessing_steps(
    steps: list[object], width: int, argument: str, like: Tensor
) -> list[AffineStep | L2NormalizeStep]:
    """Fitted scalers and l2 normalisers as chain steps, consecutive affine scalers composed into one."""
    out: list[AffineStep | L2NormalizeStep] = []
    scale = offset = None
    for step in steps:
        require_fitted(step, argument)
        if isinstance(step, Normalizer):
            if step.norm != "l2":
                raise CadcamInputError(
                    f"{argument}: Normalizer(norm={step.norm!r}) is not supported (its |x| and max have kinks "
                    "scikit-learn does not differentiate); use norm='l2'"
                )
            if scale is not None:
                out.append(AffineStep(_tensor(scale, like), _tensor(offset, like)))
                scale = offset = None
            out.append(L2NormalizeStep())
            continue
        s, o = _affine(step, width, argument)
        if scale is None:
            scale, offset = np.ones(width), np.zeros(width)
        scale, offset = s * scale, s * offset + o  # compose x -> s∘x + o, left to right
    if scale is not None:
        if np.any(scale == 0) or not np.all(np.isfinite(scale)) or not np.all(np.isfinite(offset)):
            raise CadcamInputError(f"{argument}: a scaler has a zero or non-finite scale")
        out.append(AffineStep(_tensor(scale, like), _tensor(offset, like)))
    return out


def kernel_centring(kpca: KernelPCA) -> tuple[np.ndarray, float]:
    """The fitted kernel's column means k̄_i = (1/I) Σ_j k(x_j, x_i) and grand mean k̄ = (1/I) Σ_i k̄_i,
    which ``KernelPCA.transform`` centres a new row's kernel values with, computed from public
    attributes (``X_fit_``, ``gamma_``, ``degree``, ``coef0``) by scikit-learn's ``pairwise_kernels``,
    as ``KernelPCA.fit`` computes its kernel (``_centerer`` is private and may change without notice).

    Args:
        kpca: a fitted ``KernelPCA`` with a named kernel.

    Returns:
        (k̄_i of shape (I,), k̄).

    Example:
        >>> import numpy as np
        >>> from sklearn.decomposition import KernelPCA
        >>> x = np.random.default_rng(0).normal(size=(6, 3))
        >>> rows, grand = kernel_centring(KernelPCA(2, kernel="rbf").fit(x))
        >>> rows.shape, bool(np.isclose(grand, rows.mean()))
        ((6,), True)
    """
    params = {"gamma": kpca.gamma_, "degree": kpca.degree, "coef0": kpca.coef0}
    fitted = np.asarray(kpca.X_fit_, dtype=np.float64)
    kernel = pairwise_kernels(fitted, metric=kpca.kernel, filter_params=True, **params)
    rows = kernel.mean(axis=0)
    return rows, float(rows.mean())


def _kernel_projection(kpca: KernelPCA, like: Tensor) -> tuple[list[L2NormalizeStep], KernelProjection]:
    """KernelPCA's transform as a decision block (``block/kernel_pca/centring``)."""
    kernel = kpca.kernel
    if not isinstance(kernel, str) or kernel not in KERNEL_PCA_KERNELS:
        raise CadcamInputError(
            f"pca: KernelPCA(kernel={kernel!r}) has no closed-form gradient here; expected one of "
            f"{', '.join(KERNEL_PCA_KERNELS)}"
        )
    fitted = np.asarray(kpca.X_fit_, dtype=np.float64)
    steps: list[L2NormalizeStep] = []
    if kernel == "cosine":  # the linear kernel of l2-normalised inputs (block/kernel_pca/cosine)
        norms = np.linalg.norm(fitted, axis=1, keepdims=True)
        fitted = fitted / np.where(norms == 0, 1.0, norms)
        steps, kernel = [L2NormalizeStep()], "linear"
    eigenvalues = np.asarray(kpca.eigenvalues_, dtype=np.float64)
    alphas = np.zeros_like(np.asarray(kpca.eigenvectors_, dtype=np.float64))
    nonzero = np.flatnonzero(eigenvalues)  # as scikit-learn's transform: zero eigenvalues give zero scores
    alphas[:, nonzero] = kpca.eigenvectors_[:, nonzero] / np.sqrt(eigenvalues[nonzero])
    rows, grand = kernel_centring(kpca)
    dual = (alphas - alphas.mean(axis=0, keepdims=True)).T  # (B, I)
    intercept = grand * alphas.sum(axis=0) - rows @ alphas  # (B,)
    code = KERNELS[kernel]
    params = {"gamma": float(kpca.gamma_), "coef0": float(kpca.coef0), "degree": int(kpca.degree)}
    params = {k: v for k, v in params.items() if k in code.parameters}
    if not np.all(np.isfinite(dual)) or not np.all(np.isfinite(intercept)):
        raise CadcamInputError("pca: KernelPCA has non-finite scaled eigenvectors")
    return steps, KernelProjection(code, _tensor(fitted, like), _tensor(dual, like), _tensor(intercept, like), params)


def pca_layer_from_sklearn(
    pca: object, width: int | None, like: Tensor, reads: str = "dense layer pca_after"
) -> PCALayer | TransformLayer:
    """The fitted projection as Vᵀ (``components_``), u (``mean_``) and, when whitened, λ
    (``explained_variance_``), with any scalers in front folded in, cast to ``like``'s dtype and device.

    ``width`` is the width D_l of what the PCA reads, ``reads`` names it for the message (checked;
    None skips the check). A ``PCALayer`` or ``TransformLayer`` (e.g. loaded from a bundle) is accepted
    as is. Returns a ``PCALayer`` when the transform is linear (scalers folded in), else a
    ``TransformLayer`` (a ``Normalizer`` that cannot be folded, or a ``KernelPCA``).
    """
    if isinstance(pca, PCALayer | TransformLayer):
        if width is not None and pca.n_features != width:
            raise CadcamInputError(f"pca: has {pca.n_features} input features, but {reads} has width {width}")
        return pca.to(like)
    if isinstance(pca, FrozenEstimator):
        pca = pca.estimator
    steps = [s for _, s in pca.steps if s not in (None, "passthrough")] if isinstance(pca, Pipeline) else [pca]
    if not steps:
        raise CadcamInputError("pca: the Pipeline holds no estimator (every step is 'passthrough')")
    *pre, projection = steps
    if not isinstance(projection, PROJECTIONS) or not all(isinstance(s, PREPROCESSORS) for s in pre):
        found = " -> ".join(type(s).__name__ for s in steps)
        raise CadcamInputError(f"pca: expected {_accepted()}; got {found}")
    require_fitted(projection, "pca")
    d = int(projection.n_features_in_)
    if width is not None and d != width:
        raise CadcamInputError(f"pca: fitted on {d} features, but {reads} has width {width}")
    exact = torch.zeros((), dtype=torch.float64, device=like.device)  # read and fold in float64, then cast
    chain = preprocessing_steps(pre, d, "pca", exact)
    if isinstance(projection, KernelPCA):
        extra, kernel_projection = _kernel_projection(projection, exact)
        return TransformLayer(tuple(chain + extra), kernel_projection).to(like)
    layer = _linear_projection(projection, d, exact)
    if chain and isinstance(chain[-1], AffineStep):  # fold it (block/pca/scaler_fold)
        last = chain.pop()
        s, o = last.scale, last.offset
        layer = PCALayer(layer.components * s, (layer.mean - o) / s, layer.explained_variance)
    return (TransformLayer(tuple(chain), layer) if chain else layer).to(like)


def _linear_projection(projection: object, d: int, like: Tensor) -> PCALayer:
    """Vᵀ (``components_``), u (``mean_``; 0 for TruncatedSVD) and, when whitened, λ."""
    components = np.asarray(projection.components_, dtype=np.float64)
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
    return PCALayer(
        _tensor(components, like), _tensor(mean, like), _tensor(variance, like) if variance is not None else None
    )
