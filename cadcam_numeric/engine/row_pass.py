"""One closed-form pass over a batch, its rows addressed by name.

The pass stacks R rows — ``"class"`` (the CNN's class scores explained), ``"pca"`` (the B components),
``"svm"`` (the classifier's class scores explained) — and pulls them back together, once. Every map
method, the channel weights and the position gradients are read off the same rows:
:meth:`RowPass.result` gives a :class:`~cadcam_numeric.engine.results.CAMResult` per method,
:meth:`RowPass.outputs` the dict of :class:`~cadcam_numeric.engine.closed_form.ClosedForm`'s forward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
from torch import Tensor

from cadcam_numeric.engine.head import Head
from cadcam_numeric.engine.map_methods import signed_maps
from cadcam_numeric.engine.results import CAMResult, PositionGradients
from cadcam_numeric.engine.rows import row_channel_weights, row_position_gradients

__all__ = ["ROW_BLOCKS", "RowPass", "row_slices"]

#: the blocks of rows of a pass, in their order
ROW_BLOCKS = ("class", "pca", "svm")


def row_slices(counts: Mapping[str, int]) -> dict[str, slice]:
    """Where each block's rows lie: ``{"class": 1, "pca": 3}`` -> ``{"class": slice(0, 1), "pca": slice(1, 4)}``.

    >>> row_slices({"class": 1, "pca": 3})
    {'class': slice(0, 1, None), 'pca': slice(1, 4, None)}
    """
    out, start = {}, 0
    for name in ROW_BLOCKS:
        if name in counts:
            out[name] = slice(start, start + counts[name])
            start += counts[name]
    return out


def _labels(classes: np.ndarray, index: Tensor, device: torch.device) -> Tensor | np.ndarray:
    """The classifier's labels at ``index``: a tensor when they are integers, else a NumPy array."""
    labels = classes[index.cpu().numpy()]
    if np.issubdtype(labels.dtype, np.integer):
        return torch.as_tensor(labels).to(device)
    return labels


