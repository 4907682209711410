"""A PyTorch code printer that emits code which runs and keeps the input's dtype and device.

SymPy 1.14's ``TorchPrinter`` prints ``Max(0, u)`` as ``torch.max(0, u)`` and ``sqrt(2)`` as
``torch.sqrt(2)``; both fail on Python numbers, and ``torch.where(c, 1, 0.01)`` returns the
*default* dtype, not the input's. This printer fixes those cases:

* every numeric constant (``sqrt(2)``, ``1/2``, ``pi``) becomes a Python float literal,
  so it never changes the tensor's dtype;
* ``Piecewise`` becomes nested ``torch.where`` whose scalar branches are broadcast with
  ``torch.zeros_like(<like>) + c``, so every branch has the input's dtype and device;
* relations print as Python operators (which accept a float on either side);
* :class:`~derivations.functions.Sigmoid` → ``torch.sigmoid``; ``Softplus`` → ``torch.logaddexp(u, 0)``
  (exact and overflow-free); ``expm1`` → ``torch.expm1``; ``log1p`` → ``torch.log1p``.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pytorch import TorchPrinter

__all__ = ["StableTorchPrinter", "numeric_constants_to_floats"]

_OPS = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def numeric_constants_to_floats(expr: sp.Basic) -> sp.Basic:
    """Evaluate every non-integer numeric subexpression (``sqrt(2)/2``, ``pi``) to a 20-digit Float.

    Integers (exponents, counts) stay integers; relations and Piecewise conditions are kept.
    """

    def is_constant(e: sp.Basic) -> bool:
        return isinstance(e, sp.Expr) and e.is_number and not e.is_Integer and not e.is_Float

    return expr.replace(is_constant, lambda e: sp.Float(e.evalf(20), 20))


class StableTorchPrinter(TorchPrinter):
    """Print SymPy expressions as PyTorch code; ``like`` names a tensor argument for broadcasting."""

    def __init__(self, like: str, scalars: frozenset[str] = frozenset()) -> None:
        super().__init__({})
        self.like = like
        self.scalars = scalars

    def doprint(self, expr: object, assign_to: object = None) -> str:
        if isinstance(expr, sp.Basic):
            expr = numeric_constants_to_floats(expr)
        return super().doprint(expr, assign_to)

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_Rational(self, expr: sp.Rational) -> str:
        return repr(float(expr))

    def _branch(self, expr: sp.Expr) -> str:
        """Print a Piecewise branch; scalar-only branches are broadcast to ``like``."""
        if any(s.name not in self.scalars for s in expr.free_symbols):
            return self._print(expr)
        return f"torch.zeros_like({self.like}) + {self.parenthesize(expr, 100)}"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        if expr.args[-1].cond is not sp.true:
            raise ValueError(f"Piecewise without a default (True) branch cannot be printed: {expr}")
        result = self._branch(expr.args[-1].expr)
        for branch in reversed(expr.args[:-1]):
            result = f"torch.where({self._print(branch.cond)}, {self._branch(branch.expr)}, {result})"
        return result

    def _print_Relational(self, expr: sp.core.relational.Relational) -> str:
        op = _OPS[expr.rel_op]
        return f"({self._print(expr.lhs)} {op} {self._print(expr.rhs)})"

    def _print_Or(self, expr: sp.Or) -> str:
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"

    def _print_And(self, expr: sp.And) -> str:
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Sigmoid(self, expr: sp.Function) -> str:
        return f"torch.sigmoid({self._print(expr.args[0])})"

    def _print_Softplus(self, expr: sp.Function) -> str:
        u = self._print(expr.args[0])
        return f"torch.logaddexp({u}, torch.zeros_like({u}))"

    def _print_expm1(self, expr: sp.Function) -> str:
        return f"torch.expm1({self._print(expr.args[0])})"

    def _print_log1p(self, expr: sp.Function) -> str:
        return f"torch.log1p({self._print(expr.args[0])})"
