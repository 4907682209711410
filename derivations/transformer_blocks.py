"""The transformer blocks' Jacobians, each proved against SymPy's elementwise derivative.

A vision transformer's last block, x′ = x + γ₁ ⊙ Attn(LN₁(x)), y = x′ + γ₂ ⊙ MLP(LN₂(x′)), is pulled
back by the formulas of :mod:`derivations.block_formulas`, printed into
``cadcam_numeric/generated/blocks.py``:

* ``LayerNorm`` (with its affine): g ∂y/∂x = (h − (h 1) 1ᵀ/D − (h x̂) x̂ᵀ/D)/σ, h = g diag(γ);
* ``LayerScale``: g diag(γ);
* one head of scaled dot-product attention, O = softmax_rows(c Q Kᵀ) V: ∂/∂V = Pᵀ G, ∂/∂P = G Vᵀ,
  each query's row of P through its softmax (``pullback_softmax``), ∂/∂Q = c G_S K, ∂/∂K = c G_Sᵀ Q;
  the Q/K/V and output projections are dense layers with f′ = 1 (``pullback_dense``), the MLP a dense
  layer with a catalogue GELU and a dense layer, residual sums add their rows, and token pooling
  places (class token) or spreads (mean over patch tokens) the rows it receives.

Each proof builds both sides on small concrete sizes with symbolic entries and reduces the difference
to exactly zero (:func:`derivations.proof.prove_equal`).

>>> prove_layer_scale_block().holds
True
"""

from __future__ import annotations

from collections.abc import Iterator

import sympy as sp

from derivations.block_formulas import (
    explicit,
    pullback_attention_keys,
    pullback_attention_probabilities,
    pullback_attention_queries,
    pullback_attention_values,
    pullback_layer_norm,
    pullback_layer_scale,
    pullback_softmax,
)
from derivations.proof import ProofResult, prove_equal

__all__ = ["prove_attention_block", "prove_layer_norm_block", "prove_layer_scale_block", "transformer_block_proofs"]


def _matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i + 1}{j + 1}", real=True))


def _vector(name: str, n: int) -> sp.Matrix:
    return sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"{name}_{i + 1}", real=True))


def prove_layer_norm_block(d: int = 3, k: int = 2) -> ProofResult:
    """``LayerNorm``: rows g pulled back through y = γ ⊙ (x − μ)/σ + β are (h − (h1)1ᵀ/D − (hx̂)x̂ᵀ/D)/σ."""
    x, gamma, beta, g = _vector("x", d), _vector("gamma", d), _vector("beta", d), _matrix("g", k, d)
    eps = sp.Symbol("epsilon", positive=True)
    mu = sum(x) / d
    sigma = sp.sqrt(sum((e - mu) ** 2 for e in x) / d + eps)
    xhat = (x - mu * sp.ones(d, 1)) / sigma
    y = sp.Matrix([gamma[i] * xhat[i] + beta[i] for i in range(d)])
    values = {"g": g, "gamma": gamma, "xhat": xhat, "sigma": sigma, "width": sp.Integer(d)}
    return prove_equal(
        "block/layer_norm/pullback",
        "layer norm: g d y / d x = (h - (h 1) 1^T / D - (h xhat) xhat^T / D) / sigma, h = g diag(gamma)",
        g * y.jacobian(x),
        explicit(pullback_layer_norm(k, d), values),
        latex=r"\mathbf g\,\frac{\partial\mathbf y}{\partial\mathbf x}=\frac{1}{\sigma}\Bigl(\mathbf h"
        r"-\tfrac1D(\mathbf h\mathbf 1)\mathbf 1^\top-\tfrac1D(\mathbf h\hat{\mathbf x})\hat{\mathbf x}^\top\Bigr),"
        r"\ \mathbf h=\mathbf g\operatorname{diag}(\boldsymbol\gamma)",
    )


