"""The head's block formulas as SymPy matrix expressions: what the proofs hold and what the
generator prints into ``cadcam_numeric/generated/blocks.py``: one constructor per block, called at
small concrete sizes by the proofs and with symbolic sizes by the generator, so what is proved is
what runs.

Each formula is built over ``MatrixSymbol``s named like the generated function's arguments
(column vectors for vectors, as in the paper). :func:`explicit` substitutes concrete matrices for
the proofs in :mod:`derivations.blocks`; :mod:`derivations.codegen.matrix_printer` prints the same
expression as batched torch code. SymPy's matrix *calculus* is never used (it is unreliable on
nested cases): only substitution and explicit evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy import DiagMatrix, HadamardPower, MatrixSymbol, OneMatrix

__all__ = [
    "BLOCK_FORMULAS",
    "BlockFormula",
    "dense_block_jacobian",
    "explicit",
    "interpolation_segment",
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

Size = int | sp.Symbol


def _inverse_sqrt(lam: MatrixSymbol) -> DiagMatrix:
    return DiagMatrix(HadamardPower(lam, sp.Rational(-1, 2)))


def dense_block_jacobian(d_out: Size, d_in: Size) -> sp.MatrixExpr:
    """∂q_l/∂q_{l−1} = diag(f′(δ_l)) W_l (Eq. 17–20)."""
    return DiagMatrix(MatrixSymbol("fprime_delta", d_out, 1)) * MatrixSymbol("weight", d_out, d_in)


def pullback_dense(k: Size, d_out: Size, d_in: Size) -> sp.MatrixExpr:
    """g diag(f′(δ_l)) W_l: K row vectors at q_l pulled back to q_{l−1} (Eq. 13, 15, right to left)."""
    g = MatrixSymbol("g", k, d_out)
    return g * DiagMatrix(MatrixSymbol("fprime_delta", d_out, 1)) * MatrixSymbol("weight", d_out, d_in)


def pca_scores(b: Size, d: Size, whiten: bool) -> sp.MatrixExpr:
    """p = Vᵀ(q − u) (Eq. 5); whitened diag(λ)^{−1/2} Vᵀ(q − u)."""
    vt, q, u = MatrixSymbol("components", b, d), MatrixSymbol("q", d, 1), MatrixSymbol("mean", d, 1)
    p = vt * (q - u)
    return _inverse_sqrt(MatrixSymbol("explained_variance", b, 1)) * p if whiten else p


def pca_block_jacobian(b: Size, d: Size, whiten: bool) -> sp.MatrixExpr:
    """∂p/∂q_l = Vᵀ (Eq. 23); whitened diag(λ)^{−1/2} Vᵀ."""
    vt = MatrixSymbol("components", b, d)
    return _inverse_sqrt(MatrixSymbol("explained_variance", b, 1)) * vt if whiten else vt


def pullback_softmax(k: Size, c: Size) -> sp.MatrixExpr:
    """g ∂s/∂δ = g diag(s) − (g s) sᵀ for s = softmax(δ): K rows at a softmax output pulled back to
    its input (a final ``Softmax`` of the head)."""
    g, s = MatrixSymbol("g", k, c), MatrixSymbol("s", c, 1)
    return g * DiagMatrix(s) - g * s * s.T


def pullback_log_softmax(k: Size, c: Size) -> sp.MatrixExpr:
    """g ∂(log s)/∂δ = g − (g 1) sᵀ for s = softmax(δ) (a final ``LogSoftmax``)."""
    g, s = MatrixSymbol("g", k, c), MatrixSymbol("s", c, 1)
    return g - g * OneMatrix(c, 1) * s.T


def pullback_l2_normalize(k: Size, d: Size) -> sp.MatrixExpr:
    """g ∂n/∂x = (g − (g n) nᵀ)/r for n = x/r, r = ‖x‖ (scikit-learn's ``Normalizer(norm="l2")``)."""
    g, n = MatrixSymbol("g", k, d), MatrixSymbol("n", d, 1)
    return (g - g * n * n.T) / sp.Symbol("norm", positive=True)


def pullback_sum_normalize(k: Size, c: Size) -> sp.MatrixExpr:
    """g ∂π/∂u = (g − (g π) 1ᵀ)/S for π = u/S, S = Σ_m u_m (CalibratedClassifierCV's normalisation
    of the per-class calibrated scores)."""
    g, pi = MatrixSymbol("g", k, c), MatrixSymbol("proba", c, 1)
    return (g - g * pi * OneMatrix(1, c)) / sp.Symbol("total", positive=True)


def pullback_layer_norm(k: Size, d: Size) -> sp.MatrixExpr:
    """g ∂y/∂x for ``LayerNorm``: y = γ ⊙ x̂ + β, x̂ = (x − μ1)/σ, μ = 1ᵀx/D, σ = √(‖x − μ1‖²/D + ε).
    With h = g diag(γ): (h − (h 1) 1ᵀ/D − (h x̂) x̂ᵀ/D)/σ. ``width`` is D, ``sigma`` σ per token."""
    g, gamma, xhat = MatrixSymbol("g", k, d), MatrixSymbol("gamma", d, 1), MatrixSymbol("xhat", d, 1)
    width, sigma = sp.Symbol("width", positive=True), sp.Symbol("sigma", positive=True)
    h = g * DiagMatrix(gamma)
    return (h - h * OneMatrix(d, 1) * OneMatrix(1, d) / width - h * xhat * xhat.T / width) / sigma


def pullback_layer_scale(k: Size, d: Size) -> sp.MatrixExpr:
    """g ∂(γ ⊙ x)/∂x = g diag(γ) (timm's ``LayerScale``)."""
    return MatrixSymbol("g", k, d) * DiagMatrix(MatrixSymbol("gamma", d, 1))


def pullback_attention_values(t: Size, d: Size) -> sp.MatrixExpr:
    """∂/∂V of ⟨G, P V⟩ = Pᵀ G: one head's output O = P V (T × d), P (T × T) its attention weights."""
    return MatrixSymbol("probs", t, t).T * MatrixSymbol("g_out", t, d)


def pullback_attention_probabilities(t: Size, d: Size) -> sp.MatrixExpr:
    """∂/∂P of ⟨G, P V⟩ = G Vᵀ (then each query's row through its softmax: ``pullback_softmax``)."""
    return MatrixSymbol("g_out", t, d) * MatrixSymbol("values", t, d).T


def pullback_attention_queries(t: Size, d: Size) -> sp.MatrixExpr:
    """∂/∂Q of ⟨G_S, c Q Kᵀ⟩ = c G_S K: the scores S = c Q Kᵀ, c = 1/√d (``scale``)."""
    return sp.Symbol("scale", positive=True) * MatrixSymbol("g_scores", t, t) * MatrixSymbol("keys", t, d)


def pullback_attention_keys(t: Size, d: Size) -> sp.MatrixExpr:
    """∂/∂K of ⟨G_S, c Q Kᵀ⟩ = c G_Sᵀ Q."""
    return sp.Symbol("scale", positive=True) * MatrixSymbol("g_scores", t, t).T * MatrixSymbol("queries", t, d)


#: Symbols of one segment [x_lo, x_hi] of a piecewise-linear interpolant (IsotonicRegression's predict).
INTERPOLATION_SYMBOLS = sp.symbols("f x_lo x_hi y_lo y_hi", real=True)


def interpolation_segment() -> sp.Expr:
    """y(f) = y_lo + (y_hi − y_lo)(f − x_lo)/(x_hi − x_lo) on the segment (linear interpolation)."""
    f, x_lo, x_hi, y_lo, y_hi = INTERPOLATION_SYMBOLS
    return y_lo + (y_hi - y_lo) * (f - x_lo) / (x_hi - x_lo)


def interpolation_slope() -> sp.Expr:
    """The closed form the generated ``interpolation_slope`` prints: (y_hi − y_lo)/(x_hi − x_lo);
    ``derivations.blocks.prove_interpolation_slope`` proves it is d/df of the segment."""
    _, x_lo, x_hi, y_lo, y_hi = INTERPOLATION_SYMBOLS
    return (y_hi - y_lo) / (x_hi - x_lo)


def explicit(formula: sp.MatrixExpr, values: Mapping[str, sp.Matrix]) -> sp.Matrix:
    """The formula with each ``MatrixSymbol`` replaced by the explicit matrix named in ``values``."""
    symbols = {s for s in formula.free_symbols if isinstance(s, MatrixSymbol)}
    missing = sorted(s.name for s in symbols if s.name not in values)
    if missing:
        raise KeyError(f"explicit: no values for {missing}")
    scalars = {s: values[s.name] for s in formula.free_symbols if isinstance(s, sp.Symbol) and s.name in values}
    substituted = formula.subs({s: sp.ImmutableMatrix(values[s.name]) for s in symbols})
    return sp.Matrix(sp.Matrix(substituted.doit()).subs(scalars))


class BlockFormula:
    """A formula with symbolic sizes, for printing (sizes never reach the generated code)."""

    def __init__(self, name: str, expression: sp.MatrixExpr) -> None:
        self.name, self.expression = name, expression


_K, _DOUT, _DIN, _B, _D, _C, _T = sp.symbols("K D_out D_in B D C T", integer=True, positive=True)

#: What ``blocks.py`` prints, by generated-function name (and the whitened variant).
BLOCK_FORMULAS: dict[str, BlockFormula] = {
    f.name: f
    for f in (
        BlockFormula("dense_block_jacobian", dense_block_jacobian(_DOUT, _DIN)),
        BlockFormula("pullback_dense", pullback_dense(_K, _DOUT, _DIN)),
        BlockFormula("pca_scores", pca_scores(_B, _D, whiten=False)),
        BlockFormula("pca_scores_whitened", pca_scores(_B, _D, whiten=True)),
        BlockFormula("pca_block_jacobian", pca_block_jacobian(_B, _D, whiten=False)),
        BlockFormula("pca_block_jacobian_whitened", pca_block_jacobian(_B, _D, whiten=True)),
        BlockFormula("pullback_softmax", pullback_softmax(_K, _C)),
        BlockFormula("pullback_log_softmax", pullback_log_softmax(_K, _C)),
        BlockFormula("pullback_l2_normalize", pullback_l2_normalize(_K, _D)),
        BlockFormula("pullback_sum_normalize", pullback_sum_normalize(_K, _C)),
        BlockFormula("pullback_layer_norm", pullback_layer_norm(_K, _D)),
        BlockFormula("pullback_layer_scale", pullback_layer_scale(_K, _D)),
        BlockFormula("pullback_attention_values", pullback_attention_values(_T, _D)),
        BlockFormula("pullback_attention_probabilities", pullback_attention_probabilities(_T, _D)),
        BlockFormula("pullback_attention_queries", pullback_attention_queries(_T, _D)),
        BlockFormula("pullback_attention_keys", pullback_attention_keys(_T, _D)),
    )
}
