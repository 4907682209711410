"""Block Jacobians of the head, each proved against SymPy's elementwise ``Matrix.jacobian``.

Blocks (paper §4.3, Eq. 17–26; layout ``J[out, in]``):

* activation lemma — for every catalogue entry, f′ (the stable form that is generated) equals
  d/dz of the textbook definition, and f itself equals its definition;
* dense + activation (Eq. 17–20):  ∂q_l/∂q_{l−1} = diag(f′(δ_l)) W_l;
* flatten → first dense (Eq. 21–22):  ∂q_1/∂x^t = diag(f′(δ_1)) W_1^t, with W_1^t the column
  block of channel t (channel-major, PyTorch) or the strided columns (channels-last, Keras);
* position sum (derivations/NOTES.md §3 cost note):  Σ_i ∂q_1/∂x_i^t = diag(f′(δ_1)) W̄_1[:, t], W̄_1 = [W_1^t 1]_t;
* PCA (Eq. 23):  ∂p/∂q_l = Vᵀ (whitened: diag(λ)^{−1/2} Vᵀ);
* SVM decision (Eq. 24–26):  ∂a/∂p = Σ_i α_i c_i ∇_p K(p_i, p) for every kernel;
* beyond the paper (heads people build): a final softmax / log-softmax, scikit-learn's
  ``Normalizer`` x/‖x‖, KernelPCA's centring (which makes a kernel PCA score a decision block, so its
  Jacobian is the SVM block above) and the cosine kernel as the linear kernel on normalised inputs.

Each proof builds both sides on small concrete sizes with symbolic entries and reduces the
difference to exactly zero (:func:`derivations.proof.prove_equal`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import sympy as sp

from derivations import activations as activation_catalogue
from derivations import kernels as kernel_catalogue
from derivations.activations import Activation, Z
from derivations.block_formulas import (
    INTERPOLATION_SYMBOLS,
    dense_block_jacobian,
    explicit,
    interpolation_segment,
    interpolation_slope,
    pca_block_jacobian,
    pca_scores,
    pullback_dense,
    pullback_l2_normalize,
    pullback_log_softmax,
    pullback_softmax,
    pullback_sum_normalize,
)
from derivations.functions import to_elementary
from derivations.kernels import Kernel
from derivations.latex import formula_latex
from derivations.pca import PCA_VARIANTS, PCAVariant
from derivations.proof import ProofResult, is_identically_zero, prove_equal

__all__ = [
    "all_block_proofs",
    "printed_formula_proofs",
    "prove_activation_derivative",
    "prove_activation_forward",
    "prove_activation_kinks",
    "prove_calibration_sigmoid",
    "prove_cosine_kernel",
    "prove_dense_block",
    "prove_first_dense_block",
    "prove_interpolation_slope",
    "prove_kernel_pca_centring",
    "prove_l2_normalize_block",
    "prove_log_softmax_block",
    "prove_pca_block",
    "prove_pca_scores",
    "prove_position_sum",
    "prove_pullback",
    "prove_softmax_block",
    "prove_sum_normalize_block",
    "prove_svm_block",
]


def symbol_matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i + 1}{j + 1}", real=True))


def symbol_vector(name: str, n: int) -> sp.Matrix:
    return sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"{name}_{i + 1}", real=True))


def prove_activation_forward(act: Activation) -> ProofResult:
    """The generated forward (stable named functions) equals the textbook definition."""
    return prove_equal(
        f"activation/{act.name}/forward",
        f"{act.name}: generated f(z) equals its definition {act.description}",
        to_elementary(act.forward),
        act.elementary_definition,
        split_on=(Z,),
        latex=rf"{act.latex_name}(z) = {formula_latex(act.forward)}",
    )


def prove_activation_derivative(act: Activation) -> ProofResult:
    """The generated f′ equals d/dz of the textbook definition (everywhere it is differentiable)."""
    return prove_equal(
        f"activation/{act.name}/derivative",
        f"{act.name}: generated f'(z) equals d/dz of the definition",
        to_elementary(act.derivative),
        sp.diff(act.elementary_definition, Z),
        split_on=(Z,),
        latex=rf"{act.latex_name}'(z) = {formula_latex(act.derivative)}",
    )


def prove_activation_kinks(act: Activation) -> ProofResult:
    """At each kink, the generated f′ takes PyTorch's autograd value (recorded in the catalogue)."""
    points = [point for point, _ in act.kink_derivatives]
    return prove_equal(
        f"activation/{act.name}/kinks",
        f"{act.name}: f' at the kinks {points} takes PyTorch's autograd values",
        sp.Matrix([act.derivative.subs(Z, point) for point in points]),
        sp.Matrix([value for _, value in act.kink_derivatives]),
        latex=r",\quad ".join(
            rf"{act.latex_name}'({formula_latex(point)})={formula_latex(value)}"
            for point, value in act.kink_derivatives
        ),
    )


