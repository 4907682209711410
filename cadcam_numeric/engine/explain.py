"""``explain``: Grad-CAM, PCA-Grad-CAM and SVM-Grad-CAM for a batch, in one pass, no autograd.

For features F (N, T, M, N') and a head, with PCA on dense layer l and an SVM on the PCA scores:

    a_c^t = Σ_i ∂y_c/∂x_i^t,   G_c = ReLU(Σ_t a_c^t F^t)                       (Eq. 8–9)
    e_b^t = Σ_i ∂p_b/∂x_i^t,   P_b = Σ_t e_b^t F^t,  P_b^± = ReLU(±P_b)         (Eq. 10–12)
    s^t   = Σ_i ∂a/∂x_i^t,     S = ReLU(Σ_t s^t F^t)                            (Eq. 14)

with every Jacobian the product of generated blocks (Eq. 13, 15, 17–26): the rows of
∂y_c/∂q_L, ∂p/∂q_l = Vᵀ and ∂a/∂p ∂p/∂q_l are pulled back to q₁, multiplied by f′(δ₁) and by
W̄₁ (position-summed first layer, once per head; derivations/NOTES.md §3). Weights are the paper's plain
sums (no 1/MN). ``method`` selects how the maps are formed from the same gradients
(:mod:`cadcam_numeric.engine.map_methods`: ``"grad-cam"``, ``"xgrad-cam"``, ``"hires-cam"``).

``explain`` is a thin layer over :class:`~cadcam_numeric.engine.closed_form.ClosedForm`: it checks
the features, builds the module for their shape (sharing the head's tensors, no copy) and asks it
for the targets' pass. Build a ``ClosedForm`` yourself to explain many batches with one parse.

The XGrad-CAM and HiRes-CAM forms for the PCA and SVM layers are the extension the paper
announces (§7): only the Jacobians above are needed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from sklearn.decomposition import PCA
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.chain import PCALayer, forward_dense
from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.head import parse_head
from cadcam_numeric.engine.map_methods import METHOD_LABELS, METHODS, Method
from cadcam_numeric.engine.results import CAMResult, PositionGradients, TargetScores, checked_features
from cadcam_numeric.engine.rows import head_output, named_layer, pca_on
from cadcam_numeric.engine.split_vit import TransformerHead
from cadcam_numeric.engine.svm import SVMHead
from cadcam_numeric.engine.tokens import parse_token_head
from cadcam_numeric.errors import CadcamInputError

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "CAMResult",
    "Method",
    "PositionGradients",
    "TargetScores",
    "explain",
    "position_gradients",
    "target_scores",
]


def _closed_form(
    features: Tensor,
    head: nn.Module,
    pca: object,
    pca_after: object,
    svm: object,
    method: str,
    channels_last: bool,
    dtype: torch.dtype | None,
    custom_activations: Mapping[str, ActivationCode] | None,
) -> ClosedForm:
    """A ``ClosedForm`` for one call on ``features``: their shape, dtype and device, the head's tensors shared."""
    f = checked_features(features, dtype)
    wanted = 3 if isinstance(head, TransformerHead) else 4
    if f.dim() != wanted:
        layout = "tokens (N, T, D) for a transformer head" if wanted == 3 else "(N, T, M, N')"
        raise CadcamInputError(f"features: expected {wanted} dimensions, {layout}, got shape {tuple(f.shape)}")
    try:
        cf = ClosedForm(
            head, pca, pca_after, svm, method=method, channels_last=channels_last, dtype=f.dtype,
            custom_activations=custom_activations, feature_shape=tuple(f.shape[1:]), copy=False,
        )  # fmt: skip
    except CadcamInputError as error:  # ClosedForm parses on a batch of one: name the caller's shape
        probe = f"shape {(1, *f.shape[1:])}"
        raise CadcamInputError(str(error).replace(probe, f"shape {tuple(f.shape)}")) from None
    return cf.to(f.device)


def position_gradients(
    features: Tensor,
    head: nn.Module,
    pca: PCA | PCALayer | None = None,
    pca_after: int | None = None,
    svm: object | SVMHead | None = None,
    targets: object = None,
    svm_targets: object = None,
    *,
    channels_last: bool = False,
    dtype: torch.dtype | None = None,
    custom_activations: Mapping[str, ActivationCode] | None = None,
) -> PositionGradients:
    """Closed-form ∂y_c/∂F, ∂p_b/∂F and ∂a_c/∂F at every feature position (no autograd).

    Same targets and conventions as :func:`explain`; this is what gradient × activation methods
    (Eigen-Grad-CAM, Decom-CAM) need, for the CNN class, each PCA component and the SVM decision.
    """
    cf = _closed_form(features, head, pca, pca_after, svm, "grad-cam", channels_last, dtype, custom_activations)
    return cf.position_gradients(features, targets, svm_targets)


