"""Check every generated function against PyTorch autograd, at run time (``cadcam verify``).

For each activation: the generated f against the PyTorch module and f′ against autograd, on
random inputs plus the edge values 0, ±1e3 and the kinks. For each kernel: the generated
decision gradient against autograd of :func:`cadcam_numeric.verification.references.reference_kernel`. For
the composed chain: ∂y/∂x, ∂p/∂x and ∂a/∂x of random heads against autograd through the
reference modules. Float64 throughout; pass means ``|a − b| ≤ atol + rtol·|b|`` elementwise
(rtol = 1e-10, atol = 1e-12); ``max_rel_error`` is the normwise ‖a − b‖∞ / ‖b‖∞ per case.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ParameterInfo
from cadcam_numeric.engine.activation_modules import activation_from_module, activation_module
from cadcam_numeric.engine.chain import DenseLayer, PCALayer, forward_dense, identity_rows, pullback
from cadcam_numeric.generated import ACTIVATIONS, KERNELS
from cadcam_numeric.verification.references import ReferencePCA, ReferenceSVMDecision

__all__ = ["ATOL", "RTOL", "ErrorAccumulator", "VerificationRow", "autograd_jacobian", "verify_all"]

RTOL, ATOL = 1e-10, 1e-12
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


def _draw(info: ParameterInfo, gen: torch.Generator) -> float:
    u = float(torch.rand((), generator=gen, dtype=torch.float64))
    if info.integer:
        return round(info.low + u * (info.high - info.low))
    return info.low + u * (info.high - info.low)


def _activation_rows(cases: int, gen: torch.Generator) -> list[VerificationRow]:
    rows = []
    for name, code in ACTIVATIONS.items():
        fwd = ErrorAccumulator(f"activations.{name}", f"{code.torch_module} forward")
        der = ErrorAccumulator(f"activations.{name}_derivative", f"{code.torch_module} autograd")
        for case in range(cases):
            params = {k: (info.default if case == 0 else _draw(info, gen)) for k, info in code.parameters.items()}
            kinks = [params.get(k, 0.0) if k != "0" else 0.0 for k in code.kinks]
            z = torch.cat(
                [
                    torch.randn(64, generator=gen, dtype=torch.float64) * (0.1, 1.0, 10.0)[case % 3],
                    torch.tensor([*EDGES, *kinks], dtype=torch.float64),
                ]
            ).requires_grad_(True)
            module = activation_module(name, **params)
            y = module(z)
            (grad,) = torch.autograd.grad(y.sum(), z)
            with torch.no_grad():
                fwd.add(code.forward(z, **params), y.detach())
                der.add(code.derivative(z, **params), grad)
        rows += [fwd.row(), der.row()]
    return rows


def _kernel_rows(cases: int, gen: torch.Generator) -> list[VerificationRow]:
    rows = []
    for name, code in KERNELS.items():
        acc = ErrorAccumulator(f"kernels.{name}_decision_gradient", f"autograd of sklearn's {name} kernel")
        for _ in range(cases):
            n, b, i, k = 5, 3, 7, 2
            p = torch.randn(n, b, generator=gen, dtype=torch.float64)
            s = torch.randn(i, b, generator=gen, dtype=torch.float64)
            dual = torch.randn(k, i, generator=gen, dtype=torch.float64)
            params = {key: _draw(info, gen) for key, info in code.parameters.items()}
            expected = autograd_jacobian(
                ReferenceSVMDecision(name, s, dual, torch.zeros(k, dtype=torch.float64), **params), p
            )
            acc.add(code.decision_gradient(p, s, dual, **params), expected)
        rows.append(acc.row())
    return rows


def autograd_jacobian(module: nn.Module, x: Tensor) -> Tensor:
    x = x.clone().requires_grad_(True)
    y = module(x)
    grads = [torch.autograd.grad(y[:, j].sum(), x, retain_graph=True)[0].flatten(1) for j in range(y.shape[1])]
    return torch.stack(grads, dim=1)


def _chain_rows(
    cases: int, gen: torch.Generator, activation: str | None = None, kernel: str | None = None
) -> list[VerificationRow]:
    """Random 4-layer heads; with ``activation``/``kernel`` every hidden layer / the SVM use those."""
    names = sorted(ACTIVATIONS) if activation is None else [activation]
    prefix = "chain" if activation is None else f"this spec ({activation}, {kernel})"
    kernels = KERNELS if kernel is None else {kernel: KERNELS[kernel]}
    dy = ErrorAccumulator(f"{prefix}: dy/dx (Grad-CAM, Eq. 9)", "autograd through the torch head")
    dp = ErrorAccumulator(f"{prefix}: dp/dx (PCA-Grad-CAM, Eq. 13)", "autograd through head + PCA module")
    da = {
        k: ErrorAccumulator(f"{prefix}: da/dx (SVM-Grad-CAM, Eq. 15), {k}", "autograd through head + PCA + SVM")
        for k in kernels
    }
    for case in range(cases):
        widths = [2 * 2 * 2, 7, 5, 4, 3]
        modules: list[nn.Module] = [nn.Flatten()]
        layers = []
        for j in range(4):
            lin = nn.Linear(widths[j], widths[j + 1]).double()
            name = names[int(torch.randint(len(names), (), generator=gen))]
            act = activation_module(name, **{k: _draw(v, gen) for k, v in ACTIVATIONS[name].parameters.items()})
            code, params = activation_from_module(act)
            layers.append(DenseLayer(lin.weight.detach(), lin.bias.detach(), code, params))
            modules += [lin, act]
        head = nn.Sequential(*modules)
        features = torch.randn(3, 2, 2, 2, generator=gen, dtype=torch.float64)
        x = features.flatten(1)
        fwd = forward_dense(x, layers)
        dy.add(pullback(identity_rows(3, 3, x), layers, fwd, 4), autograd_jacobian(head, features))
        pca_after = 1 + case % 3
        pca = PCALayer(
            torch.randn(2, widths[pca_after], generator=gen, dtype=torch.float64),
            torch.randn(widths[pca_after], generator=gen, dtype=torch.float64),
        )
        ref_pca = nn.Sequential(*list(head)[: 1 + 2 * pca_after], ReferencePCA(pca.components, pca.mean))
        jac = pca.jacobian().expand(3, *pca.jacobian().shape)
        dp.add(pullback(jac, layers, fwd, pca_after), autograd_jacobian(ref_pca, features))
        p = pca.scores(fwd.outputs[pca_after - 1])
        for kname, kcode in kernels.items():
            s = torch.randn(4, 2, generator=gen, dtype=torch.float64)
            dual = torch.randn(2, 4, generator=gen, dtype=torch.float64)
            params = {key: _draw(info, gen) for key, info in kcode.parameters.items()}
            g = kcode.decision_gradient(p, s, dual, **params) @ pca.jacobian()
            ref = nn.Sequential(
                ref_pca, ReferenceSVMDecision(kname, s, dual, torch.zeros(2, dtype=torch.float64), **params)
            )
            da[kname].add(pullback(g, layers, fwd, pca_after), autograd_jacobian(ref, features))
    return [dy.row(), dp.row(), *(a.row() for a in da.values())]


def verify_all(
    cases: int = 20, seed: int = 0, spec_activation: str | None = None, spec_kernel: str | None = None
) -> list[VerificationRow]:
    """Every generated function and the composed chain against autograd; ``cases`` random draws each.

    With ``spec_activation`` and ``spec_kernel`` the composed chain is also checked on heads built
    from exactly that activation and kernel (the architecture a report describes).
    """
    if cases < 1:
        raise ValueError(f"cases must be >= 1, got {cases}")
    gen = torch.Generator().manual_seed(seed)
    rows = _activation_rows(cases, gen) + _kernel_rows(cases, gen) + _chain_rows(cases, gen)
    if spec_activation is not None and spec_kernel is not None:
        rows += _chain_rows(cases, gen, spec_activation, spec_kernel)
    return rows
