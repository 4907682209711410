"""``ClosedForm``: the head, its transform and its classifier read once into an ``nn.Module`` whose
forward gives the logits and every map in one pass of tensor algebra (no autograd, no hooks).

Because nothing in :meth:`ClosedForm.forward` branches on tensor values (the predicted class is an
index used by ``gather``, non-finite input is reported in ``"finite"``, not raised), the module
compiles (``torch.compile(fullgraph=True)``) and exports (``torch.export``, ONNX) as one graph: the
maps of Eq. 8–14 ship to ONNX Runtime or a C++ server beside the logits. Every tensor it holds
(dense weights, the position-summed first layer W̄₁, the transform, scaler, support vectors, dual
coefficients, intercepts, orientation, calibration thresholds) is a buffer, so ``.to()``,
``.double()``, ``state_dict()`` and ``load_state_dict()`` work as for any module; scalar settings
(kernel γ, coef0 and degree, a sigmoid calibrator's a and b, activation constants) are fixed at
construction, as the shapes are. Shapes (the feature shape, class counts) are
fixed at construction; only the batch size varies.

>>> import torch
>>> from torch import nn
>>> head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
>>> cf = ClosedForm(head)
>>> out = cf(torch.rand(4, 3, 7, 7))
>>> list(out), tuple(out["gradcam"].shape)
(['logits', 'cnn_prediction', 'gradcam', 'class_weights', 'finite'], (4, 7, 7))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.chain import forward_dense
from cadcam_numeric.engine.classifiers import ClassifierHead, parse_svm
from cadcam_numeric.engine.head import Head, parse_head
from cadcam_numeric.engine.head_rows import head_rows
from cadcam_numeric.engine.held_state import Held, expected_feature_shape, map_leaves
from cadcam_numeric.engine.map_methods import METHODS
from cadcam_numeric.engine.results import CAMResult, PositionGradients, checked_features
from cadcam_numeric.engine.row_pass import RowPass
from cadcam_numeric.engine.rows import named_layer, pca_on
from cadcam_numeric.engine.split_vit import TransformerHead
from cadcam_numeric.engine.targets import resolve_targets
from cadcam_numeric.engine.tokens import TokenHead, parse_token_head
from cadcam_numeric.errors import CadcamInputError

__all__ = ["ClosedForm"]

Classes = Literal["predicted", "all"]


def _token_shape(head: TransformerHead, feature_shape: tuple[int, ...] | None) -> tuple[int, int]:
    """(T, D) of a transformer head's tokens: prefix tokens plus the patch grid, the embedding width."""
    h, w = head.grid
    shape = (head.num_prefix_tokens + h * w, int(head.parts.norm1.normalized_shape[0]))
    if feature_shape is not None and tuple(feature_shape) != shape:
        raise CadcamInputError(
            f"feature_shape: this transformer head takes tokens (T, D) = {shape}, got {feature_shape!r}"
        )
    return shape


def _transform_and_classifier(
    pca: object | None, pca_after: int | None, svm: object | None, x: Tensor, dense: Head, probe: Tensor
) -> tuple[object | None, ClassifierHead | None]:
    """The transform on the layer ``pca_after`` names and the classifier on its scores — or, with
    ``pca=None``, the classifier on that layer itself (a linear probe); widths checked."""
    if pca is None and svm is None:
        return None, None
    fwd = forward_dense(x, dense.layers)
    q = named_layer(pca_after, x, fwd, len(dense.layers))
    pca_layer = None if pca is None else pca_on(pca, pca_after, x, fwd, dense.layers)[0]
    if svm is None:
        return pca_layer, None
    classifier = parse_svm(svm, probe)
    width = int(q.shape[1]) if pca_layer is None else pca_layer.n_components
    if classifier.n_features != width:
        reads = f"the PCA gives B = {width}" if pca is not None else f"the layer pca_after={pca_after} has {width}"
        raise CadcamInputError(f"svm: fitted on {classifier.n_features} features, but {reads}")
    return pca_layer, classifier


