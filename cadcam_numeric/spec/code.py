"""A spec's own activations and kernels: generate, load and verify their code.

``cadcam derive SPEC --out DIR`` writes ``DIR/cadcam_custom.py`` (rendered by
:mod:`derivations.codegen.custom`). Loading never trusts the file: :func:`load_custom_code`
regenerates the module from the spec and runs it only if the file is byte-identical, so the
code that runs is exactly what the generator writes from a whitelisted expression.
:func:`verify_custom` is what ``derive`` runs before writing anything and what
``cadcam verify SPEC`` prints: every custom function against PyTorch autograd and against
SymPy's 30-digit evaluation of the user's expression, and the spec's whole chain against
autograd through an equivalent torch head (:func:`cadcam_numeric.verification.chain.chain_rows`,
the one chain check, on :func:`spec_head`). Float64; the tolerances of :mod:`cadcam_numeric.verification.catalogue`.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode, KernelCode
from cadcam_numeric.engine.activation_modules import ExpressionActivation, activation_module
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import ACTIVATIONS, KERNELS
from cadcam_numeric.verification.chain import HeadUnderTest, KernelUnderTest, chain_rows
from cadcam_numeric.verification.errors import ErrorAccumulator, VerificationRow, autograd_jacobian
from cadcam_numeric.verification.references import ReferenceSVMDecision

if TYPE_CHECKING:  # annotations only: importing derivations loads SymPy
    from derivations.architecture import ArchitectureSpec, DenseSpec
    from derivations.custom import CustomCatalogue

__all__ = [
    "BUILTIN_KERNEL_DEFAULTS",
    "CUSTOM_MODULE",
    "CustomCode",
    "empty_code",
    "head_activation",
    "kernel_parameters",
    "load_custom_code",
    "module_from_source",
    "render_custom_source",
    "spec_head",
    "verify_custom",
]

CUSTOM_MODULE = "cadcam_custom.py"


@dataclass(frozen=True)
class CustomCode:
    """The generated code of one spec's own activations and kernels."""

    activations: dict[str, ActivationCode]
    kernels: dict[str, KernelCode]
    spec_sha256: str
    source: str

    def activation(self, name: str) -> ActivationCode:
        return self.activations[name] if name in self.activations else ACTIVATIONS[name]

    def kernel(self, name: str) -> KernelCode:
        return self.kernels[name] if name in self.kernels else KERNELS[name]


def empty_code(spec: ArchitectureSpec) -> CustomCode:
    """The code of a spec that defines no activation or kernel of its own."""
    return CustomCode({}, {}, spec.sha256(), "")


def render_custom_source(spec: ArchitectureSpec, catalogue: CustomCatalogue | None = None) -> str:
    """The module text the generator writes for ``spec`` (needs SymPy); pass ``catalogue`` when the
    spec's expressions are already parsed (``derive_architecture(spec).catalogue``)."""
    from derivations.codegen.custom import render_custom_module

    return render_custom_module(spec, catalogue)


def module_from_source(source: str, spec_sha256: str) -> CustomCode:
    """Run generated module text in a fresh module object and collect its catalogue."""
    module = types.ModuleType(f"cadcam_custom_{spec_sha256[:12]}")
    module.__file__ = CUSTOM_MODULE
    exec(compile(source, CUSTOM_MODULE, "exec"), module.__dict__)
    if module.SPEC_SHA256 != spec_sha256:
        raise CadcamInputError("derived: the generated module was made for another spec (SPEC_SHA256 differs)")
    return CustomCode(dict(module.ACTIVATIONS), dict(module.KERNELS), spec_sha256, source)


def load_custom_code(directory: str | Path, spec: ArchitectureSpec) -> CustomCode:
    """Load ``directory/cadcam_custom.py`` for ``spec``, refusing it unless it regenerates byte for byte."""
    path = Path(directory) / CUSTOM_MODULE
    if not path.is_file():
        raise CadcamInputError(f"derived: {path} does not exist; run `cadcam derive SPEC --out {directory}` first")
    try:
        committed = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CadcamInputError(f"derived: cannot read {path} as UTF-8 text ({type(exc).__name__})") from exc
    expected = render_custom_source(spec)
    if committed != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True), expected.splitlines(keepends=True), str(path), "regenerated"
                )
            )[:40]
        )
        diff = "".join(ch if ch.isprintable() or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in diff)  # inert
        raise CadcamInputError(
            f"derived: {path} is not what this spec generates (edited by hand, stale, or made for another "
            f"spec); regenerate it with `cadcam derive SPEC --out {directory}`.\n{diff}"
        )
    return module_from_source(expected, spec.sha256())


