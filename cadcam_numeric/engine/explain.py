"""``explain``: Grad-CAM, PCA-Grad-CAM and SVM-Grad-CAM for a batch, in one pass, no autograd.

For features F (N, T, M, N') and a head, with PCA on dense layer l and an SVM on the PCA scores:

    a_c^t = Σ_i ∂y_c/∂x_i^t,   G_c = ReLU(Σ_t a_c^t F^t)                       (Eq. 8–9)
    e_b^t = Σ_i ∂p_b/∂x_i^t,   P_b = Σ_t e_b^t F^t,  P_b^± = ReLU(±P_b)         (Eq. 10–12)
    s^t   = Σ_i ∂a/∂x_i^t,     S = ReLU(Σ_t s^t F^t)                            (Eq. 14)

with every Jacobian the product of generated blocks (Eq. 13, 15, 17–26): the rows of
∂y_c/∂q_L, ∂p/∂q_l = Vᵀ and ∂a/∂p ∂p/∂q_l are pulled back to q₁, multiplied by f′(δ₁) and by
W̄₁ (position-summed first layer, once per head; MATH.md §3). Weights are the paper's plain
sums (no 1/MN). ``method`` selects how the maps are formed from the same gradients:

* ``"grad-cam"``  — as above;
* ``"xgrad-cam"`` — weights Σ_i F_i^t/(Σ_j F_j^t + 1e-7) · ∂/∂F_i^t (Fu et al. 2020; pytorch-grad-cam's ε);
* ``"hires-cam"`` — map Σ_t ∂/∂F^t ⊙ F^t, elementwise (Draelos & Carin 2020).

The XGrad-CAM and HiRes-CAM forms for the PCA and SVM layers are the extension the paper
announces (§7): only the Jacobians above are needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.chain import PCALayer, forward_dense, pullback
from cadcam_numeric.engine.head import Head, parse_head
from cadcam_numeric.engine.svm import SVMHead, parse_svm
from cadcam_numeric.errors import CadcamInputError

__all__ = ["CAMResult", "Method", "PositionGradients", "TargetScores", "explain", "position_gradients", "target_scores"]

Method = Literal["grad-cam", "xgrad-cam", "hires-cam"]
METHODS = ("grad-cam", "xgrad-cam", "hires-cam")
XGRAD_EPS = 1e-7


@dataclass(frozen=True)
class CAMResult:
    """Raw maps at feature resolution and the channel weights, on the features' device.

    ``pca_*`` and ``svm*`` are None when no PCA / SVM was given. ``svm_prediction`` holds the SVM's
    predicted labels (a tensor when they are numbers, else a NumPy array); ``svm_target`` the
    labels explained, ``cnn_target`` the class indices explained by ``gradcam``.
    """

    gradcam: Tensor
    class_weights: Tensor
    cnn_prediction: Tensor
    cnn_target: Tensor
    logits: Tensor
    method: str
    pca_positive: Tensor | None = None
    pca_negative: Tensor | None = None
    pca_weights: Tensor | None = None
    pca_scores: Tensor | None = None
    svm: Tensor | None = None
    svm_weights: Tensor | None = None
    svm_prediction: Tensor | np.ndarray | None = None
    svm_target: Tensor | np.ndarray | None = None
    svm_scores: Tensor | None = None


def _check_features(features: Tensor, dtype: torch.dtype | None) -> Tensor:
    if not isinstance(features, Tensor):
        raise CadcamInputError(f"features: expected a torch.Tensor (N, T, M, N'), got {type(features).__name__}")
    if features.dim() != 4:
        raise CadcamInputError(f"features: expected 4 dimensions (N, T, M, N'), got shape {tuple(features.shape)}")
    if not features.is_floating_point():
        raise CadcamInputError(f"features: expected a floating-point tensor, got {features.dtype}")
    if features.shape[0] == 0:
        raise CadcamInputError("features: the batch is empty")
    if dtype is None:
        dtype = features.dtype if features.dtype in (torch.float32, torch.float64) else torch.float32
    if dtype not in (torch.float32, torch.float64):
        raise CadcamInputError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    features = features.detach().to(dtype)
    # One reduction instead of a boolean mask: the sum is finite when every value is; only when it
    # is not (a NaN/Inf, or an overflow of huge but finite values) is the elementwise check run.
    if not torch.isfinite(features.sum()) and not torch.isfinite(features).all():
        bad = int((~torch.isfinite(features)).sum())
        raise CadcamInputError(f"features: {bad} NaN/Inf values; the maps would be meaningless")
    return features


def pca_layer_from_sklearn(pca: PCA | PCALayer, width: int, like: Tensor) -> PCALayer:
    """The fitted scikit-learn PCA as Vᵀ, u and (if whitened) λ, checked against layer width D_l.

    A ``PCALayer`` (e.g. loaded from a bundle) is accepted as is, cast to ``like``.
    """
    from cadcam_numeric.engine.svm import _fitted

    if isinstance(pca, PCALayer):
        if pca.components.shape[1] != width:
            raise CadcamInputError(
                f"pca: has {pca.components.shape[1]} input features, but dense layer pca_after has width {width}"
            )
        return pca.to(like)
    if not isinstance(pca, PCA):
        raise CadcamInputError(f"pca: expected a fitted sklearn.decomposition.PCA, got {type(pca).__name__}")
    _fitted(pca, "pca")
    if pca.components_.shape[1] != width:
        raise CadcamInputError(
            f"pca: fitted on {pca.components_.shape[1]} features, but dense layer pca_after has width {width}"
        )

    def t(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64)).to(like)

    return PCALayer(t(pca.components_), t(pca.mean_), t(pca.explained_variance_) if pca.whiten else None)


def _cnn_targets(targets: object, n: int, classes: int, prediction: Tensor) -> Tensor:
    if targets is None:
        return prediction
    t = torch.as_tensor(np.asarray(targets)).reshape(-1).to(prediction.device)
    if t.numel() == 1 and n > 1:
        t = t.expand(n)
    if t.numel() != n:
        raise CadcamInputError(f"targets: expected {n} labels (one per image), got {t.numel()}")
    if t.is_floating_point() or t.dtype == torch.bool:
        raise CadcamInputError(f"targets: expected integer class indices for the CNN, got {t.dtype}")
    if (t < 0).any() or (t >= classes).any():
        raise CadcamInputError(f"targets: class indices must lie in [0, {classes}), got {t.tolist()}")
    return t.long()


def _labels_tensor(labels: np.ndarray, device: torch.device) -> Tensor | np.ndarray:
    if np.issubdtype(np.asarray(labels).dtype, np.integer):
        return torch.as_tensor(np.asarray(labels)).to(device)
    return np.asarray(labels)


def _maps(weights: Tensor, features: Tensor) -> Tensor:
    """Σ_t w^t F^t: (N, R, T), (N, T, M, N') -> (N, R, M, N')."""
    return torch.einsum("nrt,nthw->nrhw", weights, features)


def _method_maps(method: str, head: Head, h1: Tensor, weights: Tensor, features: Tensor) -> Tensor:
    """Signed maps (before any ReLU) for each row of h₁ = g₁ diag(f′(δ₁))."""
    if method == "grad-cam":
        return _maps(weights, features)
    grad = head.pooling.adjoint(head.first_layer_to_positions(h1), features)  # (N, R, T, M, N')
    if method == "hires-cam":
        return (grad * features.unsqueeze(1)).sum(2)
    total = features.sum(dim=(-2, -1), keepdim=True).unsqueeze(1)
    xweights = (grad * features.unsqueeze(1) / (total + XGRAD_EPS)).sum(dim=(-2, -1))
    return _maps(xweights, features)


@dataclass(frozen=True)
class _ClosedFormPass:
    """One closed-form pass: rows h₁ = g₁ diag(f′(δ₁)) for 1 class row, B PCA rows, 1 SVM row."""

    features: Tensor
    head: Head
    h1: Tensor
    logits: Tensor
    prediction: Tensor
    cnn_target: Tensor
    pca_layer: PCALayer | None
    svm_head: SVMHead | None
    extra: dict[str, object]


def _closed_form_pass(
    features, head, pca, pca_after, svm, targets, channels_last, dtype, custom_activations=None
) -> _ClosedFormPass:
    features = _check_features(features, dtype)
    parsed = parse_head(head, features, channels_last=channels_last, custom_activations=custom_activations)
    layers = parsed.layers
    n, depth = features.shape[0], len(layers)
    fwd = forward_dense(parsed.flatten(features), layers)
    logits = fwd.outputs[-1]
    prediction = logits.argmax(dim=1)
    cnn_target = _cnn_targets(targets, n, parsed.num_outputs, prediction)
    eye = torch.eye(parsed.num_outputs, dtype=features.dtype, device=features.device)
    rows = [pullback(eye[cnn_target].unsqueeze(1), layers, fwd, depth, bottom=1)]
    if svm is not None and pca is None:
        raise CadcamInputError("svm: the SVM consumes PCA scores; pass pca (and pca_after) too")
    pca_layer = svm_head = None
    extra: dict[str, object] = {}
    if pca is not None:
        if pca_after is None or not isinstance(pca_after, int) or not 1 <= pca_after <= depth:
            raise CadcamInputError(
                f"pca_after: expected the 1-based index of a dense layer in 1..{depth}, got {pca_after!r}"
            )
        width = int(layers[pca_after - 1].weight.shape[0])
        pca_layer = pca_layer_from_sklearn(pca, width, features)
        scores = pca_layer.scores(fwd.outputs[pca_after - 1])
        jac = pca_layer.jacobian()
        b = jac.shape[0]
        at_l = [jac.expand(n, *jac.shape)]
        extra["pca_scores"] = scores
        if svm is not None:
            svm_head = parse_svm(svm, features)
            if svm_head.n_features != b:
                raise CadcamInputError(f"svm: fitted on {svm_head.n_features} features, but the PCA gives B = {b}")
            predicted = svm_head.predict(scores)
            labels = predicted if targets is None else np.array(np.broadcast_to(np.asarray(targets).reshape(-1), (n,)))
            index = svm_head.class_index(labels, "targets" if targets is not None else "svm prediction").to(
                features.device
            )
            grads = svm_head.class_score_gradients(scores)  # (N, C, B)
            at_l.append(grads[torch.arange(n, device=features.device), index].unsqueeze(1) @ jac)
            extra.update(
                svm_prediction=_labels_tensor(predicted, features.device),
                svm_target=_labels_tensor(np.asarray(labels), features.device),
                svm_scores=svm_head.class_scores(scores),
                svm_target_index=index,
            )
        rows.append(pullback(torch.cat(at_l, dim=1), layers, fwd, pca_after, bottom=1))
    g1 = torch.cat(rows, dim=1)  # (N, R, D1)
    h1 = g1 * layers[0].fprime(fwd.deltas[0]).unsqueeze(-2)
    return _ClosedFormPass(features, parsed, h1, logits, prediction, cnn_target, pca_layer, svm_head, extra)


@dataclass(frozen=True)
class PositionGradients:
    """∂(target)/∂F at every position, (N, T, M, N') each; ``pca`` is (N, B, T, M, N').

    ``cnn_target``: the class index differentiated per image; ``svm_target_index``: the SVM class
    (position in ``classes_``) differentiated per image, or None without an SVM.
    """

    gradcam: Tensor
    pca: Tensor | None
    svm: Tensor | None
    features: Tensor
    cnn_target: Tensor
    svm_target_index: Tensor | None


def position_gradients(
    features: Tensor,
    head: nn.Module,
    pca: PCA | PCALayer | None = None,
    pca_after: int | None = None,
    svm: object | SVMHead | None = None,
    targets: Sequence[int] | Tensor | np.ndarray | None = None,
    *,
    channels_last: bool = False,
    dtype: torch.dtype | None = None,
    custom_activations: Mapping[str, ActivationCode] | None = None,
) -> PositionGradients:
    """Closed-form ∂y_c/∂F, ∂p_b/∂F and ∂a_c/∂F at every feature position (no autograd).

    Same targets and conventions as :func:`explain`; this is what gradient × activation methods
    (Eigen-Grad-CAM, Decom-CAM) need, for the CNN class, each PCA component and the SVM decision.
    """
    cf = _closed_form_pass(features, head, pca, pca_after, svm, targets, channels_last, dtype, custom_activations)
    grad = cf.head.pooling.adjoint(cf.head.first_layer_to_positions(cf.h1), cf.features)  # (N, R, T, M, N')
    b = 0 if cf.pca_layer is None else cf.extra["pca_scores"].shape[1]
    return PositionGradients(
        grad[:, 0],
        grad[:, 1 : 1 + b] if b else None,
        grad[:, 1 + b] if cf.svm_head is not None else None,
        cf.features,
        cf.cnn_target,
        cf.extra.get("svm_target_index"),
    )


def explain(
    features: Tensor,
    head: nn.Module,
    pca: PCA | PCALayer | None = None,
    pca_after: int | None = None,
    svm: object | SVMHead | None = None,
    targets: Sequence[int] | Tensor | np.ndarray | None = None,
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
        pca: fitted ``sklearn.decomposition.PCA`` on the activated output of dense layer ``pca_after``.
        pca_after: 1-based index l of that dense layer (the paper's l).
        svm: fitted ``SVC``/``LinearSVC``/``OneVsRestClassifier`` (or ``Pipeline(StandardScaler, ·)``)
            on the PCA scores.
        targets: class labels to explain, one per image (or one for all). Default: each model's
            own prediction (the CNN's argmax for Grad-CAM, the SVM's ``predict`` for SVM-Grad-CAM).
            The same labels are used for both when given.
        method: ``"grad-cam"`` (default), ``"xgrad-cam"`` or ``"hires-cam"``.
        channels_last: the head was ported from Keras and flattens (M, N', T) instead of (T, M, N').
        dtype: computation dtype; default the features' (float32/float64).
        custom_activations: a spec's generated activations (``load_custom_code(...).activations``),
            needed only when the head uses the user's own activation classes.
    """
    if method not in METHODS:
        raise CadcamInputError(f"method: expected one of {METHODS}, got {method!r}")
    cf = _closed_form_pass(features, head, pca, pca_after, svm, targets, channels_last, dtype, custom_activations)
    weights = cf.h1 @ cf.head.position_summed_weights()  # (N, R, T), Eq. 9, 10, 14
    signed = _method_maps(method, cf.head, cf.h1, weights, cf.features)
    result = {
        "gradcam": torch.relu(signed[:, 0]),
        "class_weights": weights[:, 0],
        "cnn_prediction": cf.prediction,
        "cnn_target": cf.cnn_target,
        "logits": cf.logits,
        "method": method,
    }
    pca_layer, svm_head = cf.pca_layer, cf.svm_head
    extra = {k: v for k, v in cf.extra.items() if k != "svm_target_index"}
    if pca_layer is not None:
        b = extra["pca_scores"].shape[1]
        result.update(
            pca_positive=torch.relu(signed[:, 1 : 1 + b]),
            pca_negative=torch.relu(-signed[:, 1 : 1 + b]),
            pca_weights=weights[:, 1 : 1 + b],
        )
        if svm_head is not None:
            result.update(svm=torch.relu(signed[:, 1 + b]), svm_weights=weights[:, 1 + b])
    result.update(extra)
    return CAMResult(**result)


@dataclass(frozen=True)
class TargetScores:
    """Forward-only outputs: logits (N, C), PCA scores (N, B), SVM class scores (N, C_svm)."""

    logits: Tensor
    pca_scores: Tensor | None
    svm_scores: Tensor | None


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
    """The quantities the maps explain, without any gradient: y, p = Vᵀ(q_l − u), a_c(p)."""
    features = _check_features(features, None)
    parsed = parse_head(head, features, channels_last=channels_last, custom_activations=custom_activations)
    fwd = forward_dense(parsed.flatten(features), parsed.layers)
    scores = svm_scores = None
    if pca is not None:
        if pca_after is None or not 1 <= pca_after <= len(parsed.layers):
            raise CadcamInputError(f"pca_after: expected 1..{len(parsed.layers)}, got {pca_after!r}")
        layer = pca_layer_from_sklearn(pca, int(parsed.layers[pca_after - 1].weight.shape[0]), features)
        scores = layer.scores(fwd.outputs[pca_after - 1])
        if svm is not None:
            svm_scores = parse_svm(svm, features).class_scores(scores)
    return TargetScores(fwd.outputs[-1], scores, svm_scores)
