# GENERATED FILE - DO NOT EDIT BY HAND.
# Written by `python -m derivations generate` from the catalogue in `derivations/`
# and the template derivations/codegen/templates/blocks.py.j2;
# `python -m derivations check` fails on any difference from a fresh generation.
# catalogue sha256: c9f43f59232ee47cfc1994e1f95fcdaaccf404d7c06a6bfa8dc14312e6b5adc5
# generator: SymPy 1.14.0, formatted by ruff 0.17.6
"""Block Jacobians of the head (paper Eq. 17-23, and a vision transformer's last block), each proved
in `derivations.blocks` or `derivations.transformer_blocks`.

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

- softmax output: g d s / d delta = g diag(s) - (g s) s^T

- log-softmax output: g d log s / d delta = g - (g 1) s^T

- l2 normaliser: g d n / d x = (g - (g n) n^T) / |x|, n = x / |x|

- calibrated probabilities pi = u / sum(u): g d pi / d u = (g - (g pi) 1^T) / sum(u)

- isotonic calibration: a segment meets its thresholds; its d/df = (y_hi - y_lo)/(x_hi - x_lo)

- layer norm: g d y / d x = (h - (h 1) 1^T / D - (h xhat) xhat^T / D) / sigma, h = g diag(gamma)

- layer scale: g d (gamma * x) / d x = g diag(gamma)

- attention head O = softmax_rows(c Q K^T) V: d<G,O>/dV = P^T G, d/dQ = c G_S K, d/dK = c G_S^T Q, G_S = each row of G V^T through its softmax
"""

import torch
from torch import Tensor

__all__ = [
    "dense_block_jacobian",
    "interpolation_slope",
    "pca_block_jacobian",
    "pca_scores",
    "pullback_attention_keys",
    "pullback_attention_probabilities",
    "pullback_attention_queries",
    "pullback_attention_values",
    "pullback_dense",
    "pullback_l2_normalize",
    "pullback_layer_norm",
    "pullback_layer_scale",
    "pullback_log_softmax",
    "pullback_softmax",
    "pullback_sum_normalize",
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


def pullback_softmax(g: Tensor, s: Tensor) -> Tensor:
    """g d s / d delta = g diag(s) - (g s) s^T for s = softmax(delta): (..., K, C), (..., C) -> (..., K, C)."""
    return (g * s.unsqueeze(-2)) - (g @ s.unsqueeze(-1)) * s.unsqueeze(-2)


def pullback_log_softmax(g: Tensor, s: Tensor) -> Tensor:
    """g d log s / d delta = g - (g 1) s^T for s = softmax(delta): (..., K, C), (..., C) -> (..., K, C)."""
    return g - g.sum(-1, keepdim=True) * s.unsqueeze(-2)


def pullback_l2_normalize(g: Tensor, n: Tensor, norm: Tensor) -> Tensor:
    """g d n / d x = (g - (g n) n^T) / |x| for n = x / |x|: (..., K, D), (..., D), (...) -> (..., K, D)."""
    return (g - (g @ n.unsqueeze(-1)) * n.unsqueeze(-2)) / norm[..., None, None]


def pullback_sum_normalize(g: Tensor, proba: Tensor, total: Tensor) -> Tensor:
    """g d pi / d u = (g - (g pi) 1^T) / S for pi = u / S, S = sum(u): (..., K, C), (..., C), (...) -> (..., K, C)."""
    return (g - (g @ proba.unsqueeze(-1))) / total[..., None, None]


def pullback_layer_norm(
    g: Tensor, gamma: Tensor, xhat: Tensor, sigma: Tensor, width: int
) -> Tensor:
    """g d y / d x for y = gamma * xhat + beta, xhat = (x - mean) / sigma (LayerNorm over the last D):
    (..., K, D), (D,), (..., D), (...), D -> (..., K, D)."""
    return (
        (g * gamma.unsqueeze(-2))
        - (g * gamma.unsqueeze(-2)).sum(-1, keepdim=True) / width
        - ((g * gamma.unsqueeze(-2)) @ xhat.unsqueeze(-1)) * xhat.unsqueeze(-2) / width
    ) / sigma[..., None, None]


def pullback_layer_scale(g: Tensor, gamma: Tensor) -> Tensor:
    """g diag(gamma) (LayerScale): (..., K, D), (D,) -> (..., K, D)."""
    return g * gamma.unsqueeze(-2)


def pullback_attention_values(probs: Tensor, g_out: Tensor) -> Tensor:
    """d<G, P V>/dV = P^T G for one head: (..., T, T), (..., T, d) -> (..., T, d)."""
    return probs.transpose(-1, -2) @ g_out


def pullback_attention_probabilities(g_out: Tensor, values: Tensor) -> Tensor:
    """d<G, P V>/dP = G V^T for one head: (..., T, d), (..., T, d) -> (..., T, T)."""
    return g_out @ values.transpose(-1, -2)


def pullback_attention_queries(g_scores: Tensor, keys: Tensor, scale: float) -> Tensor:
    """d<G_S, c Q K^T>/dQ = c G_S K: (..., T, T), (..., T, d), c -> (..., T, d)."""
    return scale * (g_scores @ keys)


def pullback_attention_keys(g_scores: Tensor, queries: Tensor, scale: float) -> Tensor:
    """d<G_S, c Q K^T>/dK = c G_S^T Q: (..., T, T), (..., T, d), c -> (..., T, d)."""
    return scale * (g_scores.transpose(-1, -2) @ queries)


def interpolation_slope(x_lo: Tensor, x_hi: Tensor, y_lo: Tensor, y_hi: Tensor) -> Tensor:
    """d/df of the linear interpolant on [x_lo, x_hi] (IsotonicRegression.predict between thresholds)."""
    return (y_hi - y_lo) / (x_hi - x_lo)