#: Values of the built-in kernels' parameters a spec leaves out (γ = 1 is the paper's).
BUILTIN_KERNEL_DEFAULTS = {"gamma": 1.0, "coef0": 0.0, "degree": 3}


def kernel_parameters(spec: ArchitectureSpec) -> dict[str, float]:
    """The SVM kernel's parameter values: defaults (the custom kernel's own, or
    :data:`BUILTIN_KERNEL_DEFAULTS`) overridden by the spec's ``svm.parameters``."""
    if spec.kernel in spec.kernels:
        defaults = dict(spec.kernels[spec.kernel].parameters)
    else:
        defaults = {k: BUILTIN_KERNEL_DEFAULTS[k] for k in KERNELS[spec.kernel].parameters}
    values = {**defaults, **spec.kernel_parameters}
    if "degree" in values and spec.kernel == "poly":
        values["degree"] = int(values["degree"])
    return values


def head_activation(spec: ArchitectureSpec, code: CustomCode, layer: DenseSpec) -> nn.Module:
    """The torch module of one dense layer's activation (``ExpressionActivation`` for custom ones)."""
    if layer.activation in code.activations:
        defaults = dict(spec.activations[layer.activation].parameters)
        return ExpressionActivation(code.activations[layer.activation], **{**defaults, **layer.parameters})
    return activation_module(layer.activation, **layer.parameters)


# ---------------------------------------------------------------------------------------------
# verification


def _sympy_values(expression: object, variable: object, params: dict, points: list[float], where: str) -> Tensor:
    """The expression at each point, evaluated by SymPy to 30 digits (σ, softplus, expm1 written
    out), under the derivation budget; a value SymPy cannot evaluate is refused naming the point."""
    from derivations.budget import run_within_budget

    return torch.tensor(
        run_within_budget(_evaluate_at, expression, variable, params, points, where, what=f"evaluating {where}"),
        dtype=torch.float64,
    )


def _evaluate_at(expression: object, variable: object, params: dict, points: list[float], where: str) -> list[float]:
    from derivations.functions import to_elementary

    expression = to_elementary(expression)
    values = []
    for x in points:
        try:
            value = expression.subs({variable: x, **params}).evalf(30)
            values.append(float(value) if value.is_real else float("nan"))
        except (OverflowError, ValueError, TypeError, ZeroDivisionError) as exc:
            raise CadcamInputError(
                f"{where}: SymPy cannot evaluate the expression at {x:g} ({type(exc).__name__}: {exc})"
            ) from None
    return values


def _activation_rows(spec: ArchitectureSpec, code: CustomCode, gen: torch.Generator) -> list[VerificationRow]:
    from derivations.activations import Z
    from derivations.custom import custom_activation

    rows = []
    for name, act_code in code.activations.items():
        act = custom_activation(spec.activations[name])
        defaults = {p.name: p.default for p in act.parameters}
        symbols = {p.symbol: v for p, v in zip(act.parameters, defaults.values())}
        finite = ErrorAccumulator(f"custom.{name} is finite on [-30, 30]", "f and f' finite at 241 points")
        grid = torch.linspace(-30, 30, 241, dtype=torch.float64)
        with torch.no_grad():
            ok = torch.isfinite(act_code.forward(grid, **defaults)) & torch.isfinite(
                act_code.derivative(grid, **defaults)
            )
        finite.cases = 1
        finite.passed = bool(ok.all())
        points = [-6.0, -2.5, -1.0, -0.3, 0.0, 0.3, 1.0, 2.5, 6.0, *(float(v) for v in defaults.values())]
        fwd = ErrorAccumulator(f"custom.{name}", "SymPy: the spec's expression at 30 digits")
        fwd.add(
            act_code.forward(torch.tensor(points, dtype=torch.float64), **defaults),
            _sympy_values(act.elementary_definition, Z, symbols, points, f"activations.{name}.expression"),
        )
        der = ErrorAccumulator(f"custom.{name}_derivative", "autograd of the generated f")
        for scale in (0.1, 1.0, 10.0):
            z = torch.cat(
                [
                    torch.randn(64, generator=gen, dtype=torch.float64) * scale,
                    torch.tensor([0.0, 1e-8, -1e-8, *points], dtype=torch.float64),
                ]
            )
            z.requires_grad_(True)
            (grad,) = torch.autograd.grad(act_code.forward(z, **defaults).sum(), z)
            with torch.no_grad():
                der.add(act_code.derivative(z, **defaults), grad)
        rows += [finite.row(), fwd.row(), der.row()]
    return rows


