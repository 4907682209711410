"""``explain``: Grad-CAM, PCA-Grad-CAM and SVM-Grad-CAM for a batch, in one pass, no autograd.

For features F (N, T, M, N') and a head, with PCA on dense layer l and an SVM on the PCA scores:

    a_c^t = Σ_i ∂y_c/∂x_i^t,   G_c = ReLU(Σ_t a_c^t F^t)                       (Eq. 8–9)
    e_b^t = Σ_i ∂p_b/∂x_i^t,   P_b = Σ_t e_b^t F^t,  P_b^± = ReLU(±P_b)         (Eq. 10–12)
    s^t   = Σ_i ∂a/∂x_i^t,     S = ReLU(Σ_t s^t F^t)                            (Eq. 14)

with every Jacobian the product of generated blocks (Eq. 13, 15, 17–26): the rows of
∂y_c/∂q_L, ∂p/∂q_l = Vᵀ and ∂a/∂p ∂p/∂q_l are pulled back to q₁, multiplied by f′(δ₁) and by
W̄₁ (position-summed first layer, once per head; derivations/NOTES.md §3). Weights are the paper's plain
sums (no 1/MN). ``method`` selects how the maps are formed from the same gradients:

* ``"grad-cam"``  — as above;
* ``"xgrad-cam"`` — weights Σ_i F_i^t/(Σ_j F_j^t + 1e-7) · ∂/∂F_i^t (Fu et al. 2020; pytorch-grad-cam's ε);
* ``"hires-cam"`` — map Σ_t ∂/∂F^t ⊙ F^t, elementwise (Draelos & Carin 2020).

The XGrad-CAM and HiRes-CAM forms for the PCA and SVM layers are the extension the paper
announces (§7): only the Jacobians above are needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.chain import DenseLayer, HeadForward, PCALayer, forward_dense, pullback
from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.head import Head, parse_head
from cadcam_numeric.engine.pca import pca_layer_from_sklearn
from cadcam_numeric.engine.svm import SVMHead
from cadcam_numeric.engine.targets import resolve_targets
from cadcam_numeric.engine.transform import TransformLayer
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated.blocks import pullback_log_softmax, pullback_softmax

__all__ = [
    "CAMResult",
    "ClosedFormPass",
    "Method",
    "PositionGradients",
    "TargetScores",
    "closed_form_pass",
    "explain",
    "head_output",
    "output_pullback",
    "pca_on",
    "position_gradients",
    "row_channel_weights",
    "row_position_gradients",
    "signed_maps",
    "target_scores",
]

#: How maps are formed from the closed-form gradients: key -> label. The one registry of map
#: methods (the CLI's choices, the evaluation's labels and ``Method`` below read it).
METHOD_LABELS: dict[str, str] = {"grad-cam": "Grad-CAM", "xgrad-cam": "XGrad-CAM", "hires-cam": "HiRes-CAM"}
METHODS = tuple(METHOD_LABELS)
Method = Literal["grad-cam", "xgrad-cam", "hires-cam"]  # = METHODS (a test holds them equal)
XGRAD_EPS = 1e-7


@dataclass(frozen=True)
class CAMResult:
    """Raw maps at feature resolution and the channel weights, on the features' device.

    ``pca_*`` and ``svm*`` are None when no PCA / SVM was given; ``gradcam``, ``class_weights``,
    ``cnn_*`` and ``logits`` are None when the head has no class output (no ``Linear``). ``logits``
    is the head's output (after a final ``Softmax``/``LogSoftmax`` when it has one). ``svm_prediction`` holds the SVM's
    predicted labels (a tensor when they are numbers, else a NumPy array); ``svm_target`` the
    labels explained, ``cnn_target`` the class indices explained by ``gradcam``.
    """

    gradcam: Tensor | None
    class_weights: Tensor | None
    cnn_prediction: Tensor | None
    cnn_target: Tensor | None
    logits: Tensor | None
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


def _labels_tensor(labels: np.ndarray, device: torch.device) -> Tensor | np.ndarray:
    if np.issubdtype(np.asarray(labels).dtype, np.integer):
        return torch.as_tensor(np.asarray(labels)).to(device)
    return np.asarray(labels)


def _maps(weights: Tensor, features: Tensor) -> Tensor:
    """Σ_t w^t F^t: (N, R, T), (N, T, M, N') -> (N, R, M, N')."""
    return torch.einsum("nrt,nthw->nrhw", weights, features)


def signed_maps(method: str, features: Tensor, weights: Tensor, gradients: Callable[[], Tensor]) -> Tensor:
    """Signed maps (before any ReLU) for each row, (N, R, M, N′), by ``method`` (module docstring):
    ``weights`` (N, R, T) are the channel weights; ``gradients()`` gives ∂(·)/∂F per position
    (N, R, T, M, N′), asked for only by the methods that need it."""
    if method == "grad-cam":
        return _maps(weights, features)
    grad = gradients()
    if method == "hires-cam":
        return (grad * features.unsqueeze(1)).sum(2)
    total = features.sum(dim=(-2, -1), keepdim=True).unsqueeze(1)
    xweights = (grad * features.unsqueeze(1) / (total + XGRAD_EPS)).sum(dim=(-2, -1))
    return _maps(xweights, features)


def row_channel_weights(head: Head, wbar: Tensor | None, h1: Tensor | None, input_rows: Tensor | None) -> Tensor:
    """w^t = Σ_i ∂(·)/∂F_i^t for every row (N, R, T), Eq. 9, 10, 14: h₁ W̄₁ for rows through the
    first dense layer (``wbar`` = W̄₁), the pooled position sum for rows that start at x."""
    parts = [] if h1 is None else [h1 @ wbar]
    if input_rows is not None:
        parts.append(head.input_rows_to_channel_weights(input_rows))
    return torch.cat(parts, dim=1)


def row_position_gradients(head: Head, features: Tensor, h1: Tensor | None, input_rows: Tensor | None) -> Tensor:
    """∂(·)/∂F at every feature position for every row, (N, R, T, M, N′)."""
    parts = [] if h1 is None else [head.first_layer_to_positions(h1)]
    if input_rows is not None:
        parts.append(head.input_rows_to_positions(input_rows))
    return head.pooling.adjoint(torch.cat(parts, dim=1), features)


def pca_on(
    pca: object, pca_after: object, x: Tensor, fwd: HeadForward, layers: list[DenseLayer]
) -> tuple[PCALayer | TransformLayer, Tensor, Tensor]:
    """The PCA layer on what ``pca_after`` names — x itself (0) or dense layer l's output —, what it
    reads (q_l) and its scores p = Vᵀ(q_l − u) (Eq. 5); ``pca_after`` and the widths are checked."""
    depth = len(layers)
    if pca_after is None or isinstance(pca_after, bool) or not isinstance(pca_after, int):
        raise CadcamInputError(f"pca_after: expected an integer in 0..{depth}, got {pca_after!r}")
    if not 0 <= pca_after <= depth:
        raise CadcamInputError(
            f"pca_after: expected 0 (PCA on the pooled features x) or the 1-based index of a dense layer "
            f"in 1..{depth}, got {pca_after}"
        )
    q = fwd.outputs[pca_after - 1] if pca_after else x
    reads = "dense layer pca_after" if pca_after else "the pooled features x (pca_after=0)"
    layer = pca_layer_from_sklearn(pca, int(q.shape[1]), x, reads)
    return layer, q, layer.scores(q)


def head_output(head: Head, last: Tensor) -> Tensor:
    """y: the last dense layer's output, through the head's final softmax / log-softmax if any."""
    if head.output == "softmax":
        return torch.softmax(last, dim=-1)
    if head.output == "log_softmax":
        return torch.log_softmax(last, dim=-1)
    return last


def output_pullback(head: Head, rows: Tensor, last: Tensor) -> Tensor:
    """Rows at y pulled back to q_L through the final softmax / log-softmax (generated blocks)."""
    if head.output == "softmax":
        return pullback_softmax(rows, torch.softmax(last, dim=-1))
    if head.output == "log_softmax":
        return pullback_log_softmax(rows, torch.softmax(last, dim=-1))
    return rows


@dataclass(frozen=True)
class ClosedFormPass:
    """One closed-form pass: the rows h₁ = g₁ diag(f′(δ₁)) (N, R, D₁) for 1 class row, B PCA rows and
    1 SVM row, and everything the forward computed on the way. Fields are None without a PCA/SVM.

    With PCA on the pooled features themselves (``pca_after=0``) the PCA and SVM rows start at x:
    they are ``input_rows`` ∂(·)/∂x (N, R′, D₀) and ``h1`` holds the class row only (None, with the
    class fields, when the head has no class output)."""

    features: Tensor
    head: Head
    h1: Tensor | None
    logits: Tensor | None
    prediction: Tensor | None
    cnn_target: Tensor | None
    pca_layer: PCALayer | TransformLayer | None
    pca_scores: Tensor | None
    svm_head: SVMHead | None
    svm_prediction: Tensor | np.ndarray | None
    svm_target: Tensor | np.ndarray | None
    svm_target_index: Tensor | None
    svm_scores: Tensor | None

    input_rows: Tensor | None = None

    @property
    def n_components(self) -> int:
        return 0 if self.pca_scores is None else int(self.pca_scores.shape[1])

    @property
    def class_rows(self) -> int:
        """1 when the first row is the class row, 0 when the head has no class output."""
        return 0 if self.cnn_target is None else 1

    def channel_weights(self) -> Tensor:
        """w^t = Σ_i ∂(·)/∂F_i^t for every row (N, R, T), Eq. 9, 10, 14 (:func:`row_channel_weights`)."""
        wbar = None if self.h1 is None else self.head.position_summed_weights()
        return row_channel_weights(self.head, wbar, self.h1, self.input_rows)

    def position_gradients(self) -> Tensor:
        """∂(·)/∂F at every feature position for every row, (N, R, T, M, N')."""
        return row_position_gradients(self.head, self.features, self.h1, self.input_rows)


def closed_form_pass(
    features: Tensor,
    head: nn.Module,
    pca: PCA | PCALayer | None,
    pca_after: int | None,
    svm: object | SVMHead | None,
    targets: object,
    svm_targets: object = None,
    *,
    channels_last: bool = False,
    dtype: torch.dtype | None = None,
    custom_activations: Mapping[str, ActivationCode] | None = None,
) -> ClosedFormPass:
    """Forward through the head and pull every target's row back to the first dense layer (Eq. 13, 15)."""
    features = _check_features(features, dtype)
    parsed = parse_head(head, features, channels_last=channels_last, custom_activations=custom_activations)
    layers = parsed.layers
    n, depth = features.shape[0], len(layers)
    if svm is not None and pca is None:
        raise CadcamInputError("svm: the SVM consumes PCA scores; pass pca (and pca_after) too")
    svm_head = None if svm is None else parse_svm(svm, features)
    resolved = resolve_targets(
        targets, svm_targets, n, parsed.num_outputs, None if svm_head is None else svm_head.classes
    )
    x = parsed.flatten(features)
    fwd = forward_dense(x, layers)
    rows, logits, prediction, cnn_target = [], None, None, None
    if parsed.has_class_output:
        logits = head_output(parsed, fwd.outputs[-1])
        prediction = logits.argmax(dim=1)
        cnn_target = prediction if resolved.cnn is None else resolved.cnn.to(prediction.device)
        eye = torch.eye(parsed.num_outputs, dtype=features.dtype, device=features.device)
        at_y = output_pullback(parsed, eye[cnn_target].unsqueeze(1), fwd.outputs[-1])
        rows.append(pullback(at_y, layers, fwd, depth, bottom=1))
    elif pca is None:
        raise CadcamInputError(
            "head: has no Linear layer, so no class output to explain; pass pca (with pca_after=0) and an svm"
        )
    pca_layer = scores = svm_prediction = svm_target = index = svm_scores = None
    input_rows = None
    if pca is not None:
        pca_layer, q, scores = pca_on(pca, pca_after, x, fwd, layers)
        b = pca_layer.n_components
        at_p = [torch.eye(b, dtype=features.dtype, device=features.device).expand(n, b, b)]
        if svm_head is not None:
            if svm_head.n_features != b:
                raise CadcamInputError(f"svm: fitted on {svm_head.n_features} features, but the PCA gives B = {b}")
            svm_scores, predicted = svm_head.scores_and_predictions(scores)
            labels = predicted if resolved.svm is None else resolved.svm
            argument = (
                "svm prediction" if resolved.svm is None else ("svm_targets" if svm_targets is not None else "targets")
            )
            index = svm_head.class_index(labels, argument).to(features.device)
            grads = svm_head.class_score_gradients(scores)  # (N, C, B)
            at_p.append(grads[torch.arange(n, device=features.device), index].unsqueeze(1))
            svm_prediction = _labels_tensor(predicted, features.device)
            svm_target = _labels_tensor(np.asarray(labels), features.device)
        at_l = pca_layer.pullback(torch.cat(at_p, dim=1), q)  # rows at q_l (or at x)
        if pca_after:
            rows.append(pullback(at_l, layers, fwd, pca_after, bottom=1))
        else:  # the rows are already ∂(·)/∂x: they start below the first dense layer
            input_rows = at_l
    h1 = None
    if rows:
        h1 = torch.cat(rows, dim=1) * layers[0].fprime(fwd.deltas[0]).unsqueeze(-2)  # (N, R, D1)
    return ClosedFormPass(
        features,
        parsed,
        h1,
        logits,
        prediction,
        cnn_target,
        pca_layer,
        scores,
        svm_head,
        svm_prediction,
        svm_target,
        index,
        svm_scores,
        input_rows,
    )


@dataclass(frozen=True)
class PositionGradients:
    """∂(target)/∂F at every position, (N, T, M, N') each; ``pca`` is (N, B, T, M, N').

    ``cnn_target``: the class index differentiated per image; ``svm_target_index``: the SVM class
    (position in ``classes_``) differentiated per image, or None without an SVM.
    """

    gradcam: Tensor | None
    pca: Tensor | None
    svm: Tensor | None
    features: Tensor
    cnn_target: Tensor | None
    svm_target_index: Tensor | None


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
    cf = closed_form_pass(
        features,
        head,
        pca,
        pca_after,
        svm,
        targets,
        svm_targets,
        channels_last=channels_last,
        dtype=dtype,
        custom_activations=custom_activations,
    )
    grad = cf.position_gradients()  # (N, R, T, M, N')
    b, c0 = cf.n_components, cf.class_rows
    return PositionGradients(
        grad[:, 0] if c0 else None,
        grad[:, c0 : c0 + b] if b else None,
        grad[:, c0 + b] if cf.svm_head is not None else None,
        cf.features,
        cf.cnn_target,
        cf.svm_target_index,
    )


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
    cf = closed_form_pass(
        features,
        head,
        pca,
        pca_after,
        svm,
        targets,
        svm_targets,
        channels_last=channels_last,
        dtype=dtype,
        custom_activations=custom_activations,
    )
    weights = cf.channel_weights()  # (N, R, T), Eq. 9, 10, 14
    signed = signed_maps(method, cf.features, weights, cf.position_gradients)
    b, c0 = cf.n_components, cf.class_rows
    pca_maps = svm_maps = {}
    if cf.pca_layer is not None:
        pca_maps = dict(
            pca_positive=torch.relu(signed[:, c0 : c0 + b]),
            pca_negative=torch.relu(-signed[:, c0 : c0 + b]),
            pca_weights=weights[:, c0 : c0 + b],
        )
    if cf.svm_head is not None:
        svm_maps = dict(svm=torch.relu(signed[:, c0 + b]), svm_weights=weights[:, c0 + b])
    return CAMResult(
        gradcam=torch.relu(signed[:, 0]) if c0 else None,
        class_weights=weights[:, 0] if c0 else None,
        cnn_prediction=cf.prediction,
        cnn_target=cf.cnn_target,
        logits=cf.logits,
        method=method,
        pca_scores=cf.pca_scores,
        svm_prediction=cf.svm_prediction,
        svm_target=cf.svm_target,
        svm_scores=cf.svm_scores,
        **pca_maps,
        **svm_maps,
    )


@dataclass(frozen=True)
class TargetScores:
    """Forward-only outputs: the head's output (N, C; None without a class output), PCA scores (N, B),
    SVM class scores (N, C_svm)."""

    logits: Tensor | None
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
    x = parsed.flatten(features)
    fwd = forward_dense(x, parsed.layers)
    scores = svm_scores = None
    if pca is not None:
        _, _, scores = pca_on(pca, pca_after, x, fwd, parsed.layers)
        if svm is not None:
            svm_scores = parse_svm(svm, features).class_scores(scores)
    logits = head_output(parsed, fwd.outputs[-1]) if parsed.has_class_output else None
    return TargetScores(logits, scores, svm_scores)