def prove_dense_block(act: Activation | None, d_out: int = 2, d_in: int = 3) -> ProofResult:
    """Eq. 17–20: Jacobian of q = f(W q_prev + β) equals diag(f′(δ)) W.

    ``act=None`` proves it for an arbitrary differentiable f (SymPy's undefined ``Function``);
    otherwise the elementwise side differentiates the textbook definition and the block side
    uses the generated f′.
    """
    W, beta, q = symbol_matrix("W", d_out, d_in), symbol_vector("beta", d_out), symbol_vector("q", d_in)
    delta = W * q + beta
    if act is None:
        f, xi = sp.Function("f"), sp.Symbol("xi")
        out = delta.applyfunc(f)
        fprime = [sp.Subs(sp.Derivative(f(xi), xi), xi, delta[i]) for i in range(d_out)]
        name = "generic f"
    else:
        out = delta.applyfunc(lambda e: act.elementary_definition.subs(Z, e))
        fprime = [to_elementary(act.derivative).subs(Z, delta[i]) for i in range(d_out)]
        name = act.name
    elementwise = out.jacobian(q)
    # the block side is the formula the generator prints (derivations.block_formulas)
    block = explicit(dense_block_jacobian(d_out, d_in), {"fprime_delta": sp.Matrix(fprime), "weight": W})
    # Change of variables β_i = δ_i − (W q)_i (a bijection, since β is free): both sides become
    # functions of the plain symbols δ_i, which simplification and the sign split can handle.
    deltas = [sp.Symbol(f"delta_{i + 1}", real=True) for i in range(d_out)]
    to_delta = {beta[i]: deltas[i] - (W * q)[i] for i in range(d_out)}
    elementwise, block = elementwise.subs(to_delta), block.subs(to_delta)
    return prove_equal(
        f"block/dense/{name}",
        f"dense layer with {name}: d q_l / d q_(l-1) = diag(f'(delta_l)) W_l  ({d_out}x{d_in})",
        elementwise,
        block,
        split_on=deltas,
        latex=r"\frac{\partial\mathbf q_l}{\partial\mathbf q_{l-1}}"
        r"=\operatorname{diag}\big(f'(\boldsymbol\delta_l)\big)\,W_l",
    )


def first_layer_column_block(W1: sp.Matrix, t: int, positions: int, channels: int, channels_last: bool) -> sp.Matrix:
    """W_1^t: the columns of W_1 that multiply channel t (Eq. 21)."""
    if channels_last:
        cols = [pos * channels + t for pos in range(positions)]
    else:
        cols = [t * positions + pos for pos in range(positions)]
    return sp.Matrix.hstack(*[W1[:, c] for c in cols])


