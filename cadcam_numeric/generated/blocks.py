# GENERATED FILE - DO NOT EDIT BY HAND.
# Written by `python -m derivations generate` from the catalogue in `derivations/`;
# `python -m derivations check` fails on any difference from a fresh generation.
# catalogue sha256: 341fec101652ec99f8e89a22923090adaebecb627aab4b85ede7352e710b3813
# generator: SymPy 1.14.0, formatted by ruff 0.17.6
"""Block Jacobians of the head (paper Eq. 17-23), each proved in `derivations.blocks`.

Layout convention: J[..., out, in]. Row-vector stacks g (..., K, D_out) are pulled back
through a block by g @ J, which is how the engine composes the chain (Eq. 13, 15) right to
left without forming any D_0-wide Jacobian.

- dense layer with generic f: d q_l / d q_(l-1) = diag(f'(delta_l)) W_l  (2x3)

- flatten -> first dense, channel-major (PyTorch NCHW): d q_1 / d x^t = diag(f'(delta_1)) W_1^t

- flatten -> first dense, channels-last (Keras): d q_1 / d x^t = diag(f'(delta_1)) W_1^t

- position-summed first layer: sum_i d q_1 / d x_i^t = diag(f'(delta_1)) Wbar_1[:, t]

- PCA (plain): d p / d q_l = V^T

- PCA (whitened): d p / d q_l = diag(lambda)^(-1/2) V^T
"""

import torch
from torch import Tensor

__all__ = [
    "dense_block_jacobian",
    "first_layer_channel_blocks",
    "pca_block_jacobian",
    "pca_scores",
    "position_summed_first_layer",
    "pullback_dense",
]


def dense_block_jacobian(fprime_delta: Tensor, weight: Tensor) -> Tensor:
    """d q_l / d q_(l-1) = diag(f'(delta_l)) W_l (Eq. 17-20): (..., D_l), (D_l, D_(l-1)) -> (..., D_l, D_(l-1))."""
    return fprime_delta.unsqueeze(-1) * weight


def pullback_dense(g: Tensor, fprime_delta: Tensor, weight: Tensor) -> Tensor:
    """g diag(f'(delta_l)) W_l: (..., K, D_l), (..., D_l), (D_l, D_(l-1)) -> (..., K, D_(l-1))."""
    return (g * fprime_delta.unsqueeze(-2)) @ weight


def first_layer_channel_blocks(
    weight: Tensor, channels: int, positions: int, channels_last: bool = False
) -> Tensor:
    """The column blocks W_1^t of the first dense layer (Eq. 21): (D_1, T*MN) -> (T, D_1, MN).

    Channel-major (PyTorch NCHW flatten): W_1^t = W_1[:, t*MN:(t+1)*MN].
    Channels-last (Keras NHWC flatten):   W_1^t = W_1[:, t::T].
    """
    d1 = weight.shape[0]
    if channels_last:
        return weight.reshape(d1, positions, channels).permute(2, 0, 1)
    return weight.reshape(d1, channels, positions).permute(1, 0, 2)


def position_summed_first_layer(
    weight: Tensor, channels: int, positions: int, channels_last: bool = False
) -> Tensor:
    """Wbar_1 = [W_1^1 1, ..., W_1^T 1] (derivations/NOTES.md section 3): (D_1, T*MN) -> (D_1, T).

    Independent of the image: compute once per head. Then sum_i d y / d x_i^t = (J Wbar_1)[:, t].
    """
    return (
        first_layer_channel_blocks(weight, channels, positions, channels_last)
        .sum(-1)
        .transpose(0, 1)
    )


def pca_scores(
    q: Tensor, components: Tensor, mean: Tensor, explained_variance: Tensor | None = None
) -> Tensor:
    """p = V^T (q - u) (Eq. 5); whitened: divided by sqrt(lambda). (..., D), (B, D), (D,) -> (..., B)."""
    p = (q - mean) @ components.transpose(-1, -2)
    if explained_variance is not None:
        p = p / torch.sqrt(explained_variance)
    return p


def pca_block_jacobian(components: Tensor, explained_variance: Tensor | None = None) -> Tensor:
    """d p / d q_l = V^T (Eq. 23); whitened: diag(lambda)^(-1/2) V^T. -> (B, D)."""
    if explained_variance is not None:
        return components / torch.sqrt(explained_variance).unsqueeze(-1)
    return components