def explain(
    features: Tensor,
    head: nn.Module,
    pca: PCA | PCALayer | None = None,
    pca_after: int | None = None,
    svm: object | SVMHead | None = None,
    targets: object = None,
    svm_targets: object = None,
    *,
    method: Method = "grad-cam",
    channels_last: bool = False,
    dtype: torch.dtype | None = None,
    custom_activations: Mapping[str, ActivationCode] | None = None,
) -> CAMResult:
    """All maps of a batch: Grad-CAM, PCA-Grad-CAM ± per component, SVM-Grad-CAM (module docstring).

    Args:
        features: (N, T, M, N') feature maps F of the last used CNN layer.
        head: ``nn.Sequential`` — optional pooling, ``Flatten``, ``Linear`` layers with catalogue
            activations (eval-mode ``Dropout``/``BatchNorm1d`` allowed).
        pca: fitted ``sklearn.decomposition.PCA`` on the activated output of dense layer ``pca_after``
            (or on the flattened pooled features x when ``pca_after`` is 0).
        pca_after: 1-based index l of that dense layer (the paper's l); 0 for PCA on x itself, the
            usual CNN-SVM recipe (pooled features → PCA → SVM beside the CNN's own classifier).
        svm: fitted ``SVC``/``LinearSVC``/``OneVsRestClassifier`` (or ``Pipeline(StandardScaler, ·)``)
            on the PCA scores.
        targets: CNN classes to explain, one per image or one for all: integers, ``ClassTarget``,
            or pytorch-grad-cam's ``ClassifierOutputTarget``; SVM labels (``'dog'``) or
            ``SVMClassTarget`` are taken as SVM targets (:mod:`cadcam_numeric.engine.targets`).
            Default: the CNN's argmax.
        svm_targets: SVM labels to explain (any label type). Default: the integer ``targets`` when
            they are SVM labels too, else the SVM's ``predict``.
        method: ``"grad-cam"`` (default), ``"xgrad-cam"`` or ``"hires-cam"``.
        channels_last: the head was ported from Keras and flattens (M, N', T) instead of (T, M, N').
        dtype: computation dtype; default the features' (float32/float64).
        custom_activations: a spec's generated activations (``load_custom_code(...).activations``),
            needed only when the head uses the user's own activation classes.
    """
    if method not in METHOD_LABELS:
        raise CadcamInputError(f"method: expected one of {METHODS}, got {method!r}")
    return _closed_form(features, head, pca, pca_after, svm, method, channels_last, dtype, custom_activations).explain(
        features, targets, svm_targets
    )


def target_scores(
    features: Tensor,
    head: nn.Module,
    pca: PCA | PCALayer | None = None,
    pca_after: int | None = None,
    svm: object | SVMHead | None = None,
    *,
    channels_last: bool = False,
    custom_activations: Mapping[str, ActivationCode] | None = None,
) -> TargetScores:
    """The quantities the maps explain, without any gradient: y, p = Vᵀ(q_l − u), a_c(p) — or, with
    ``pca=None``, a_c of the layer ``pca_after`` names (a probe). ``features`` (N, T, M, N′), or the
    tokens (N, T, D) entering the last block of a :class:`TransformerHead` (x is then its pooled embedding).
    """
    features = checked_features(features, None)
    if isinstance(head, TransformerHead):
        token_head = parse_token_head(head, features)
        parsed, x = token_head.dense, token_head.forward(features).embedding
    else:
        parsed = parse_head(head, features, channels_last=channels_last, custom_activations=custom_activations)
        x = parsed.flatten(features)
    fwd = forward_dense(x, parsed.layers)
    scores = svm_scores = None
    if pca is not None:
        _, _, scores = pca_on(pca, pca_after, x, fwd, parsed.layers)
    if svm is not None:
        read = scores if pca is not None else named_layer(pca_after, x, fwd, len(parsed.layers))
        svm_scores = parse_svm(svm, features).class_scores(read)
    logits = head_output(parsed, fwd.outputs[-1]) if parsed.has_class_output else None
    return TargetScores(logits, scores, svm_scores)
