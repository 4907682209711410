"""How every check compares the generated code with its reference, in float64.

Pass means ``|a − b| ≤ atol + rtol·|b|`` elementwise (rtol = 1e-10, atol = 1e-12), with the
same non-finite entries on both sides; ``max_rel_error`` is the normwise ‖a − b‖∞ / ‖b‖∞ per
case (elementwise ratios explode where b ≈ 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

__all__ = ["ATOL", "EDGES", "RTOL", "ErrorAccumulator", "VerificationRow", "autograd_jacobian"]

RTOL, ATOL = 1e-10, 1e-12
#: edge inputs every activation is checked at, beside random ones
EDGES = (0.0, -0.0, 1e3, -1e3, 1e-8, -1e-8)


@dataclass
class VerificationRow:
    function: str
    reference: str
    dtype: str
    cases: int
    max_abs_error: float
    max_rel_error: float
    passed: bool

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class ErrorAccumulator:
    def __init__(self, function: str, reference: str) -> None:
        self.function, self.reference = function, reference
        self.cases, self.abs_err, self.rel_err, self.passed = 0, 0.0, 0.0, True

    def add(self, actual: Tensor, expected: Tensor) -> None:
        self.cases += 1
        if actual.shape != expected.shape:
            self.passed = False
            return
        err = (actual - expected).abs()
        finite = torch.isfinite(expected)
        self.passed &= bool(torch.equal(finite, torch.isfinite(actual)))
        err = torch.where(finite, err, torch.zeros_like(err))
        scale = expected.abs().where(finite, torch.zeros_like(err))
        if err.numel():
            self.abs_err = max(self.abs_err, float(err.max()))
            # normwise relative error ‖a − b‖∞ / ‖b‖∞ (elementwise ratios explode where b ≈ 0)
            self.rel_err = max(self.rel_err, float(err.max()) / max(float(scale.max()), ATOL))
            self.passed &= bool((err <= ATOL + RTOL * scale).all())

    def row(self) -> VerificationRow:
        return VerificationRow(
            self.function, self.reference, "float64", self.cases, self.abs_err, self.rel_err, self.passed
        )


def autograd_jacobian(module: nn.Module, x: Tensor) -> Tensor:
    """∂ module(x)[:, j] / ∂x for every output j, by autograd: shape (n, outputs, x.numel() / n)."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    grads = [torch.autograd.grad(y[:, j].sum(), x, retain_graph=True)[0].flatten(1) for j in range(y.shape[1])]
    return torch.stack(grads, dim=1)