def _first_layer_setup(channels: int, positions: int, d1: int, channels_last: bool):
    W1, beta = symbol_matrix("W", d1, channels * positions), symbol_vector("beta", d1)
    F = [[sp.Symbol(f"x^{t + 1}_{i + 1}", real=True) for i in range(positions)] for t in range(channels)]
    if channels_last:
        x = sp.Matrix([F[t][i] for i in range(positions) for t in range(channels)])
    else:
        x = sp.Matrix([F[t][i] for t in range(channels) for i in range(positions)])
    f, xi = sp.Function("f"), sp.Symbol("xi")
    delta = W1 * x + beta
    q1 = delta.applyfunc(f)
    fprime = sp.diag(*[sp.Subs(sp.Derivative(f(xi), xi), xi, delta[i]) for i in range(d1)])
    return W1, F, q1, fprime


def prove_first_dense_block(channels_last: bool, channels: int = 2, positions: int = 2, d1: int = 2) -> ProofResult:
    """Eq. 22: ∂q_1/∂x^t = diag(f′(δ_1)) W_1^t for every channel t."""
    W1, F, q1, fprime = _first_layer_setup(channels, positions, d1, channels_last)
    lhs = sp.Matrix.hstack(*[q1.jacobian(sp.Matrix(F[t])) for t in range(channels)])
    rhs = sp.Matrix.hstack(
        *[fprime * first_layer_column_block(W1, t, positions, channels, channels_last) for t in range(channels)]
    )
    layout = "channels-last (Keras)" if channels_last else "channel-major (PyTorch NCHW)"
    return prove_equal(
        f"block/flatten_dense/{'channels_last' if channels_last else 'channels_first'}",
        f"flatten -> first dense, {layout}: d q_1 / d x^t = diag(f'(delta_1)) W_1^t",
        lhs,
        rhs,
        latex=r"\frac{\partial\mathbf q_1}{\partial\mathbf x^t}="
        r"\operatorname{diag}\big(f'(\boldsymbol\delta_1)\big)\,W_1^t",
    )


def prove_position_sum(channels_last: bool, channels: int = 2, positions: int = 3, d1: int = 2) -> ProofResult:
    """derivations/NOTES.md §3: Σ_i ∂q_1/∂x_i^t = diag(f′(δ_1)) W̄_1[:, t] with W̄_1[:, t] = W_1^t 1."""
    W1, F, q1, fprime = _first_layer_setup(channels, positions, d1, channels_last)
    ones = sp.ones(positions, 1)
    lhs = sp.Matrix.hstack(*[q1.jacobian(sp.Matrix(F[t])) * ones for t in range(channels)])
    wbar = sp.Matrix.hstack(
        *[first_layer_column_block(W1, t, positions, channels, channels_last) * ones for t in range(channels)]
    )
    return prove_equal(
        f"block/position_sum/{'channels_last' if channels_last else 'channels_first'}",
        "position-summed first layer: sum_i d q_1 / d x_i^t = diag(f'(delta_1)) Wbar_1[:, t]",
        lhs,
        fprime * wbar,
        latex=r"\sum_i\frac{\partial\mathbf q_1}{\partial x_i^t}="
        r"\operatorname{diag}\big(f'(\boldsymbol\delta_1)\big)\,\bar W_1\mathbf e_t",
    )


def prove_pullback(d_out: int = 2, d_in: int = 3, k: int = 2) -> ProofResult:
    """The printed pullback g diag(f′(δ)) W equals g times the Jacobian of q = f(W q_prev + β)."""
    W, beta, q = symbol_matrix("W", d_out, d_in), symbol_vector("beta", d_out), symbol_vector("q", d_in)
    f, xi = sp.Function("f"), sp.Symbol("xi")
    delta = W * q + beta
    fprime = sp.Matrix([sp.Subs(sp.Derivative(f(xi), xi), xi, delta[i]) for i in range(d_out)])
    g = symbol_matrix("g", k, d_out)
    values = {"g": g, "fprime_delta": fprime, "weight": W}
    return prove_equal(
        "block/dense/pullback",
        "pullback through a dense layer: g d q_l / d q_(l-1) = (g diag(f'(delta_l))) W_l",
        g * delta.applyfunc(f).jacobian(q),
        explicit(pullback_dense(k, d_out, d_in), values),
        latex=r"\mathbf g\,\frac{\partial\mathbf q_l}{\partial\mathbf q_{l-1}}"
        r"=\big(\mathbf g\operatorname{diag}(f'(\boldsymbol\delta_l))\big)W_l",
    )


