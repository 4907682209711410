"""Read a fitted scikit-learn PCA into the layer p = Vᵀ(q_l − u) (Eq. 4–5) the generated blocks use."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import Tensor

from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.sklearn_checks import require_fitted
from cadcam_numeric.errors import CadcamInputError

__all__ = ["pca_layer_from_sklearn"]


def pca_layer_from_sklearn(
    pca: PCA | PCALayer, width: int | None, like: Tensor, reads: str = "dense layer pca_after"
) -> PCALayer:
    """The fitted scikit-learn PCA as Vᵀ (``components_``), u (``mean_``) and, when whitened, λ
    (``explained_variance_``), cast to ``like``'s dtype and device.

    ``width`` is the width D_l of what the PCA reads, ``reads`` names it for the message (checked;
    None skips the check). A ``PCALayer`` (e.g. loaded from a bundle) is accepted as is.
    """
    if isinstance(pca, PCALayer):
        if width is not None and pca.components.shape[1] != width:
            raise CadcamInputError(f"pca: has {pca.components.shape[1]} input features, but {reads} has width {width}")
        return pca.to(like)
    if not isinstance(pca, PCA):
        raise CadcamInputError(f"pca: expected a fitted sklearn.decomposition.PCA, got {type(pca).__name__}")
    require_fitted(pca, "pca")
    if width is not None and pca.components_.shape[1] != width:
        raise CadcamInputError(f"pca: fitted on {pca.components_.shape[1]} features, but {reads} has width {width}")

    def t(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64)).to(like)

    return PCALayer(t(pca.components_), t(pca.mean_), t(pca.explained_variance_) if pca.whiten else None)
