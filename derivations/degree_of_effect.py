"""The degree of effect E = ‖∂K(p_i, p)/∂p‖ of one support vector, for any kernel (Eq. 27 generalised).

For a stationary kernel K = k(ρ), ρ = ‖p_i − p‖² = d², the gradient is 2k′(ρ)(p − p_i), so
E(d) = 2|k′(d²)| d, a function of the distance d. For a dot-product kernel K = k(u), u = p_iᵀp, the
gradient is k′(u) p_i, so E(u) = ‖p_i‖ |k′(u)|, a function of the projection u (drawn for ‖p_i‖ = 1).
The maximiser is derived by SymPy (the critical points of E where it is positive); when there is none
the reason is derived too (constant, unbounded, or monotone), never assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy as sp

from derivations.kernels import Kernel, U

__all__ = ["DegreeOfEffect", "degree_of_effect"]

D = sp.Symbol("d", positive=True)


@dataclass(frozen=True)
class DegreeOfEffect:
    """E as an expression of ``variable`` (d or u), its maximiser if any, else the reason."""

    expression: sp.Expr
    variable: sp.Symbol
    maximiser: float | None
    maximum: float | None
    reason: str

    def function(self) -> Callable:
        """E as a NumPy function of the variable."""
        return sp.lambdify(self.variable, self.expression, "numpy")


def _numbers(kernel: Kernel, parameters: Mapping[str, float]) -> dict[sp.Symbol, sp.Expr]:
    values = {}
    for p in kernel.parameters:
        if p.name in parameters:
            values[p.symbol] = sp.Integer(int(parameters[p.name])) if p.integer else sp.nsimplify(parameters[p.name])
    for symbol in kernel.profile.free_symbols - {U}:
        if symbol not in values and symbol.name in parameters:
            values[symbol] = sp.nsimplify(parameters[symbol.name])
    return values


def degree_of_effect(kernel: Kernel, parameters: Mapping[str, float]) -> DegreeOfEffect:
    """E for ``kernel`` with its parameters' values (module docstring)."""
    kprime = kernel.profile_derivative.subs(_numbers(kernel, parameters))
    if kernel.kind == "stationary":
        variable = D
        signed = 2 * kprime.subs(U, D**2) * D
    else:
        variable = sp.Symbol("u", real=True)
        signed = kprime.subs(U, variable)
    expression = sp.simplify(sp.Abs(signed))
    if not (expression.free_symbols - {variable}) and sp.simplify(sp.diff(expression, variable)) == 0:
        return DegreeOfEffect(expression, variable, None, None, "E does not depend on the input: it is constant")
    try:
        critical = sp.solve(sp.Eq(sp.diff(signed, variable), 0), variable)
    except NotImplementedError:
        critical = []
    candidates = []
    for c in critical:
        value = complex(sp.N(c))
        if abs(value.imag) < 1e-12 and (kernel.kind != "stationary" or value.real > 0):
            e = float(sp.N(expression.subs(variable, value.real)))
            candidates.append((e, value.real))
    far = sp.limit(expression, variable, sp.oo)
    if far == sp.oo:
        return DegreeOfEffect(expression, variable, None, None, "E grows without bound: no maximiser")
    if not candidates:
        return DegreeOfEffect(expression, variable, None, None, "E has no critical point: it is monotone")
    best_e, best_x = max(candidates)
    return DegreeOfEffect(expression, variable, best_x, best_e, "")
