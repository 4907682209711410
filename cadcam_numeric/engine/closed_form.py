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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode, KernelCode
from cadcam_numeric.engine.chain import forward_dense, pullback
from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.explain import (
    METHODS,
    CAMResult,
    explain,
    head_output,
    output_pullback,
    pca_on,
    row_channel_weights,
    row_position_gradients,
    signed_maps,
)
from cadcam_numeric.engine.head import Head, flatten_modules, parse_head
from cadcam_numeric.engine.pooling import Pooling
from cadcam_numeric.errors import CadcamInputError

__all__ = ["ClosedForm"]

Classes = Literal["predicted", "all"]


@dataclass(frozen=True)
class _Held:
    """In the template: the name of the buffer that holds this tensor."""

    name: str


def _map_leaves(obj: object, leaf: Callable[[str, object], object], name: str, kind: type) -> object:
    """``obj`` (dataclasses, lists, tuples, dicts) with every value ``v`` of type ``kind`` at path
    ``name`` replaced by ``leaf(name, v)``; every other value kept. Paths join field names with ``__``."""
    if isinstance(obj, kind):
        return leaf(name, obj)
    if isinstance(obj, Pooling | nn.Module | str | ActivationCode | KernelCode) or obj is None:
        return obj  # code and fixed structure: no tensors of the state in them
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return obj
    if is_dataclass(obj) and not isinstance(obj, type):
        return replace(
            obj,
            **{
                f.name: _map_leaves(getattr(obj, f.name), leaf, f"{name}__{f.name}", kind)
                for f in fields(obj)
                if f.init
            },
        )
    if isinstance(obj, list | tuple):
        return type(obj)(_map_leaves(v, leaf, f"{name}__{i}", kind) for i, v in enumerate(obj))
    if isinstance(obj, dict):
        return {k: _map_leaves(v, leaf, f"{name}__{k}", kind) for k, v in obj.items()}
    return obj


def _expected_shape(
    head: nn.Module, feature_shape: tuple[int, int, int] | None, pca: object | None
) -> tuple[int, int, int]:
    """(T, M, N') of the features: given, or read from a head whose pooling fixes its output size
    (``AdaptiveAvgPool2d(k)``/``AdaptiveMaxPool2d(k)``: T = D₀ / k², any M, N′ ≥ k), with D₀ the first
    Linear's ``in_features`` (or, for a head without one, the width the PCA was fitted on)."""
    if feature_shape is not None:
        if len(feature_shape) != 3 or not all(isinstance(v, int) and v > 0 for v in feature_shape):
            raise CadcamInputError(f"feature_shape: expected (T, M, N') positive integers, got {feature_shape!r}")
        return tuple(feature_shape)
    modules = flatten_modules(head) if isinstance(head, nn.Sequential) else []
    pool = modules[0] if modules and isinstance(modules[0], nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) else None
    linear = next((m for m in modules if isinstance(m, nn.Linear)), None)
    width = linear.in_features if linear is not None else getattr(pca, "n_features_in_", None)
    size = pool.output_size if pool is not None else None
    size = (size, size) if isinstance(size, int) else size
    if pool is None or not isinstance(width, int) or size is None or None in size or width % (size[0] * size[1]):
        raise CadcamInputError(
            "feature_shape: this head's pooling does not fix the size of what it flattens; pass "
            "feature_shape=(T, M, N') of the feature maps"
        )
    return width // (size[0] * size[1]), size[0], size[1]