def prove_pca_scores(variant: PCAVariant, b: int = 2, d: int = 3) -> ProofResult:
    """The printed scores formula equals scikit-learn's transform written out elementwise (Eq. 5)."""
    Vt, u, q = symbol_matrix("V", b, d), symbol_vector("u", d), symbol_vector("q", d)
    lam = sp.Matrix(b, 1, lambda i, _: sp.Symbol(f"lambda_{i + 1}", positive=True))
    values = {"components": Vt, "mean": u, "q": q, "explained_variance": lam}
    return prove_equal(
        f"block/pca_scores/{variant.name}",
        f"PCA ({variant.name}) scores: p = {'diag(lambda)^(-1/2) ' if variant.whiten else ''}V^T (q - u)",
        variant.scores(Vt, u, lam, q),
        explicit(pca_scores(b, d, variant.whiten), values),
        latex=r"\mathbf p="
        + (r"\operatorname{diag}(\boldsymbol\lambda)^{-1/2}" if variant.whiten else "")
        + r"V^\top(\mathbf q_l-\mathbf u)",
    )


def prove_pca_block(variant: PCAVariant, b: int = 2, d: int = 3) -> ProofResult:
    """Eq. 23: ∂p/∂q_l = Vᵀ (whitened: diag(λ)^{−1/2} Vᵀ); the mean drops out."""
    Vt, u, q = symbol_matrix("V", b, d), symbol_vector("u", d), symbol_vector("q", d)
    lam = sp.Matrix(b, 1, lambda i, _: sp.Symbol(f"lambda_{i + 1}", positive=True))
    lhs = variant.scores(Vt, u, lam, q).jacobian(q)
    return prove_equal(
        f"block/pca/{variant.name}",
        f"PCA ({variant.name}): d p / d q_l = {'diag(lambda)^(-1/2) ' if variant.whiten else ''}V^T",
        lhs,
        explicit(pca_block_jacobian(b, d, variant.whiten), {"components": Vt, "explained_variance": lam}),
        latex=r"\frac{\partial\mathbf p}{\partial\mathbf q_l}="
        + (r"\operatorname{diag}(\boldsymbol\lambda)^{-1/2}V^\top" if variant.whiten else r"V^\top"),
    )


def prove_scaler_fold(b: int = 2, d: int = 3) -> ProofResult:
    """A per-feature affine scaler x′ = s∘x + o before a PCA folds into it:
    Vᵀ(s∘x + o − u) = (Vᵀ diag(s))(x − (u − o)/s) for every s with no zero entry — so a
    ``Pipeline(scaler, PCA)`` is a PCA layer with components Vᵀ diag(s) and mean (u − o)/s, and
    its Jacobian is the PCA block (Eq. 23) of those."""
    vt = sp.Matrix(b, d, lambda i, j: sp.Symbol(f"v_{i + 1}{j + 1}", real=True))
    x, u, o = symbol_vector("x", d), symbol_vector("u", d), symbol_vector("o", d)
    s = sp.Matrix([sp.Symbol(f"s_{j + 1}", nonzero=True, real=True) for j in range(d)])
    scaled = sp.Matrix([s[j] * x[j] + o[j] for j in range(d)])
    folded_mean = sp.Matrix([(u[j] - o[j]) / s[j] for j in range(d)])
    return prove_equal(
        "block/pca/scaler_fold",
        "affine scaler before PCA: V^T(s*x + o - u) = (V^T diag(s))(x - (u - o)/s)",
        vt * (scaled - u),
        (vt * sp.diag(*s)) * (x - folded_mean),
        latex=r"V^\top(\mathbf s\circ\mathbf x+\mathbf o-\mathbf u)=(V^\top\operatorname{diag}(\mathbf s))"
        r"\big(\mathbf x-(\mathbf u-\mathbf o)/\mathbf s\big)",
    )


