"""Print the block formulas (:mod:`derivations.block_formulas`) as batched torch code.

Conventions of the generated code: a column vector of the formula (n × 1) is a tensor (..., n) —
a batch of rows —; a matrix (r × c) is (..., r, c). The grammar is the one the block formulas use:

* ``MatrixSymbol`` → its name (the generated function's argument);
* ``q − u`` (``MatAdd``, with ``−1 ·`` factors) → ``(q - u)``;
* ``HadamardPower(λ, −1/2)`` → ``torch.rsqrt(λ)``;
* products, right to left when they end in a column vector (``A v`` → ``v @ Aᵀ``, ``diag(d) v`` →
  ``v * d``), left to right otherwise (``diag(d) W`` → ``d.unsqueeze(-1) * W``, ``G diag(d)`` →
  ``G * d.unsqueeze(-2)``, ``A B`` → ``A @ B``, ``G v`` → ``G @ v.unsqueeze(-1)``, ``G 1`` →
  ``G.sum(-1, keepdim=True)`` (also ``G 1 1ᵀ``, which SymPy folds to a square of ones),
  a column times ``vᵀ`` → ``· * v.unsqueeze(-2)``, a column times a row of
  ones → the column, which broadcasting spreads);
* sums and differences of such products (``G − G v vᵀ``);
* a product scaled by ``1/r`` with ``r`` a scalar symbol, one per batch element (..., ) →
  ``(·) / r[..., None, None]``;
* a term of a sum scaled by ``±1/w``, and a product scaled by ``c``, with ``w``, ``c`` one number for the
  whole call (a width, the attention scale) → ``· / w`` and ``c * (·)``;
* the transpose of a matrix argument ``Aᵀ`` → ``A.transpose(-1, -2)``.

Anything else is refused, so a formula the printer does not understand never becomes code.
"""

from __future__ import annotations

import sympy as sp
from sympy import DiagMatrix, HadamardPower, MatAdd, MatMul, MatrixSymbol, OneMatrix, Transpose

__all__ = ["MatrixPrintError", "batched_torch"]


class MatrixPrintError(ValueError):
    """The expression is outside the grammar above."""


def _is_vector(expr: sp.MatrixExpr) -> bool:
    return expr.shape[1] == 1


def _vector(expr: sp.Basic) -> str:
    """An elementwise vector expression (..., n)."""
    if isinstance(expr, MatrixSymbol):
        return expr.name
    if isinstance(expr, HadamardPower) and expr.exp == sp.Rational(-1, 2):
        return f"torch.rsqrt({_vector(expr.base)})"
    if isinstance(expr, MatAdd):
        terms = []
        for term in expr.args:
            sign, inner = 1, term
            if isinstance(term, MatMul) and len(term.args) == 2 and term.args[0] == -1:
                sign, inner = -1, term.args[1]
            terms.append((sign, _vector(inner)))
        terms.sort(key=lambda t: t[0] < 0)  # positive terms first: (q - mean)
        text = terms[0][1] if terms[0][0] == 1 else f"-{terms[0][1]}"
        for sign, inner in terms[1:]:
            text += f" {'+' if sign == 1 else '-'} {inner}"
        return f"({text})"
    if isinstance(expr, MatMul):
        return batched_torch(expr)
    raise MatrixPrintError(f"unsupported vector expression {expr!r}")


def _factor(expr: sp.Basic) -> str:
    if isinstance(expr, MatrixSymbol):
        return expr.name
    if isinstance(expr, Transpose) and isinstance(expr.arg, MatrixSymbol) and not _is_vector(expr.arg):
        return f"{expr.arg.name}.transpose(-1, -2)"
    raise MatrixPrintError(f"unsupported matrix factor {expr!r}")


def _sum_coefficient(coeff: sp.Expr) -> tuple[int, str | None]:
    """A term's coefficient in a sum: ±1, or ±1/w with w one number for the call -> (sign, w's name)."""
    if coeff in (1, -1):
        return int(coeff), None
    sign = -1 if coeff.could_extract_minus_sign() else 1
    base, exponent = (sign * coeff).as_base_exp()
    if isinstance(base, sp.Symbol) and exponent == -1:
        return sign, base.name
    raise MatrixPrintError(f"unsupported coefficient {coeff} in a sum")