class ClosedForm(nn.Module):
    """Grad-CAM, PCA-Grad-CAM ± and SVM-Grad-CAM of a head as one module (module docstring).

    Args:
        head, pca, pca_after, svm, method, channels_last, custom_activations: as :func:`explain`.
        classes: ``"predicted"`` (one class map per image: the CNN's and the classifier's prediction)
            or ``"all"`` (one per class: ``"gradcam"`` (N, C, M, N′), ``"svm"`` (N, C_svm, M, N′)).
        dtype: the dtype of every buffer and of the computation (float32 or float64).
        feature_shape: (T, M, N′) of the features; needed only when the head's pooling does not fix
            the size of what it flattens (no pooling, or a fixed-window pool).

    ``cf(features)`` returns a dict of tensors, keys in this order where they apply: ``logits``,
    ``cnn_prediction``, ``gradcam``, ``class_weights``; ``pca_scores``, ``pca_positive``,
    ``pca_negative``, ``pca_weights``; ``svm_scores``, ``svm_prediction`` (int64 index into
    :attr:`svm_classes`), ``svm``, ``svm_weights``; ``finite`` (N,) bool.
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
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise CadcamInputError(f"method: expected one of {METHODS}, got {method!r}")
        if classes not in ("predicted", "all"):
            raise CadcamInputError(f"classes: expected 'predicted' or 'all', got {classes!r}")
        if dtype not in (torch.float32, torch.float64):
            raise CadcamInputError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        if svm is not None and pca is None:
            raise CadcamInputError("svm: the SVM consumes PCA scores; pass pca (and pca_after) too")
        self.feature_shape = _expected_shape(head, feature_shape, pca)
        #: an adaptive pool's output size is fixed: any M, N' (≥ its size) is accepted, only T is checked
        self.any_spatial_size = feature_shape is None
        probe = torch.zeros(1, *self.feature_shape, dtype=dtype)
        parsed = parse_head(head, probe, channels_last=channels_last, custom_activations=custom_activations)
        if not parsed.has_class_output and pca is None:
            raise CadcamInputError(
                "head: has no Linear layer, so no class output to explain; pass pca (with pca_after=0) and an svm"
            )
        pca_layer = classifier = None
        if pca is not None:
            x = parsed.flatten(probe)
            pca_layer, _, _ = pca_on(pca, pca_after, x, forward_dense(x, parsed.layers), parsed.layers)
        if svm is not None:
            classifier = parse_svm(svm, probe)
            if classifier.n_features != pca_layer.n_components:
                raise CadcamInputError(
                    f"svm: fitted on {classifier.n_features} features, but the PCA gives B = {pca_layer.n_components}"
                )
        self.method, self.classes, self.pca_after = method, classes, pca_after
        # the objects as given, for :meth:`explain` (a tuple, so no module or tensor of them is registered)
        self._given = (head, pca, svm, channels_last, custom_activations)
        wbar = parsed.position_summed_weights() if parsed.has_class_output else None
        state = {"head": parsed, "wbar": wbar, "pca": pca_layer, "svm": classifier}
        # labels (NumPy, often strings) become tuples: the forward only counts them, and a compiler
        # need not trace NumPy
        self._svm_classes = None if classifier is None else np.asarray(classifier.classes)
        state = _map_leaves(state, lambda _, labels: tuple(labels.tolist()), "cf", np.ndarray)
        self._template = _map_leaves(state, self._hold, "cf", Tensor)

    def _hold(self, name: str, tensor: Tensor) -> _Held:
        """Register ``tensor`` as a buffer; the template keeps its name."""
        self.register_buffer(name, tensor.detach().clone())
        return _Held(name)

    def _views(self) -> dict:
        """The head, W̄₁, transform and classifier over the module's current buffers (so after
        ``.to()`` or ``load_state_dict()`` too)."""
        return _map_leaves(self._template, lambda _, held: getattr(self, held.name), "cf", _Held)

    def explain(self, features: Tensor, targets: object = None, svm_targets: object = None) -> CAMResult:
        """:func:`~cadcam_numeric.engine.explain.explain` of this module's head, transform, classifier
        and method, for chosen ``targets``/``svm_targets`` (its arguments): a :class:`CAMResult`,
        computed by ``explain()`` itself from the objects given at construction, in this module's
        dtype. The forward pass is the exportable path; this one raises on NaN, as ``explain`` does."""
        head, pca, svm, channels_last, custom = self._given
        dtype = next(b for b in self.buffers() if b.is_floating_point()).dtype
        return explain(
            features, head, pca, self.pca_after, svm, targets, svm_targets,
            method=self.method, channels_last=channels_last, dtype=dtype, custom_activations=custom,
        )  # fmt: skip

    @property
    def svm_classes(self) -> np.ndarray | None:
        """The classifier's labels; ``"svm_prediction"`` indexes them. None without a classifier."""
        return self._svm_classes

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        """Logits and every map of a batch of features (N, T, M, N′) (class docstring)."""
        state = self._views()
        head: Head = state["head"]
        fixed = self.feature_shape[: 1 if self.any_spatial_size else 3]
        if features.dim() != 4 or tuple(features.shape[1 : 1 + len(fixed)]) != fixed:
            expected = f"(N, {fixed[0]}, M, N')" if self.any_spatial_size else f"(N, {', '.join(map(str, fixed))})"
            raise CadcamInputError(f"features: expected {expected}, got {tuple(features.shape)}")
        dtype = next(b for b in self.buffers() if b.is_floating_point()).dtype  # every buffer's, after .to()
        f = features.to(dtype)
        finite = torch.isfinite(f).flatten(1).all(dim=1)
        n = f.shape[0]
        x = head.flatten(f)
        fwd = forward_dense(x, head.layers)
        out: dict[str, Tensor] = {}
        rows, counts = [], {}
        if head.has_class_output:
            last = fwd.outputs[-1]
            logits = head_output(head, last)
            prediction = logits.argmax(dim=1)
            eye = torch.eye(head.num_outputs, dtype=dtype, device=f.device)
            at_y = eye[prediction].unsqueeze(1) if self.classes == "predicted" else eye.expand(n, -1, -1)
            rows.append(pullback(output_pullback(head, at_y, last), head.layers, fwd, len(head.layers), bottom=1))
            counts["class"] = at_y.shape[1]
            out.update(logits=logits, cnn_prediction=prediction)
        input_rows = None
        svm_scores = svm_prediction = None
        if state["pca"] is not None:
            layer = state["pca"]
            q = fwd.outputs[self.pca_after - 1] if self.pca_after else x
            scores = layer.scores(q)
            b = layer.n_components
            at_p = [torch.eye(b, dtype=dtype, device=f.device).expand(n, b, b)]
            counts["pca"] = b
            if state["svm"] is not None:
                svm = state["svm"]
                svm_scores, svm_prediction = svm.class_scores(scores), svm.predicted_index(scores)
                grads = svm.class_score_gradients(scores)  # (N, C_svm, B)
                picked = grads.gather(1, svm_prediction[:, None, None].expand(n, 1, b))
                at_p.append(picked if self.classes == "predicted" else grads)
                counts["svm"] = at_p[-1].shape[1]
            at_l = layer.pullback(torch.cat(at_p, dim=1), q)
            if self.pca_after:
                rows.append(pullback(at_l, head.layers, fwd, self.pca_after, bottom=1))
            else:
                input_rows = at_l
            out["pca_scores"] = scores
        h1 = torch.cat(rows, dim=1) * head.layers[0].fprime(fwd.deltas[0]).unsqueeze(-2) if rows else None
        weights = row_channel_weights(head, state["wbar"], h1, input_rows)  # with the buffer W̄₁
        signed = signed_maps(self.method, f, weights, lambda: row_position_gradients(head, f, h1, input_rows))
        return self._outputs(out, counts, weights, signed, svm_scores, svm_prediction, finite)

    def _outputs(
        self,
        out: dict[str, Tensor],
        counts: dict[str, int],
        weights: Tensor,
        signed: Tensor,
        svm_scores: Tensor | None,
        svm_prediction: Tensor | None,
        finite: Tensor,
    ) -> dict[str, Tensor]:
        """The rows of the pass addressed by name: class rows, then B PCA rows, then classifier rows."""
        start, ordered = 0, {}
        one = self.classes == "predicted"
        if "class" in counts:
            end = start + counts["class"]
            ordered.update(
                logits=out["logits"],
                cnn_prediction=out["cnn_prediction"],
                gradcam=torch.relu(signed[:, start] if one else signed[:, start:end]),
                class_weights=weights[:, start] if one else weights[:, start:end],
            )
            start = end
        if "pca" in counts:
            end = start + counts["pca"]
            ordered.update(
                pca_scores=out["pca_scores"],
                pca_positive=torch.relu(signed[:, start:end]),
                pca_negative=torch.relu(-signed[:, start:end]),
                pca_weights=weights[:, start:end],
            )
            start = end
        if "svm" in counts:
            end = start + counts["svm"]
            ordered.update(
                svm_scores=svm_scores,
                svm_prediction=svm_prediction,
                svm=torch.relu(signed[:, start] if one else signed[:, start:end]),
                svm_weights=weights[:, start] if one else weights[:, start:end],
            )
        ordered["finite"] = finite
        return ordered