def _softmax(delta: sp.Matrix) -> sp.Matrix:
    total = sum(sp.exp(e) for e in delta)
    return delta.applyfunc(lambda e: sp.exp(e) / total)


def prove_softmax_block(c: int = 3, k: int = 2) -> ProofResult:
    """A final ``Softmax``: rows g pulled back through s = softmax(δ) are g diag(s) − (g s) sᵀ."""
    delta, g = symbol_vector("delta", c), symbol_matrix("g", k, c)
    s = _softmax(delta)
    return prove_equal(
        "block/softmax/pullback",
        "softmax output: g d s / d delta = g diag(s) - (g s) s^T",
        g * s.jacobian(delta),
        explicit(pullback_softmax(k, c), {"g": g, "s": s}),
        latex=r"\mathbf g\,\frac{\partial\mathbf s}{\partial\boldsymbol\delta}"
        r"=\mathbf g\operatorname{diag}(\mathbf s)-(\mathbf g\mathbf s)\,\mathbf s^\top",
    )


def prove_log_softmax_block(c: int = 3, k: int = 2) -> ProofResult:
    """A final ``LogSoftmax``: rows g pulled back through log softmax(δ) are g − (g 1) sᵀ."""
    delta, g = symbol_vector("delta", c), symbol_matrix("g", k, c)
    s = _softmax(delta)
    log_s = sp.Matrix([delta[i] - sp.log(sum(sp.exp(e) for e in delta)) for i in range(c)])
    return prove_equal(
        "block/log_softmax/pullback",
        "log-softmax output: g d log s / d delta = g - (g 1) s^T",
        g * log_s.jacobian(delta),
        explicit(pullback_log_softmax(k, c), {"g": g, "s": s}),
        latex=r"\mathbf g\,\frac{\partial\log\mathbf s}{\partial\boldsymbol\delta}"
        r"=\mathbf g-(\mathbf g\mathbf 1)\,\mathbf s^\top",
    )


def prove_l2_normalize_block(d: int = 3, k: int = 2) -> ProofResult:
    """``Normalizer(norm="l2")``: rows g pulled back through n = x/‖x‖ are (g − (g n) nᵀ)/‖x‖ (x ≠ 0)."""
    x, g = symbol_vector("x", d), symbol_matrix("g", k, d)
    norm = sp.sqrt(sum(e**2 for e in x))
    n = x / norm
    return prove_equal(
        "block/normalizer/l2",
        "l2 normaliser: g d n / d x = (g - (g n) n^T) / |x|, n = x / |x|",
        g * n.jacobian(x),
        explicit(pullback_l2_normalize(k, d), {"g": g, "n": n, "norm": norm}),
        latex=r"\mathbf g\,\frac{\partial\mathbf n}{\partial\mathbf x}"
        r"=\frac{\mathbf g-(\mathbf g\mathbf n)\,\mathbf n^\top}{\lVert\mathbf x\rVert},"
        r"\quad\mathbf n=\mathbf x/\lVert\mathbf x\rVert",
    )