class ClosedForm(nn.Module):
    """Grad-CAM, PCA-Grad-CAM ± and SVM-Grad-CAM of a head as one module (module docstring).

    Args:
        head: as :func:`explain`.
        pca: as :func:`explain`.
        pca_after: as :func:`explain`.
        svm: as :func:`explain`.
        method: as :func:`explain`.
        channels_last: as :func:`explain`.
        custom_activations: as :func:`explain`.
        classes: ``"predicted"`` (one class map per image: the CNN's and the classifier's prediction)
            or ``"all"`` (one per class: ``"gradcam"`` (N, C, M, N′), ``"svm"`` (N, C_svm, M, N′)).
        dtype: the dtype of every buffer and of the computation (float32 or float64).
        feature_shape: (T, M, N′) of the features; needed only when the head's pooling does not fix
            the size of what it flattens (no pooling, or a fixed-window pool).
        copy: hold copies of the head's tensors (default), so that training the head later does not
            change this module; ``False`` shares their storage (a module built for one call, as
            :func:`explain` builds it).

    ``cf(features)`` returns a dict of tensors, keys in this order where they apply: ``logits``,
    ``cnn_prediction``, ``gradcam``, ``class_weights``; ``pca_scores``, ``pca_positive``,
    ``pca_negative``, ``pca_weights``; ``svm_scores``, ``svm_prediction`` (int64 index into
    :attr:`svm_classes`), ``svm``, ``svm_weights``; ``finite`` (N,) bool: the image's features are
    finite and so is every map made from them (a non-finite feature value always reaches the maps).
    :meth:`explain` and :meth:`closed_form_pass` take chosen targets, as :func:`explain` does.
    """

    def __init__(
        self,
        head: nn.Module,
        pca: object | None = None,
        pca_after: int | None = None,
        svm: object | None = None,
        *,
        method: str = "grad-cam",
        classes: Classes = "predicted",
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
        custom_activations: Mapping[str, ActivationCode] | None = None,
        feature_shape: tuple[int, int, int] | None = None,
        copy: bool = True,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise CadcamInputError(f"method: expected one of {METHODS}, got {method!r}")
        if classes not in ("predicted", "all"):
            raise CadcamInputError(f"classes: expected 'predicted' or 'all', got {classes!r}")
        if dtype not in (torch.float32, torch.float64):
            raise CadcamInputError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        #: parsed on the head's own device, so a CUDA head gives CUDA buffers (then ``.to()`` as any module)
        device = next((w.device for w in head.parameters()), torch.device("cpu"))
        if isinstance(head, TransformerHead):
            self.feature_shape = _token_shape(head, feature_shape)
            self.any_spatial_size = False
            probe = torch.zeros(1, *self.feature_shape, dtype=dtype, device=device)
            parsed = parse_token_head(head, probe)
            dense, x = parsed.dense, parsed.forward(probe).embedding
        else:
            self.feature_shape = expected_feature_shape(head, feature_shape, pca)
            #: an adaptive pool's output size is fixed: any M, N' (≥ its size) is accepted, only T is checked
            self.any_spatial_size = feature_shape is None
            probe = torch.zeros(1, *self.feature_shape, dtype=dtype, device=device)
            parsed = parse_head(head, probe, channels_last=channels_last, custom_activations=custom_activations)
            dense, x = parsed, parsed.flatten(probe)
        if not dense.has_class_output and pca is None and svm is None:
            raise CadcamInputError(
                "head: has no Linear layer, so no class output to explain; pass pca (with pca_after=0) and an svm"
            )
        pca_layer, classifier = _transform_and_classifier(pca, pca_after, svm, x, dense, probe)
        self.method, self.classes, self.pca_after = method, classes, pca_after
        self._copy = copy
        self._cached_views: tuple[tuple[int, ...], dict] | None = None
        wbar = parsed.position_summed_weights() if isinstance(parsed, Head) and parsed.has_class_output else None
        state = {"head": parsed, "wbar": wbar, "pca": pca_layer, "svm": classifier}
        # labels (NumPy, often strings) become tuples: the forward only counts them, and a compiler
        # need not trace NumPy
        self._svm_classes = None if classifier is None else np.asarray(classifier.classes)
        state = map_leaves(state, lambda _, labels: tuple(labels.tolist()), "cf", np.ndarray)
        self._template = map_leaves(state, self._hold, "cf", Tensor)

    def _hold(self, name: str, tensor: Tensor) -> Held:
        """Register ``tensor`` as a buffer (a copy unless ``copy=False``); the template keeps its name."""
        self.register_buffer(name, tensor.detach().clone() if self._copy else tensor.detach())
        return Held(name)

    def _views(self) -> dict:
        """The head, W̄₁, transform and classifier over the module's current buffers (so after
        ``.to()``, ``load_state_dict()`` or a buffer replaced, too). Eager calls reuse the views
        while the buffers are the same tensor objects; a compiler traces them afresh."""
        if torch.compiler.is_compiling():
            return map_leaves(self._template, lambda _, held: getattr(self, held.name), "cf", Held)
        key = tuple(map(id, self._buffers.values()))
        if self._cached_views is None or self._cached_views[0] != key:
            views = map_leaves(self._template, lambda _, held: getattr(self, held.name), "cf", Held)
            self._cached_views = (key, views)
        return self._cached_views[1]

    def _dtype(self) -> torch.dtype:
        return next(b for b in self.buffers() if b.is_floating_point()).dtype  # every buffer's, after .to()

    @property
    def svm_classes(self) -> np.ndarray | None:
        """The classifier's labels; ``"svm_prediction"`` indexes them. None without a classifier."""
        return self._svm_classes

    def _check_shape(self, features: Tensor) -> None:
        """(N, T, M, N′) as fixed at construction (only T when an adaptive pool fixes the rest); tokens
        (N, T, D) for a transformer head."""
        fixed = self.feature_shape[: 1 if self.any_spatial_size else 3]
        if features.dim() != 1 + len(self.feature_shape) or tuple(features.shape[1 : 1 + len(fixed)]) != fixed:
            expected = f"(N, {fixed[0]}, M, N')" if self.any_spatial_size else f"(N, {', '.join(map(str, fixed))})"
            raise CadcamInputError(f"features: expected {expected}, got {tuple(features.shape)}")

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        """Logits and every map of a batch of features (N, T, M, N′) (class docstring)."""
        self._check_shape(features)
        f = features.to(self._dtype())
        return self._rows(f, every_class=self.classes == "all").outputs(self.method, self.classes == "predicted")

    def closed_form_pass(self, features: Tensor, targets: object = None, svm_targets: object = None) -> RowPass:
        """The pass for chosen targets (``targets``/``svm_targets`` as :func:`explain` takes them; one
        class per image and block, whatever ``classes`` is): every method, the weights and the
        position gradients read off it. Raises on NaN/Inf features, as :func:`explain` does."""
        f = checked_features(features, self._dtype())
        self._check_shape(f)
        state = self._views()
        head: Head = state["head"]
        resolved = resolve_targets(targets, svm_targets, f.shape[0], head.num_outputs, self._svm_classes)
        cnn_index = None if resolved.cnn is None else resolved.cnn.to(f.device)
        svm_index = None
        if resolved.svm is not None:
            argument = "svm_targets" if svm_targets is not None else "targets"
            svm_index = state["svm"].class_index(resolved.svm, argument).to(f.device)
        rows = self._rows(f, every_class=False, cnn_index=cnn_index, svm_index=svm_index)
        return replace(rows, svm_classes=self._svm_classes)  # the labels (NumPy) outside the traced forward

    def explain(self, features: Tensor, targets: object = None, svm_targets: object = None) -> CAMResult:
        """:func:`~cadcam_numeric.engine.explain.explain` of this module's head, transform, classifier
        and method, for chosen ``targets``/``svm_targets``: a :class:`CAMResult` (one class per image)."""
        return self.closed_form_pass(features, targets, svm_targets).result(self.method)

    def position_gradients(
        self, features: Tensor, targets: object = None, svm_targets: object = None
    ) -> PositionGradients:
        """∂(explained)/∂F at every feature position for chosen targets (as :meth:`explain`)."""
        return self.closed_form_pass(features, targets, svm_targets).position_gradients()

    def _rows(
        self,
        f: Tensor,
        every_class: bool,
        cnn_index: Tensor | None = None,
        svm_index: Tensor | None = None,
    ) -> RowPass:
        """Forward through the head and pull every row back together (Eq. 13, 15): the class rows
        (``cnn_index``, default the prediction; every class when ``every_class``), the B PCA rows and
        the classifier rows (``svm_index``, default its prediction; every class when ``every_class``)."""
        state = self._views()
        head = state["head"]
        if isinstance(head, TokenHead):
            return self._token_rows(f, state, every_class, cnn_index, svm_index)
        x = head.flatten(f)
        fwd = forward_dense(x, head.layers)
        parts = head_rows(head, x, fwd, state, self.pca_after, every_class, cnn_index, svm_index, bottom=1)
        h1 = None if parts.rows is None else parts.rows * head.layers[0].fprime(fwd.deltas[0]).unsqueeze(-2)
        return RowPass(f, head, state["wbar"], h1, parts.input_rows, parts.counts, **parts.found)

    def _token_rows(
        self, f: Tensor, state: dict, every_class: bool, cnn_index: Tensor | None, svm_index: Tensor | None
    ) -> RowPass:
        """A transformer head's pass: rows at the pooled embedding e, then through the last block to
        A = LN₁(F); the patch tokens of A and of ∂(·)/∂A on their grid are the features and the position
        gradients (:mod:`cadcam_numeric.engine.tokens`)."""
        head: TokenHead = state["head"]
        fwd = head.forward(f)
        dense_fwd = forward_dense(fwd.embedding, head.dense.layers)
        parts = head_rows(
            head.dense, fwd.embedding, dense_fwd, state, self.pca_after, every_class, cnn_index, svm_index, 0
        )
        rows = torch.cat([r for r in (parts.rows, parts.input_rows) if r is not None], dim=1)
        gradients = head.patch_grid(head.pullback(rows, fwd))
        return RowPass(head.patch_grid(fwd.a), None, None, None, None, parts.counts, gradients=gradients, **parts.found)