def _matrix_sum(expr: MatAdd) -> str:
    """A sum of matrix products, positive terms first: ``G - (G @ v) * vᵀ``."""
    terms = []
    for term in expr.args:
        coeff, inner = term.as_coeff_mmul() if isinstance(term, MatMul) else (1, term)
        inner = inner if not isinstance(inner, MatMul) or len(inner.args) != 1 else inner.args[0]
        sign, divisor = _sum_coefficient(coeff)
        text = batched_torch(inner if coeff == 1 else MatMul(*inner.args))
        terms.append((sign, text if divisor is None else f"{text} / {divisor}"))
    terms.sort(key=lambda t: t[0] < 0)
    text = terms[0][1] if terms[0][0] == 1 else f"-{terms[0][1]}"
    for sign, inner in terms[1:]:
        text += f" {'+' if sign == 1 else '-'} {inner}"
    return f"({text})"


def batched_torch(expr: sp.MatrixExpr) -> str:
    """Batched torch code for one block formula (module docstring)."""
    if isinstance(expr, MatAdd) and not _is_vector(expr):
        return _matrix_sum(expr)
    if not isinstance(expr, MatMul):
        return _vector(expr) if _is_vector(expr) else _factor(expr)
    coeff, factors = expr.as_coeff_mmul()
    factors = list(factors.args) if isinstance(factors, MatMul) else list(factors)
    if coeff != 1:
        base, exponent = coeff.as_base_exp()
        if isinstance(base, sp.Symbol) and exponent == -1:
            inner = MatMul(*factors) if len(factors) > 1 else factors[0]
            text = batched_torch(inner)
            if not text.startswith("("):
                text = f"({text})"
            return f"{text} / {base.name}[..., None, None]"
        if isinstance(coeff, sp.Symbol):
            return f"{coeff.name} * ({batched_torch(MatMul(*factors) if len(factors) > 1 else factors[0])})"
        raise MatrixPrintError(f"unsupported scalar factor {coeff}")
    if _is_vector(factors[-1]) and not isinstance(factors[-1], OneMatrix):
        # a column vector at the right: evaluate right to left on rows
        acc = _vector(factors[-1])
        for factor in reversed(factors[:-1]):
            if isinstance(factor, DiagMatrix):
                acc = f"({acc} * {_vector(factor.args[0])})"
            else:
                acc = f"({acc} @ {_factor(factor)}.transpose(-1, -2))"
        return acc[1:-1] if acc.startswith("(") and acc.endswith(")") else acc
    first, *rest = factors
    acc = None
    pending_diag = _vector(first.args[0]) if isinstance(first, DiagMatrix) else None
    if pending_diag is None:
        acc = _factor(first)
    for factor in rest:
        if isinstance(factor, DiagMatrix):
            if acc is None:
                raise MatrixPrintError("two diagonal factors in a row")
            acc = f"({acc} * {_vector(factor.args[0])}.unsqueeze(-2))"
        elif acc is None:
            acc = f"{pending_diag}.unsqueeze(-1) * {_factor(factor)}"
        elif isinstance(factor, OneMatrix) and factor.shape[0] == 1:
            pass  # a column times a row of ones: broadcasting does it
        elif isinstance(factor, OneMatrix):  # G 1 (a column), or G 1 1ᵀ (square): row sums, broadcast
            acc = f"{acc}.sum(-1, keepdim=True)"
        elif isinstance(factor, MatrixSymbol) and _is_vector(factor):
            acc = f"({acc} @ {factor.name}.unsqueeze(-1))"
        elif isinstance(factor, Transpose) and isinstance(factor.arg, MatrixSymbol) and _is_vector(factor.arg):
            acc = f"{acc} * {factor.arg.name}.unsqueeze(-2)"
        else:
            acc = f"{acc} @ {_factor(factor)}"
    return acc