def prove_kernel_pca_centring(n_fit: int = 3, b: int = 2) -> ProofResult:
    """KernelPCA's transform is a decision block: with k_i = k(x_i, x), scikit-learn's centring
    k̃_i = k_i − r_i − (1/n)Σ_m k_m + c (r: the fitted kernel's row means, c: its grand mean) and
    scaled eigenvectors A (n × B),

        p_b = Σ_i A_ib k̃_i = Σ_i (A_ib − Ā_b) k_i + (c Σ_i A_ib − Σ_i A_ib r_i),  Ā_b = (1/n)Σ_i A_ib,

    for every kernel (the k_i are free symbols): so ∂p/∂x is the SVM decision block (Eq. 24) with
    dual coefficients (A − 1Āᵀ)ᵀ, already proved for each kernel."""
    kv = symbol_vector("k", n_fit)
    rows = symbol_vector("r", n_fit)
    c = sp.Symbol("c", real=True)
    A = symbol_matrix("A", n_fit, b)
    mean_k = sum(kv) / n_fit
    centred = sp.Matrix([kv[i] - rows[i] - mean_k + c for i in range(n_fit)])
    abar = sp.Matrix([[sum(A[:, j]) / n_fit for j in range(b)]])
    dual = A - sp.ones(n_fit, 1) * abar
    intercept = sp.Matrix([[c * sum(A[:, j]) - sum(A[i, j] * rows[i] for i in range(n_fit)) for j in range(b)]])
    return prove_equal(
        "block/kernel_pca/centring",
        "KernelPCA scores: sum_i A_ib (centred k_i) = sum_i (A_ib - mean_i A_ib) k_i + const",
        centred.T * A,
        kv.T * dual + intercept,
        latex=r"\sum_i A_{ib}\tilde k_i=\sum_i\big(A_{ib}-\bar A_b\big)k(\mathbf x_i,\mathbf x)"
        r"+\Big(c\sum_iA_{ib}-\sum_iA_{ib}r_i\Big)",
    )


def prove_cosine_kernel(d: int = 3) -> ProofResult:
    """The cosine kernel is the linear kernel on l2-normalised inputs: K(s, x) = (s/‖s‖)ᵀ(x/‖x‖),
    so KernelPCA(kernel="cosine") is ``Normalizer`` then a linear-kernel PCA on the normalised
    fitted inputs, and its Jacobian the l2 block then the linear SVM block."""
    s_, x = symbol_vector("s", d), symbol_vector("x", d)
    ns, nx = sp.sqrt(sum(e**2 for e in s_)), sp.sqrt(sum(e**2 for e in x))
    linear = kernel_catalogue.kernel_by_name("linear")
    return prove_equal(
        "block/kernel_pca/cosine",
        "cosine kernel = linear kernel of the l2-normalised vectors",
        sp.Matrix([(s_.T * x)[0, 0] / (ns * nx)]),
        sp.Matrix([linear.value(s_ / ns, x / nx)]),
        latex=r"\frac{\mathbf s^\top\mathbf x}{\lVert\mathbf s\rVert\lVert\mathbf x\rVert}"
        r"=\Big(\frac{\mathbf s}{\lVert\mathbf s\rVert}\Big)^{\!\top}\frac{\mathbf x}{\lVert\mathbf x\rVert}",
    )


def prove_sum_normalize_block(c: int = 3, k: int = 2) -> ProofResult:
    """CalibratedClassifierCV's normalisation π = u/Σu: rows pull back as (g − (g π) 1ᵀ)/Σu."""
    u, g = sp.Matrix([sp.Symbol(f"u_{i + 1}", positive=True) for i in range(c)]), symbol_matrix("g", k, c)
    total = sum(u)
    proba = u / total
    return prove_equal(
        "block/calibration/normalize",
        "calibrated probabilities pi = u / sum(u): g d pi / d u = (g - (g pi) 1^T) / sum(u)",
        g * proba.jacobian(u),
        explicit(pullback_sum_normalize(k, c), {"g": g, "proba": proba, "total": total}),
        latex=r"\mathbf g\,\frac{\partial\boldsymbol\pi}{\partial\mathbf u}"
        r"=\frac{\mathbf g-(\mathbf g\boldsymbol\pi)\mathbf 1^\top}{\mathbf 1^\top\mathbf u}",
    )


