"""The rows of one pass at the dense head: class scores, PCA components, classifier scores.

Shared by CNN heads (rows pulled back to the first dense layer, Eq. 13, 15) and transformer heads
(rows pulled back to the pooled embedding e, then through the last block by
:class:`~cadcam_numeric.engine.tokens.TokenHead`). ``pca=None`` with a classifier: the classifier
reads the layer ``pca_after`` names directly (a linear probe on the pooled features).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from cadcam_numeric.engine.chain import HeadForward, pullback
from cadcam_numeric.engine.classifiers import ClassifierHead
from cadcam_numeric.engine.head import Head
from cadcam_numeric.engine.rows import head_output, output_pullback

__all__ = ["HeadRows", "head_rows"]


@dataclass(frozen=True)
class HeadRows:
    """``rows``: rows at dense layer ``bottom`` (N, R, D_bottom) or None; ``input_rows``: rows that
    start at x (N, R₀, D₀) — the transform or classifier on x (``pca_after=0``); ``counts`` and
    ``found`` (logits, predictions, scores) for :class:`~cadcam_numeric.engine.row_pass.RowPass`."""

    rows: Tensor | None
    input_rows: Tensor | None
    counts: dict[str, int] = field(default_factory=dict)
    found: dict[str, Tensor | None] = field(default_factory=dict)


def _class_rows(head: Head, fwd: HeadForward, every_class: bool, cnn_index: Tensor | None, bottom: int):
    last = fwd.outputs[-1]
    n = last.shape[0]
    logits = head_output(head, last)
    prediction = logits.argmax(dim=1)
    eye = torch.eye(head.num_outputs, dtype=last.dtype, device=last.device)
    index = prediction if cnn_index is None else cnn_index
    at_y = eye.expand(n, -1, -1) if every_class else eye[index].unsqueeze(1)
    rows = pullback(output_pullback(head, at_y, last), head.layers, fwd, len(head.layers), bottom=bottom)
    found = dict(logits=logits, cnn_prediction=prediction, cnn_index=None if every_class else index)
    return rows, at_y.shape[1], found


def head_rows(
    head: Head,
    x: Tensor,
    fwd: HeadForward,
    state: dict,
    pca_after: int | None,
    every_class: bool,
    cnn_index: Tensor | None,
    svm_index: Tensor | None,
    bottom: int,
) -> HeadRows:
    """Every row of the pass (module docstring), pulled back to dense layer ``bottom`` (0: x)."""
    rows, counts, found = [], {}, {}
    if head.has_class_output:
        class_rows, counts["class"], found = _class_rows(head, fwd, every_class, cnn_index, bottom)
        rows.append(class_rows)
    input_rows = None
    layer, svm = state["pca"], state["svm"]
    if layer is not None or svm is not None:
        n, dtype, device = x.shape[0], x.dtype, x.device
        q = fwd.outputs[pca_after - 1] if pca_after else x
        scores = q if layer is None else layer.scores(q)
        at_p = []
        if layer is not None:
            b = layer.n_components
            at_p.append(torch.eye(b, dtype=dtype, device=device).expand(n, b, b))
            counts["pca"], found["pca_scores"] = b, scores
        if svm is not None:
            svm: ClassifierHead
            svm_scores, predicted, grads = svm.scores_index_gradients(scores)  # grads (N, C_svm, B)
            index = predicted if svm_index is None else svm_index
            b = grads.shape[-1]
            at_p.append(grads if every_class else grads.gather(1, index[:, None, None].expand(n, 1, b)))
            counts["svm"] = at_p[-1].shape[1]
            found.update(svm_scores=svm_scores, svm_prediction=predicted, svm_index=None if every_class else index)
        stacked = torch.cat(at_p, dim=1)
        at_l = stacked if layer is None else layer.pullback(stacked, q)  # rows at q_l (or at x)
        if pca_after:
            rows.append(pullback(at_l, head.layers, fwd, pca_after, bottom=bottom))
        else:  # the rows are already ∂(·)/∂x
            input_rows = at_l
    return HeadRows(torch.cat(rows, dim=1) if rows else None, input_rows, counts, found)
