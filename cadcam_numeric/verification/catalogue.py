"""Check every generated function against PyTorch autograd, at run time (``cadcam verify``).

For each activation: the generated f against the PyTorch module and f′ against autograd, on
random inputs plus the edge values 0, ±1e3 and the kinks. For each kernel: the generated
decision gradient against autograd of :func:`cadcam_numeric.verification.references.reference_kernel`. For
the composed chain: ∂y/∂x, ∂p/∂x and ∂a/∂x of random heads against autograd through the
reference modules (:func:`cadcam_numeric.verification.chain.chain_rows`, the one chain check). For
the blocks beyond the paper (final softmax, ``Normalizer``, KernelPCA, calibration): each through the
engine's reader of a fitted estimator (:func:`cadcam_numeric.verification.head_blocks.head_block_rows`).
Float64 throughout; the tolerances are those of :mod:`cadcam_numeric.verification.errors`.
"""

from __future__ import annotations

import torch
from torch import nn

from cadcam_numeric.catalogue_types import ParameterInfo
from cadcam_numeric.engine.activation_modules import activation_from_module, activation_module
from cadcam_numeric.generated import ACTIVATIONS, KERNELS
from cadcam_numeric.verification.chain import HeadUnderTest, KernelUnderTest, chain_rows
from cadcam_numeric.verification.errors import EDGES, ErrorAccumulator, VerificationRow, autograd_jacobian
from cadcam_numeric.verification.head_blocks import head_block_rows
from cadcam_numeric.verification.references import ReferenceSVMDecision

__all__ = ["catalogue_head", "catalogue_kernels", "draw", "verify_all"]


def draw(info: ParameterInfo, gen: torch.Generator) -> float:
    """A parameter value uniform in the catalogue's range (rounded for integer parameters)."""
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
            params = {k: (info.default if case == 0 else draw(info, gen)) for k, info in code.parameters.items()}
            kinks = [params.get(k, 0.0) if k != "0" else 0.0 for k in code.kinks]
            z = torch.cat(
                [
                    torch.randn(64, generator=gen, dtype=torch.float64) * (0.1, 1.0, 10.0)[case % 3],
                    torch.tensor([*EDGES, *kinks], dtype=torch.float64),
                ]
            ).requires_grad_(True)
            module = activation_module(name, **params).double()
            params = activation_from_module(module)[1]  # as the module holds them (PReLU's weight is float32)
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
            params = {key: draw(info, gen) for key, info in code.parameters.items()}
            expected = autograd_jacobian(
                ReferenceSVMDecision(name, s, dual, torch.zeros(k, dtype=torch.float64), **params), p
            )
            acc.add(code.decision_gradient(p, s, dual, **params), expected)
        rows.append(acc.row())
    return rows


def catalogue_kernels() -> tuple[KernelUnderTest, ...]:
    """Every generated kernel, with parameters drawn from its range and sklearn's formula as reference."""

    def reference(name: str):
        return lambda s, dual, intercept, params: ReferenceSVMDecision(name, s, dual, intercept, **params)

    return tuple(
        KernelUnderTest(
            name,
            code,
            lambda gen, code=code: {key: draw(info, gen) for key, info in code.parameters.items()},
            reference(name),
        )
        for name, code in KERNELS.items()
    )


def catalogue_head() -> HeadUnderTest:
    """Random 4-layer heads: each hidden layer a catalogue activation drawn at random (parameters
    too), PCA (B = 2) after layer 1, 2 or 3 in turn, every kernel."""
    names = sorted(ACTIVATIONS)

    def hidden(case: int, gen: torch.Generator) -> list[nn.Module]:
        modules = []
        for _ in range(4):
            name = names[int(torch.randint(len(names), (), generator=gen))]
            modules.append(
                activation_module(name, **{k: draw(v, gen) for k, v in ACTIVATIONS[name].parameters.items()}).double()
            )
        return modules

    return HeadUnderTest("chain", hidden, lambda case: 1 + case % 3, 2, catalogue_kernels())


def verify_all(cases: int = 20, seed: int = 0) -> list[VerificationRow]:
    """Every generated function and the composed chain against autograd; ``cases`` random draws each."""
    if cases < 1:
        raise ValueError(f"cases must be >= 1, got {cases}")
    gen = torch.Generator().manual_seed(seed)
    return (
        _activation_rows(cases, gen)
        + _kernel_rows(cases, gen)
        + chain_rows(catalogue_head(), cases, gen)
        + head_block_rows(cases, gen)
    )
