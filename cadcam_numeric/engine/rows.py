"""The pieces of a closed-form pass that ``ClosedForm`` assembles: the head's output y, rows pulled
back through its final softmax, the transform on the layer ``pca_after`` names, and rows turned
into channel weights and position gradients.

A *row* is one explained quantity — a class score y_c, a PCA score p_b, a classifier score a_c —
as its gradient at the first dense layer, h₁ = ∂(·)/∂q₁ · diag(f′(δ₁)) (N, R, D₁), or, for rows
that start below it (a transform on the pooled features, ``pca_after=0``), at x (N, R, D₀).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cadcam_numeric.engine.chain import DenseLayer, HeadForward, PCALayer
from cadcam_numeric.engine.head import Head
from cadcam_numeric.engine.pca import pca_layer_from_sklearn
from cadcam_numeric.engine.transform import TransformLayer
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated.blocks import pullback_log_softmax, pullback_softmax

__all__ = ["head_output", "named_layer", "output_pullback", "pca_on", "row_channel_weights", "row_position_gradients"]


def head_output(head: Head, last: Tensor) -> Tensor:
    """y (N, C): the last dense layer's output ``last``, through the head's final softmax / log-softmax if any."""
    if head.output == "softmax":
        return torch.softmax(last, dim=-1)
    if head.output == "log_softmax":
        return torch.log_softmax(last, dim=-1)
    return last


def output_pullback(head: Head, rows: Tensor, last: Tensor) -> Tensor:
    """Rows (N, R, C) at y pulled back to q_L through the final softmax / log-softmax (generated blocks)."""
    if head.output == "softmax":
        return pullback_softmax(rows, torch.softmax(last, dim=-1))
    if head.output == "log_softmax":
        return pullback_log_softmax(rows, torch.softmax(last, dim=-1))
    return rows


def row_channel_weights(head: Head, wbar: Tensor | None, h1: Tensor | None, input_rows: Tensor | None) -> Tensor:
    """w^t = Σ_i ∂(·)/∂F_i^t for every row (N, R, T), Eq. 9, 10, 14: h₁ W̄₁ for rows through the
    first dense layer (``wbar`` = W̄₁ (D₁, T)), the pooled position sum for rows that start at x."""
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


def named_layer(pca_after: object, x: Tensor, fwd: HeadForward, depth: int) -> Tensor:
    """What ``pca_after`` names — x itself (0) or dense layer l's output q_l (1..depth) —, checked."""
    if pca_after is None or isinstance(pca_after, bool) or not isinstance(pca_after, int):
        raise CadcamInputError(f"pca_after: expected an integer in 0..{depth}, got {pca_after!r}")
    if not 0 <= pca_after <= depth:
        raise CadcamInputError(
            f"pca_after: expected 0 (PCA on the pooled features x) or the 1-based index of a dense layer "
            f"in 1..{depth}, got {pca_after}"
        )
    return fwd.outputs[pca_after - 1] if pca_after else x


def pca_on(
    pca: object, pca_after: object, x: Tensor, fwd: HeadForward, layers: list[DenseLayer]
) -> tuple[PCALayer | TransformLayer, Tensor, Tensor]:
    """The PCA layer on what ``pca_after`` names — x itself (0) or dense layer l's output —, what it
    reads (q_l) and its scores p = Vᵀ(q_l − u) (Eq. 5); ``pca_after`` and the widths are checked."""
    q = named_layer(pca_after, x, fwd, len(layers))
    reads = "dense layer pca_after" if pca_after else "the pooled features x (pca_after=0)"
    layer = pca_layer_from_sklearn(pca, int(q.shape[1]), x, reads)
    return layer, q, layer.scores(q)
