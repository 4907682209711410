"""Which columns of the first dense layer meet which channel (Eq. 21): index bookkeeping, not a
derivative, so it is written here rather than generated. The identity it serves,
Σ_i ∂q₁/∂x_i^t = diag(f′(δ₁)) W̄₁[:, t], is proved in ``derivations.blocks.prove_position_sum`` for
both layouts, and the engine's weights that use it are held against autograd in the tests.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["first_layer_channel_blocks", "position_summed_first_layer"]


def first_layer_channel_blocks(weight: Tensor, channels: int, positions: int, channels_last: bool = False) -> Tensor:
    """The column blocks W₁^t of the first dense layer: (D₁, T·MN) → (T, D₁, MN).

    Channel-major (PyTorch NCHW flatten): W₁^t = W₁[:, t·MN:(t+1)·MN].
    Channels-last (Keras NHWC flatten):   W₁^t = W₁[:, t::T].
    """
    d1 = weight.shape[0]
    if channels_last:
        return weight.reshape(d1, positions, channels).permute(2, 0, 1)
    return weight.reshape(d1, channels, positions).permute(1, 0, 2)


def position_summed_first_layer(weight: Tensor, channels: int, positions: int, channels_last: bool = False) -> Tensor:
    """W̄₁ = [W₁^1 1, …, W₁^T 1] (NOTES.md §3): (D₁, T·MN) → (D₁, T), independent of the image."""
    return first_layer_channel_blocks(weight, channels, positions, channels_last).sum(-1).transpose(0, 1)
