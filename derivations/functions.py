"""SymPy functions whose derivatives print in numerically stable form.

``Sigmoid`` and ``Softplus`` are kept as named functions (instead of their exponential
definitions) so that differentiation yields the stable forms

    σ'(z) = σ(z)(1 − σ(z)),        softplus'(z) = σ(z),

and the code printer emits ``torch.sigmoid`` / ``torch.nn.functional.softplus`` rather than
``1/(1+exp(-z))`` (which overflows for z ≪ 0) or ``log(1+exp(z))`` (which overflows for z ≫ 0).
:func:`to_elementary` rewrites them to their textbook definitions so that proofs compare
against independently written elementary formulas.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1

__all__ = ["Sigmoid", "Softplus", "to_elementary"]


class Sigmoid(sp.Function):
    """Logistic function σ(z) = 1 / (1 + e^{−z})."""

    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return r"\sigma\!\left(%s\right)" % printer._print(self.args[0])


class Softplus(sp.Function):
    """Softplus function softplus(z) = log(1 + e^{z})."""

    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(z))

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return r"\operatorname{softplus}\!\left(%s\right)" % printer._print(self.args[0])


def to_elementary(expr: sp.Expr) -> sp.Expr:
    """Replace :class:`Sigmoid`, :class:`Softplus` and ``expm1`` by their exponential definitions."""
    return (
        expr.replace(Sigmoid, lambda z: 1 / (1 + sp.exp(-z)))
        .replace(Softplus, lambda z: sp.log(1 + sp.exp(z)))
        .replace(expm1, lambda z: sp.exp(z) - 1)
    )