def prove_calibration_sigmoid() -> ProofResult:
    """Platt scaling u(f) = 1/(1 + exp(a f + b)) is a 1×1 dense layer with the catalogue's sigmoid,
    W = −a, β = −b: u = σ(−a f − b) and du/df = σ′(−a f − b)·(−a), the dense block (Eq. 17–20)
    with the generated σ′."""
    f, a_, b_ = sp.symbols("f a b", real=True)
    sigmoid = activation_catalogue.activation_by_name("sigmoid")
    delta = -a_ * f - b_
    platt = 1 / (1 + sp.exp(a_ * f + b_))
    as_layer = to_elementary(sigmoid.forward).subs(Z, delta)
    block = explicit(
        dense_block_jacobian(1, 1),
        {"fprime_delta": sp.Matrix([to_elementary(sigmoid.derivative).subs(Z, delta)]), "weight": sp.Matrix([-a_])},
    )
    return prove_equal(
        "block/calibration/sigmoid",
        "sigmoid calibration 1/(1 + exp(a f + b)) = sigmoid(-a f - b), derivative = diag(sigmoid'(delta)) (-a)",
        sp.Matrix([platt, sp.diff(platt, f)]),
        sp.Matrix([as_layer, block[0, 0]]),
        latex=r"\frac{1}{1+e^{af+b}}=\sigma(-af-b),\quad\frac{du}{df}=\sigma'(-af-b)\,(-a)",
    )


def prove_interpolation_slope() -> ProofResult:
    """IsotonicRegression's predict is linear interpolation between its thresholds (clipped outside):
    the segment formula meets the thresholds (y(x_lo) = y_lo, y(x_hi) = y_hi) and its derivative is
    the printed closed form; outside the thresholds the clipped value is constant (derivative 0)."""
    f, x_lo, x_hi, y_lo, y_hi = INTERPOLATION_SYMBOLS
    segment = interpolation_segment()
    return prove_equal(
        "block/calibration/isotonic_slope",
        "isotonic calibration: a segment meets its thresholds; its d/df = (y_hi - y_lo)/(x_hi - x_lo)",
        sp.Matrix([segment.subs(f, x_lo), segment.subs(f, x_hi), sp.diff(segment, f)]),
        sp.Matrix([y_lo, y_hi, interpolation_slope()]),
        latex=r"\frac{d}{df}\Big(y_j+\frac{(y_{j+1}-y_j)(f-x_j)}{x_{j+1}-x_j}\Big)"
        r"=\frac{y_{j+1}-y_j}{x_{j+1}-x_j}",
    )


def prove_svm_block(kernel: Kernel, b: int = 2, n_support: int = 2) -> ProofResult:
    """Eq. 24–26: ∂a/∂p = Σ_i α_i c_i ∇_p K(p_i, p), with ∇K by the kernel's closed form.

    Two parts, neither of which expands a profile as a polynomial in the coordinates (a profile
    like (1 + ρ)⁶⁴ would expand into millions of terms):

    1. the chain identity for the kernel's kind, with the profile an *undefined* function k:
       ∂/∂p Σ_i α_i k(u_i(p)) = Σ_i α_i k′(u_i) ∇_p u_i through this kernel class's own closed form
       (:meth:`Kernel.gradient_closed_form`), which holds for every differentiable k;
    2. the profile lemma in the one variable u: the k′ the generated code prints equals d k / d u
       (``profile_derivative`` is SymPy's derivative after ``powsimp``; the lemma checks that the
       simplification kept the value).

    The kernel's value is k(u(s, p)) by definition (:meth:`Kernel.value`). For the catalogue's
    kernels the block is in addition proved directly, by SymPy's elementwise Jacobian of the
    concrete K (cheap for them); a spec's own kernels get parts 1 and 2 only.
    """
    start = time.perf_counter()
    p = symbol_vector("p", b)
    svs = [symbol_vector(f"s{i + 1}", b) for i in range(n_support)]
    coef = [sp.Symbol(f"alpha_{i + 1}", real=True) for i in range(n_support)]
    g = sp.Symbol("g", real=True)
    # the same kernel (its class, so its own closed form) with the profile left undefined
    generic = dataclasses.replace(kernel, profile=sp.Function("k")(kernel_catalogue.U))
    a = sum((c * generic.value(s, p) for c, s in zip(coef, svs)), g)
    lhs = sp.Matrix([a]).jacobian(p).doit()
    rhs = sp.zeros(1, b)
    for c, s in zip(coef, svs):
        rhs += c * generic.gradient_closed_form(s, p)
    entries = [is_identically_zero(e) for e in (lhs - rhs.doit())]
    chain_holds = all(ok for ok, _ in entries)
    chain_how = "/".join(sorted({how for _, how in entries}))
    lemma_holds, lemma_how = is_identically_zero(
        sp.diff(kernel.profile, kernel_catalogue.U) - kernel.profile_derivative
    )
    method = f"generic-k chain identity ({chain_how}) + profile lemma ({lemma_how})"
    holds = chain_holds and lemma_holds
    if any(kernel == k for k in kernel_catalogue.KERNELS):  # the concrete K too, elementwise
        direct = sp.Matrix([sum((c * kernel.value(s, p) for c, s in zip(coef, svs)), g)]).jacobian(p)
        closed_form = sum((c * kernel.gradient_closed_form(s, p) for c, s in zip(coef, svs)), sp.zeros(1, b))
        direct_results = [is_identically_zero(e) for e in (direct - closed_form)]
        holds = holds and all(ok for ok, _ in direct_results)
        method = f"elementwise ({'/'.join(sorted({how for _, how in direct_results}))}) + {method}"
    closed = (
        r"k'(\mathbf p_i^\top\mathbf p)\,\mathbf p_i^\top"
        if kernel.kind == "dot_product"
        else r"2k'(\lVert\mathbf p_i-\mathbf p\rVert^2)(\mathbf p-\mathbf p_i)^\top"
    )
    return ProofResult(
        f"block/svm/{kernel.name}",
        f"SVM decision, {kernel.name} kernel: d a / d p = sum_i alpha_i c_i grad_p K(p_i, p)",
        holds,
        method,
        time.perf_counter() - start,
        latex=r"\frac{\partial a}{\partial\mathbf p}=\sum_i\alpha_ic_i\,"
        + closed
        + rf",\quad k(u)={formula_latex(kernel.profile)},\ k'(u)={formula_latex(kernel.profile_derivative)}",
    )


