"""The SVM kernel catalogue, exactly as scikit-learn's ``SVC`` defines the kernels.

A kernel is a scalar *profile* k of one variable:

* dot-product kernels ``K(s, p) = k(u)``, ``u = sᵀp``   (linear, poly, sigmoid);
* stationary kernels  ``K(s, p) = k(ρ)``, ``ρ = ‖s − p‖²`` (rbf).

The gradient with respect to the input p then has the closed forms (derived and proved in
:mod:`derivations.blocks`)

    dot-product:  ∇_p K(s, p) = k′(u) s,
    stationary:   ∇_p K(s, p) = 2 k′(ρ) (p − s),

and for the SVM decision a(p) = Σ_i α_i c_i K(p_i, p) + g (paper Eq. 6) the gradient is
∂a/∂p = Σ_i α_i c_i ∇_p K(p_i, p) (Eq. 24); linear gives Σ α_i c_i p_iᵀ (Eq. 25) and rbf
gives Σ α_i c_i 2γ e^{−γ‖p_i − p‖²} (p_i − p)ᵀ (Eq. 26).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sympy as sp

__all__ = ["KERNELS", "Kernel", "KernelParameter", "U", "kernel_by_name"]

#: The profile variable: u = sᵀp for dot-product kernels, ρ = ‖s − p‖² for stationary ones.
U = sp.Symbol("u", real=True)


@dataclass(frozen=True)
class KernelParameter:
    """A kernel hyper-parameter, read from the fitted estimator attribute ``sklearn_attribute``."""

    name: str
    sklearn_attribute: str
    low: float
    high: float
    integer: bool = False

    @property
    def symbol(self) -> sp.Symbol:
        if self.integer:
            return sp.Symbol(self.name, integer=True, positive=True)
        if self.name == "gamma":
            return sp.Symbol(self.name, positive=True)
        return sp.Symbol(self.name, real=True)


@dataclass(frozen=True)
class Kernel:
    """One kernel: ``K(s, p) = profile(u)`` with u as ``kind`` says."""

    name: str
    kind: Literal["dot_product", "stationary"]
    profile: sp.Expr
    parameters: tuple[KernelParameter, ...]
    description: str
    latex: str

    @property
    def profile_derivative(self) -> sp.Expr:
        """k′(u) — what the generated gradient code evaluates.

        ``powsimp`` turns SymPy's (γu + r)^d / (γu + r) for the poly kernel into (γu + r)^{d−1},
        which stays finite where γu + r = 0.
        """
        return sp.powsimp(sp.diff(self.profile, U))

    def value(self, s: sp.Matrix, p: sp.Matrix) -> sp.Expr:
        """K(s, p) written out elementwise for column vectors ``s`` and ``p``."""
        if self.kind == "dot_product":
            return self.profile.subs(U, (s.T * p)[0, 0])
        diff = s - p
        return self.profile.subs(U, (diff.T * diff)[0, 0])

    def gradient_closed_form(self, s: sp.Matrix, p: sp.Matrix) -> sp.Matrix:
        """∇_p K(s, p) as a row vector, by the closed form of the kernel's kind."""
        if self.kind == "dot_product":
            u = (s.T * p)[0, 0]
            return self.profile_derivative.subs(U, u) * s.T
        diff = s - p
        rho = (diff.T * diff)[0, 0]
        return 2 * self.profile_derivative.subs(U, rho) * (p - s).T


_gamma = KernelParameter("gamma", "_gamma", 0.05, 3.0)
_coef0 = KernelParameter("coef0", "coef0", -2.0, 2.0)
_degree = KernelParameter("degree", "degree", 1, 4, integer=True)

g, r, d = _gamma.symbol, _coef0.symbol, _degree.symbol

KERNELS: tuple[Kernel, ...] = (
    Kernel("linear", "dot_product", U, (), "K(s, p) = <s, p>", r"\mathbf s^\top\mathbf p"),
    Kernel(
        "poly",
        "dot_product",
        (g * U + r) ** d,
        (_gamma, _coef0, _degree),
        "K(s, p) = (gamma <s, p> + coef0)^degree",
        r"(\gamma\,\mathbf s^\top\mathbf p + r)^{\deg}",
    ),
    Kernel(
        "rbf",
        "stationary",
        sp.exp(-g * U),
        (_gamma,),
        "K(s, p) = exp(-gamma ||s - p||^2)",
        r"e^{-\gamma\lVert\mathbf s-\mathbf p\rVert^2}",
    ),
    Kernel(
        "sigmoid",
        "dot_product",
        sp.tanh(g * U + r),
        (_gamma, _coef0),
        "K(s, p) = tanh(gamma <s, p> + coef0)",
        r"\tanh(\gamma\,\mathbf s^\top\mathbf p + r)",
    ),
)


def kernel_by_name(name: str) -> Kernel:
    """Return the kernel called ``name``; raise ``KeyError`` listing the known names."""
    for k in KERNELS:
        if k.name == name:
            return k
    raise KeyError(f"unknown kernel {name!r}; the catalogue has: {', '.join(k.name for k in KERNELS)}")