def prove_layer_scale_block(d: int = 3, k: int = 2) -> ProofResult:
    """``LayerScale``: rows g pulled back through γ ⊙ x are g diag(γ)."""
    x, gamma, g = _vector("x", d), _vector("gamma", d), _matrix("g", k, d)
    y = sp.Matrix([gamma[i] * x[i] for i in range(d)])
    return prove_equal(
        "block/layer_scale/pullback",
        "layer scale: g d (gamma * x) / d x = g diag(gamma)",
        g * y.jacobian(x),
        explicit(pullback_layer_scale(k, d), {"g": g, "gamma": gamma}),
        latex=r"\mathbf g\,\frac{\partial(\boldsymbol\gamma\odot\mathbf x)}{\partial\mathbf x}"
        r"=\mathbf g\operatorname{diag}(\boldsymbol\gamma)",
    )


def _row_softmax(scores: sp.Matrix) -> sp.Matrix:
    rows = []
    for i in range(scores.rows):
        total = sum(sp.exp(e) for e in scores.row(i))
        rows.append([sp.exp(e) / total for e in scores.row(i)])
    return sp.Matrix(rows)


def prove_attention_block(t: int = 2, d: int = 2) -> ProofResult:
    """One attention head O = softmax_rows(c Q Kᵀ) V: the gradients of ⟨G, O⟩ with respect to every
    entry of Q, K and V equal the composed pullbacks (values, probabilities, row softmax, queries, keys)."""
    q, k, v, g = _matrix("q", t, d), _matrix("k", t, d), _matrix("v", t, d), _matrix("G", t, d)
    scale = sp.Symbol("scale", positive=True)
    probs = _row_softmax(scale * q * k.T)
    out = probs * v
    loss = sum(g[i, j] * out[i, j] for i in range(t) for j in range(d))
    by_entry = {
        name: sp.Matrix(t, d, lambda i, j, m=m: sp.diff(loss, m[i, j])) for name, m in (("q", q), ("k", k), ("v", v))
    }
    g_probs = explicit(pullback_attention_probabilities(t, d), {"g_out": g, "values": v})
    g_scores = sp.Matrix.vstack(
        *(explicit(pullback_softmax(1, t), {"g": g_probs.row(i), "s": probs.row(i).T}) for i in range(t))
    )
    composed = {
        "q": explicit(pullback_attention_queries(t, d), {"g_scores": g_scores, "keys": k, "scale": scale}),
        "k": explicit(pullback_attention_keys(t, d), {"g_scores": g_scores, "queries": q, "scale": scale}),
        "v": explicit(pullback_attention_values(t, d), {"probs": probs, "g_out": g}),
    }
    return prove_equal(
        "block/attention/pullback",
        "attention head O = softmax_rows(c Q K^T) V: d<G,O>/dV = P^T G, d/dQ = c G_S K, d/dK = c G_S^T Q,"
        " G_S = each row of G V^T through its softmax",
        sp.Matrix.vstack(by_entry["q"], by_entry["k"], by_entry["v"]),
        sp.Matrix.vstack(composed["q"], composed["k"], composed["v"]),
        latex=r"\frac{\partial\langle\mathbf G,\mathbf O\rangle}{\partial\mathbf V}=\mathbf P^\top\mathbf G,\ "
        r"\frac{\partial}{\partial\mathbf Q}=c\,\mathbf G_S\mathbf K,\ "
        r"\frac{\partial}{\partial\mathbf K}=c\,\mathbf G_S^\top\mathbf Q,\ "
        r"(\mathbf G_S)_{i\cdot}=(\mathbf G\mathbf V^\top)_{i\cdot}\bigl(\operatorname{diag}(\mathbf p_i)"
        r"-\mathbf p_i\mathbf p_i^\top\bigr)",
    )


def transformer_block_proofs() -> Iterator[ProofResult]:
    """Every proof of this module."""
    yield prove_layer_norm_block()
    yield prove_layer_scale_block()
    yield prove_attention_block()