def _kernel_rows(spec: ArchitectureSpec, code: CustomCode, gen: torch.Generator) -> list[VerificationRow]:
    from derivations.custom import custom_kernel
    from derivations.kernels import U

    rows = []
    for name, kernel_code in code.kernels.items():
        kernel = custom_kernel(spec.kernels[name])
        params = {**spec.kernels[name].parameters, **(spec.kernel_parameters if spec.kernel == name else {})}
        symbols = {p.symbol: params[p.name] for p in kernel.parameters}
        low = 0.0 if kernel.kind == "stationary" else -10.0
        grid = torch.linspace(low, 30.0 if kernel.kind == "stationary" else 10.0, 241, dtype=torch.float64)
        finite = ErrorAccumulator(f"custom.{name} is finite on [{low:g}, {float(grid[-1]):g}]", "k and k' finite")
        with torch.no_grad():
            ok = torch.isfinite(kernel_code.profile(grid, **params)) & torch.isfinite(
                kernel_code.profile_derivative(grid, **params)
            )
        finite.cases, finite.passed = 1, bool(ok.all())
        points = [low + v for v in (0.0, 0.1, 0.5, 1.0, 2.0, 4.0, 8.0)]
        prof = ErrorAccumulator(f"custom.{name}_profile", "SymPy: the spec's expression at 30 digits")
        prof.add(
            kernel_code.profile(torch.tensor(points, dtype=torch.float64), **params),
            _sympy_values(kernel.profile, U, symbols, points, f"kernels.{name}.expression"),
        )
        grad = ErrorAccumulator(f"custom.{name}_decision_gradient", "autograd of the generated decision")
        for _ in range(10):
            p = torch.randn(5, 3, generator=gen, dtype=torch.float64)
            s = torch.randn(7, 3, generator=gen, dtype=torch.float64)
            dual = torch.randn(2, 7, generator=gen, dtype=torch.float64)
            intercept = torch.zeros(2, dtype=torch.float64)
            expected = autograd_jacobian(_Decision(kernel_code, s, dual, intercept, params), p)
            grad.add(kernel_code.decision_gradient(p, s, dual, **params), expected)
        rows += [finite.row(), prof.row(), grad.row()]
    return rows


class _Decision(nn.Module):
    """a(p) through the generated kernel, for autograd."""

    def __init__(self, code: KernelCode, s: Tensor, dual: Tensor, intercept: Tensor, params: dict) -> None:
        super().__init__()
        self.code, self.s, self.dual, self.intercept, self.params = code, s, dual, intercept, params

    def forward(self, p: Tensor) -> Tensor:
        return self.code.decision(p, self.s, self.dual, self.intercept, **self.params)


def spec_head(spec: ArchitectureSpec, code: CustomCode) -> HeadUnderTest:
    """Random small heads with exactly this spec's activations (and their parameters), PCA
    position, number of components (at most 3), whitening, scaler and kernel."""
    kparams = kernel_parameters(spec)
    if spec.kernel in KERNELS:
        reference = lambda s, dual, intercept, params: ReferenceSVMDecision(spec.kernel, s, dual, intercept, **params)
    else:
        kernel_code = code.kernel(spec.kernel)
        reference = lambda s, dual, intercept, params: _Decision(kernel_code, s, dual, intercept, params)
    kernel = KernelUnderTest(spec.kernel, code.kernel(spec.kernel), lambda gen: dict(kparams), reference)
    names = ", ".join(dict.fromkeys(layer.activation for layer in spec.dense))
    return HeadUnderTest(
        f"this spec ({names}, {spec.kernel})",
        lambda case, gen: [head_activation(spec, code, layer) for layer in spec.dense],
        lambda case: spec.pca_after,
        min(spec.n_components, 3),
        (kernel,),
        whiten=spec.whiten,
        scaler=spec.scaler,
    )


def verify_custom(spec: ArchitectureSpec, code: CustomCode, cases: int = 20, seed: int = 0) -> list[VerificationRow]:
    """Every custom function and this spec's chain against autograd and SymPy (module docstring)."""
    if cases < 1:
        raise ValueError(f"cases must be >= 1, got {cases}")
    gen = torch.Generator().manual_seed(seed)
    return (
        _activation_rows(spec, code, gen)
        + _kernel_rows(spec, code, gen)
        + chain_rows(spec_head(spec, code), cases, gen)
    )
