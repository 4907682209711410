"""Proof records and the zero test every symbolic proof in the project goes through."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["ProofResult", "is_identically_zero", "prove_equal"]


@dataclass(frozen=True)
class ProofResult:
    """Outcome of one symbolic proof ``lhs == rhs``.

    ``holds`` is True only when SymPy reduced ``lhs − rhs`` to exactly zero, entry by entry.
    ``method`` records how (``expand``, ``simplify`` or ``case split on sign``).
    """

    name: str
    statement: str
    holds: bool
    method: str
    seconds: float
    latex: str = ""
    details: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "statement": self.statement,
            "holds": self.holds,
            "method": self.method,
            "seconds": round(self.seconds, 4),
            "latex": self.latex,
            "details": dict(self.details),
        }


def _reduce(expr: sp.Expr) -> tuple[bool, str]:
    if expr == 0:
        return True, "identical"
    expanded = sp.expand(expr)
    if expanded == 0:
        return True, "expand"
    if sp.expand(sp.powsimp(expanded, force=False)) == 0:
        return True, "powsimp"
    if sp.simplify(expanded) == 0:
        return True, "simplify"
    return False, "not reduced"


def is_identically_zero(expr: sp.Expr, split_on: Sequence[sp.Symbol] = ()) -> tuple[bool, str]:
    """Decide symbolically whether ``expr`` is identically zero.

    Tries ``expand`` then ``simplify``. If that fails, every real symbol of ``split_on`` that
    occurs in ``expr`` is split into the cases z < 0, z = 0, z > 0 (substituting −t, 0, t with
    t > 0), and the identity is proved in every combination of cases. This settles expressions
    holding ``Abs``/``sign``, whose simplification needs the sign. Never falls back to numerical
    sampling: a False answer means "not proved".
    """
    ok, how = _reduce(expr)
    if ok:
        return ok, how
    present = [s for s in split_on if s in expr.free_symbols]
    if not present:
        return False, how
    ts = [sp.Symbol(f"t_split{i}", positive=True) for i in range(len(present))]
    for signs in itertools.product((-1, 0, 1), repeat=len(present)):
        case = expr.subs({s: sign * t for s, sign, t in zip(present, signs, ts)})
        if not _reduce(case)[0]:
            return False, "not reduced"
    return True, "case split on sign"


def prove_equal(
    name: str,
    statement: str,
    lhs: sp.Expr | sp.MatrixBase,
    rhs: sp.Expr | sp.MatrixBase,
    split_on: Sequence[sp.Symbol] = (),
    latex: str = "",
    details: dict[str, str] | None = None,
) -> ProofResult:
    """Prove ``lhs == rhs`` (scalars or matrices of equal shape) by reducing the difference."""
    start = time.perf_counter()
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        lhs_m, rhs_m = sp.Matrix(lhs), sp.Matrix(rhs)
        if lhs_m.shape != rhs_m.shape:
            return ProofResult(
                name,
                statement,
                False,
                f"shape {lhs_m.shape} != {rhs_m.shape}",
                time.perf_counter() - start,
                latex,
                details or {},
            )
        diffs = list(lhs_m - rhs_m)
    else:
        diffs = [sp.sympify(lhs) - sp.sympify(rhs)]
    methods: set[str] = set()
    holds = True
    for d in diffs:
        ok, how = is_identically_zero(d, split_on)
        methods.add(how)
        if not ok:
            holds = False
            break
    method = "+".join(sorted(methods))
    return ProofResult(name, statement, holds, method, time.perf_counter() - start, latex, details or {})