@dataclass(frozen=True)
class RowPass:
    """The rows of one pass and what the forward computed on the way.

    ``h1`` (N, R₁, D₁): the rows through the first dense layer; ``input_rows`` (N, R₀, D₀): rows that
    start at x (a transform with ``pca_after=0``); ``counts``: rows per block (:data:`ROW_BLOCKS`),
    h₁'s first, then ``input_rows``'. ``cnn_index``/``svm_index`` (N,) or None: the class explained
    per image; None when every class is (``classes="all"``). ``svm_prediction``: positions in
    ``svm_classes``.
    """

    features: Tensor
    head: Head | None
    wbar: Tensor | None
    h1: Tensor | None
    input_rows: Tensor | None
    counts: dict[str, int]
    logits: Tensor | None = None
    cnn_prediction: Tensor | None = None
    cnn_index: Tensor | None = None
    pca_scores: Tensor | None = None
    svm_scores: Tensor | None = None
    svm_prediction: Tensor | None = None
    svm_index: Tensor | None = None
    svm_classes: np.ndarray | None = field(default=None, compare=False)
    #: the position gradients when the pass formed them itself (a transformer head): (N, R, T, M, N′)
    gradients: Tensor | None = None

    def channel_weights(self) -> Tensor:
        """w^t = Σ_i ∂(·)/∂F_i^t of every row (N, R, T), Eq. 9, 10, 14."""
        if self.gradients is not None:
            return self.gradients.sum(dim=(-2, -1))
        return row_channel_weights(self.head, self.wbar, self.h1, self.input_rows)

    def row_gradients(self) -> Tensor:
        """∂(·)/∂F at every position for every row, (N, R, T, M, N′)."""
        if self.gradients is not None:
            return self.gradients
        return row_position_gradients(self.head, self.features, self.h1, self.input_rows)

    def outputs(
        self,
        method: str,
        one_per_block: bool,
        weights: Tensor | None = None,
        gradients: Callable[[], Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """The forward's dict (``ClosedForm``'s keys, in order, ``"finite"`` last: the features and
        every signed map of the image finite): maps by
        ``method``; ``one_per_block`` when the class and classifier blocks hold one row each.
        ``weights`` and ``gradients``: this pass's :meth:`channel_weights` and :meth:`row_gradients`,
        when already formed (shared between methods)."""
        weights = self.channel_weights() if weights is None else weights
        signed = signed_maps(method, self.features, weights, gradients or self.row_gradients)
        at = row_slices(self.counts)

        def block(t: Tensor, name: str) -> Tensor:
            return t[:, at[name].start] if one_per_block else t[:, at[name]]

        out: dict[str, Tensor] = {}
        if "class" in at:
            out.update(
                logits=self.logits,
                cnn_prediction=self.cnn_prediction,
                gradcam=torch.relu(block(signed, "class")),
                class_weights=block(weights, "class"),
            )
        if "pca" in at:
            out.update(
                pca_scores=self.pca_scores,
                pca_positive=torch.relu(signed[:, at["pca"]]),
                pca_negative=torch.relu(-signed[:, at["pca"]]),
                pca_weights=weights[:, at["pca"]],
            )
        if "svm" in at:
            out.update(
                svm_scores=self.svm_scores,
                svm_prediction=self.svm_prediction,
                svm=torch.relu(block(signed, "svm")),
                svm_weights=block(weights, "svm"),
            )
        # F enters every row's signed map at every position times a finite factor (inf·w = ±inf,
        # inf·0 = NaN = NaN·w), so a non-finite feature makes the map non-finite there; the maps are
        # (N, R, M, N'), far fewer values to test than the features
        out["finite"] = torch.isfinite(signed).flatten(1).all(dim=1)
        return out

    def result(self, method: str) -> CAMResult:
        """The :class:`CAMResult` of ``method`` (one explained class per image and block)."""
        return self.results((method,))[method]

    def results(self, methods: tuple[str, ...], gradients: Callable[[], Tensor] | None = None) -> dict[str, CAMResult]:
        """A :class:`CAMResult` per method, from this one pass: the weights formed once, the position
        gradients at most once (``gradients``: a shared ``functools.cache(rows.row_gradients)``)."""
        weights, gradients = self.channel_weights(), gradients or cache(self.row_gradients)
        return {m: self._result(m, self.outputs(m, True, weights, gradients)) for m in methods}

    def _result(self, method: str, o: dict[str, Tensor]) -> CAMResult:
        device = self.features.device
        svm = {}
        if "svm_scores" in o:
            svm = dict(
                svm=o["svm"],
                svm_weights=o["svm_weights"],
                svm_prediction=_labels(self.svm_classes, self.svm_prediction, device),
                svm_target=_labels(self.svm_classes, self.svm_index, device),
                svm_scores=o["svm_scores"],
            )
        pca = {k: o[k] for k in ("pca_positive", "pca_negative", "pca_weights", "pca_scores") if k in o}
        return CAMResult(
            gradcam=o.get("gradcam"),
            class_weights=o.get("class_weights"),
            cnn_prediction=o.get("cnn_prediction"),
            cnn_target=self.cnn_index if "gradcam" in o else None,
            logits=o.get("logits"),
            method=method,
            **pca,
            **svm,
        )

    def position_gradients(self, gradients: Callable[[], Tensor] | None = None) -> PositionGradients:
        """∂(explained)/∂F per block: the class row, the B PCA rows, the classifier row
        (``gradients`` as in :meth:`results`)."""
        grad = (gradients or self.row_gradients)()
        at = row_slices(self.counts)
        return PositionGradients(
            grad[:, at["class"].start] if "class" in at else None,
            grad[:, at["pca"]] if "pca" in at else None,
            grad[:, at["svm"].start] if "svm" in at else None,
            self.features,
            self.cnn_index if "class" in at else None,
            self.svm_index if "svm" in at else None,
        )