def printed_formula_proofs() -> list[ProofResult]:
    """The proofs of exactly the formulas ``generated/blocks.py`` prints (generation refuses unless each holds)."""
    from derivations.transformer_blocks import transformer_block_proofs  # it builds on this module's helpers

    return [
        prove_dense_block(None),
        prove_pullback(),
        *(prove_pca_scores(v) for v in PCA_VARIANTS),
        *(prove_pca_block(v) for v in PCA_VARIANTS),
        prove_softmax_block(),
        prove_log_softmax_block(),
        prove_l2_normalize_block(),
        prove_sum_normalize_block(),
        prove_interpolation_slope(),
        *transformer_block_proofs(),
    ]


def all_block_proofs() -> Iterator[ProofResult]:
    """Every proof of this module and of :mod:`derivations.transformer_blocks`, catalogue-driven (new
    entries are picked up automatically)."""
    from derivations.transformer_blocks import transformer_block_proofs

    for act in activation_catalogue.ACTIVATIONS:
        yield prove_activation_forward(act)
        yield prove_activation_derivative(act)
        if act.kink_derivatives:
            yield prove_activation_kinks(act)
    yield prove_dense_block(None)
    yield prove_pullback()
    for act in activation_catalogue.ACTIVATIONS:
        yield prove_dense_block(act)
    for channels_last in (False, True):
        yield prove_first_dense_block(channels_last)
        yield prove_position_sum(channels_last)
    for variant in PCA_VARIANTS:
        yield prove_pca_scores(variant)
        yield prove_pca_block(variant)
    yield prove_scaler_fold()
    for kernel in kernel_catalogue.KERNELS:
        yield prove_svm_block(kernel)
    yield prove_softmax_block()
    yield prove_log_softmax_block()
    yield prove_l2_normalize_block()
    yield prove_kernel_pca_centring()
    yield prove_cosine_kernel()
    yield prove_sum_normalize_block()
    yield prove_calibration_sigmoid()
    yield prove_interpolation_slope()
    yield from transformer_block_proofs()
