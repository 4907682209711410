# GENERATED FILE - DO NOT EDIT BY HAND.
# Written by `python -m derivations generate` from the catalogue in `derivations/`;
# `python -m derivations check` fails on any difference from a fresh generation.
# catalogue sha256: e41470594f6913da511ed570c99758b5d4c3220ac71aa71bc1b411fd40051cab
# generator: SymPy 1.14.0, formatted by ruff 0.17.6
"""Block Jacobians of the head (paper Eq. 17-23), each proved in `derivations.blocks`.

Every return expression below is printed by `derivations.codegen.matrix_printer` from the SymPy
matrix expression in `derivations.block_formulas` that the proof of its block holds.
Layout convention: J[..., out, in]. Row-vector stacks g (..., K, D_out) are pulled back
through a block by g @ J, which is how the engine composes the chain (Eq. 13, 15) right to
left without forming any D_0-wide Jacobian.

- dense layer with generic f: d q_l / d q_(l-1) = diag(f'(delta_l)) W_l  (2x3)

- pullback through a dense layer: g d q_l / d q_(l-1) = (g diag(f'(delta_l))) W_l

- PCA (plain) scores: p = V^T (q - u)

- PCA (whitened) scores: p = diag(lambda)^(-1/2) V^T (q - u)

- PCA (plain): d p / d q_l = V^T

- PCA (whitened): d p / d q_l = diag(lambda)^(-1/2) V^T
"""

import torch
from torch import Tensor

__all__ = [
    "dense_block_jacobian",
    "pca_block_jacobian",
    "pca_scores",
    "pullback_dense",
]


def dense_block_jacobian(fprime_delta: Tensor, weight: Tensor) -> Tensor:
    """d q_l / d q_(l-1) = diag(f'(delta_l)) W_l (Eq. 17-20): (..., D_l), (D_l, D_(l-1)) -> (..., D_l, D_(l-1))."""
    return fprime_delta.unsqueeze(-1) * weight


def pullback_dense(g: Tensor, fprime_delta: Tensor, weight: Tensor) -> Tensor:
    """g diag(f'(delta_l)) W_l: (..., K, D_l), (..., D_l), (D_l, D_(l-1)) -> (..., K, D_(l-1))."""
    return (g * fprime_delta.unsqueeze(-2)) @ weight


def pca_scores(
    q: Tensor, components: Tensor, mean: Tensor, explained_variance: Tensor | None = None
) -> Tensor:
    """p = V^T (q - u) (Eq. 5); whitened: divided by sqrt(lambda). (..., D), (B, D), (D,) -> (..., B)."""
    if explained_variance is not None:
        return ((q - mean) @ components.transpose(-1, -2)) * torch.rsqrt(explained_variance)
    return (q - mean) @ components.transpose(-1, -2)


def pca_block_jacobian(components: Tensor, explained_variance: Tensor | None = None) -> Tensor:
    """d p / d q_l = V^T (Eq. 23); whitened: diag(lambda)^(-1/2) V^T. -> (B, D)."""
    if explained_variance is not None:
        return torch.rsqrt(explained_variance).unsqueeze(-1) * components
    return components
