"""The verification table that ``cadcam verify`` and ``cadcam derive SPEC`` print."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["print_rows"]


def print_rows(rows: Sequence, rtol: float, atol: float) -> None:
    """One line per checked function (reference, cases, max abs/rel error, pass/FAIL), then the count."""
    print(f"{'function':52} {'reference':42} {'cases':>5} {'max abs':>9} {'max rel':>9}  result")
    for r in rows:
        print(
            f"{r.function:52} {r.reference:42} {r.cases:5d} {r.max_abs_error:9.1e} {r.max_rel_error:9.1e}  "
            f"{'pass' if r.passed else 'FAIL'}"
        )
    failed = sum(not r.passed for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed (float64, rtol {rtol:g}, atol {atol:g})")
