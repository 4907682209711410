"""Derive an architecture spec: its own activations and kernels, their proofs, and the chain.

A user's activation ``x * tanh(log(1 + exp(x)))`` becomes a catalogue :class:`Activation` whose
``definition`` is exactly what the user wrote and whose ``forward`` is a numerically stable
rewrite (``log(1 + exp(a))`` → softplus(a), ``1 / (1 + exp(-a))`` → σ(a)); SymPy proves the two
equal and proves f′ = d/dz of the definition, as for the built-in catalogue. Kernels become
:class:`Kernel` profiles. :func:`derive_architecture` then writes every step of the head's chain
(paper Eq. 9, 13–15, 17–26) for this spec, in LaTeX and as plain strings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sympy as sp

from derivations.activations import Activation, Parameter, Z, activation_by_name
from derivations.architecture import ArchitectureSpec, CustomActivationSpec, CustomKernelSpec
from derivations.blocks import (
    prove_activation_derivative,
    prove_activation_forward,
    prove_dense_block,
    prove_pca_block,
    prove_svm_block,
)
from derivations.budget import run_within_budget
from derivations.expressions import parse_expression
from derivations.functions import Sigmoid, Softplus, to_elementary
from derivations.kernels import Kernel, KernelParameter, U, kernel_by_name
from derivations.latex import tex_escape
from derivations.pca import PCA_VARIANTS
from derivations.proof import ProofResult

__all__ = [
    "EXPRESSION_ACTIVATION",
    "ArchitectureDerivation",
    "CustomCatalogue",
    "custom_activation",
    "custom_catalogue",
    "custom_kernel",
    "derive_architecture",
    "parse_custom_catalogue",
    "stabilise",
]


#: The module the project builds for a custom activation when the spec names no class of its own.
EXPRESSION_ACTIVATION = "cadcam_numeric.engine.activation_modules.ExpressionActivation"


def _is_one_plus_exp(e: sp.Expr) -> sp.Expr | None:
    """The a of ``1 + exp(a)``, or None."""
    if isinstance(e, sp.Add) and len(e.args) == 2 and sp.S.One in e.args:
        other = e.args[0] if e.args[1] == 1 else e.args[1]
        if isinstance(other, sp.exp):
            return other.args[0]
    return None


def stabilise(expr: sp.Expr) -> sp.Expr:
    """Rewrite overflow-prone forms into the stable named functions (proved equal by the caller).

    log(1 + e^a) → softplus(a) (finite for a ≫ 0) and (1 + e^a)^(−1) → σ(−a) (finite for a ≪ 0).
    """

    def softplus_of(e: sp.Expr) -> bool:
        return isinstance(e, sp.log) and _is_one_plus_exp(e.args[0]) is not None

    def sigmoid_of(e: sp.Expr) -> bool:
        return isinstance(e, sp.Pow) and e.exp == -1 and _is_one_plus_exp(e.base) is not None

    expr = expr.replace(softplus_of, lambda e: Softplus(_is_one_plus_exp(e.args[0])))
    return expr.replace(sigmoid_of, lambda e: Sigmoid(-_is_one_plus_exp(e.base)))


def _range(default: float) -> tuple[float, float]:
    """Where the property tests draw a custom parameter from: ±50 % around the spec's value."""
    if default == 0:
        return 0.0, 0.0
    a, b = 0.5 * default, 1.5 * default
    return min(a, b), max(a, b)


def custom_activation(spec: CustomActivationSpec) -> Activation:
    """The spec's activation as a catalogue entry (raises ``ExpressionError`` for a bad expression)."""
    parameters = tuple(Parameter(n, v, *_range(v), n) for n, v in sorted(spec.parameters.items()))
    symbols = {spec.variable: Z, **{p.name: p.symbol for p in parameters}}
    definition = parse_expression(
        spec.expression, symbols, where=f"activations.{spec.name}.expression", symbols=symbols
    )
    forward = stabilise(definition)
    return Activation(
        spec.name,
        f"user-defined, f(z) = {sp.sstr(definition)}",  # printed by SymPy from the parse: no user text
        spec.torch_module or EXPRESSION_ACTIVATION,
        forward,
        definition=to_elementary(definition),  # σ, softplus, expm1 written out: the proofs' reference
        parameters=parameters,
        latex_name=r"\mathrm{" + spec.name.replace("_", r"\_") + "}",
    )


def custom_kernel(spec: CustomKernelSpec) -> Kernel:
    """The spec's kernel profile as a catalogue kernel (raises ``ExpressionError``)."""
    parameters = tuple(KernelParameter(n, n, *_range(v)) for n, v in sorted(spec.parameters.items()))
    symbols = {spec.variable: U, **{p.name: p.symbol for p in parameters}}
    profile = parse_expression(spec.expression, symbols, where=f"kernels.{spec.name}.expression", symbols=symbols)
    what = "||s - p||^2" if spec.kind == "stationary" else "<s, p>"
    latex_var = r"\lVert\mathbf s-\mathbf p\rVert^2" if spec.kind == "stationary" else r"\mathbf s^\top\mathbf p"
    return Kernel(
        spec.name,
        "stationary" if spec.kind == "stationary" else "dot_product",
        stabilise(profile),
        parameters,
        f"K(s, p) = k({what}), k(u) = {sp.sstr(profile)}",  # printed by SymPy from the parse: no user text
        sp.latex(profile.subs(U, sp.Symbol("RHO"))).replace("RHO", latex_var),
    )


@dataclass(frozen=True)
class CustomCatalogue:
    """The activations and kernels a spec defines, with their numeric parameter values."""

    activations: tuple[Activation, ...]
    kernels: tuple[Kernel, ...]
    parameter_values: dict[str, dict[str, float]] = field(default_factory=dict)


def custom_catalogue(spec: ArchitectureSpec) -> CustomCatalogue:
    """Every activation and kernel the spec defines (used or not), parsed and stabilised — under
    the derivation budget (:mod:`derivations.budget`) when the spec has expressions of its own."""
    if not (spec.activations or spec.kernels):
        return parse_custom_catalogue(spec)
    return run_within_budget(parse_custom_catalogue, spec, what=f"parsing {_expressions(spec)}")


def parse_custom_catalogue(spec: ArchitectureSpec) -> CustomCatalogue:
    """:func:`custom_catalogue` in this process, without the budget (for work already budgeted)."""
    values = {n: dict(a.parameters) for n, a in spec.activations.items()}
    values |= {n: dict(k.parameters) for n, k in spec.kernels.items()}
    return CustomCatalogue(
        tuple(custom_activation(a) for _, a in sorted(spec.activations.items())),
        tuple(custom_kernel(k) for _, k in sorted(spec.kernels.items())),
        values,
    )


def _activation(spec: ArchitectureSpec, catalogue: CustomCatalogue, name: str) -> Activation:
    for act in catalogue.activations:
        if act.name == name:
            return act
    return activation_by_name(name)


def _kernel(spec: ArchitectureSpec, catalogue: CustomCatalogue) -> Kernel:
    for kernel in catalogue.kernels:
        if kernel.name == spec.kernel:
            return kernel
    return kernel_by_name(spec.kernel)


@dataclass(frozen=True)
class Step:
    """One step of the derivation: what it is, its LaTeX (lines separated by ``\\\\``) and plain text."""

    title: str
    latex: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"title": self.title, "latex": self.latex, "text": self.text}


@dataclass(frozen=True)
class ArchitectureDerivation:
    spec: ArchitectureSpec
    catalogue: CustomCatalogue
    steps: list[Step]
    proofs: list[ProofResult]
    seconds: float

    @property
    def holds(self) -> bool:
        return all(p.holds for p in self.proofs)

    def to_json(self) -> dict[str, object]:
        return {
            "spec": self.spec.name,
            "spec_sha256": self.spec.sha256(),
            "custom_activations": {
                a.name: {
                    "definition": sp.sstr(a.elementary_definition),
                    "forward": sp.sstr(a.forward),
                    "derivative": sp.sstr(a.derivative),
                    "parameters": {p.name: p.default for p in a.parameters},
                    "torch_module": a.torch_module,
                }
                for a in self.catalogue.activations
            },
            "custom_kernels": {
                k.name: {
                    "kind": k.kind,
                    "profile": sp.sstr(k.profile),
                    "profile_derivative": sp.sstr(k.profile_derivative),
                    "parameters": [p.name for p in k.parameters],
                }
                for k in self.catalogue.kernels
            },
            "steps": [s.to_json() for s in self.steps],
            "proofs": [p.to_json() for p in self.proofs],
            "all_proofs_hold": self.holds,
            "seconds": round(self.seconds, 3),
        }

    def latex_document(self) -> str:
        """A standalone LaTeX document with every step of this derivation and its proofs."""
        spec = self.spec
        lines = [
            r"\documentclass[11pt]{article}",
            r"\usepackage[T1]{fontenc}",
            r"\usepackage{amsmath,amssymb}",
            r"\usepackage[margin=2cm]{geometry}",
            r"\allowdisplaybreaks",
            r"\begin{document}",
            rf"\section*{{Derivation: {tex_escape(spec.name)}}}",
            rf"Spec sha256 \texttt{{{spec.sha256()[:16]}}}\dots; every step below is proved by SymPy "
            r"and the generated code is verified against PyTorch autograd.",
        ]
        for act in self.catalogue.activations:
            lines += [
                rf"\subsection*{{Activation {tex_escape(act.name)}}}",
                r"\begin{align*}",
                rf"f(z) &= {sp.latex(act.elementary_definition)}\\",
                rf"f(z) &= {sp.latex(act.forward)} \quad\text{{(stable form, proved equal)}}\\",
                rf"f'(z) &= {sp.latex(act.derivative)}",
                r"\end{align*}",
            ]
        for kernel in self.catalogue.kernels:
            var = r"\rho" if kernel.kind == "stationary" else "u"
            definition = (
                r"\lVert\mathbf s-\mathbf p\rVert^2" if kernel.kind == "stationary" else r"\mathbf s^\top\mathbf p"
            )
            lines += [
                rf"\subsection*{{Kernel {tex_escape(kernel.name)}}}",
                r"\begin{align*}",
                rf"K(\mathbf s,\mathbf p) &= k({var}),\quad {var}={definition}\\",
                rf"k(u) &= {sp.latex(kernel.profile)},\qquad k'(u) = {sp.latex(kernel.profile_derivative)}",
                r"\end{align*}",
            ]
        lines.append(r"\subsection*{The chain of this head}")
        for step in self.steps:
            lines += [rf"\paragraph{{{tex_escape(step.title)}}}", r"\begin{gather*}", step.latex, r"\end{gather*}"]
        lines += [r"\subsection*{Proofs}", r"\begin{itemize}"]
        for proof in self.proofs:
            verdict = "holds" if proof.holds else "NOT PROVED"
            lines.append(
                rf"\item \texttt{{{tex_escape(proof.name)}}}: {tex_escape(proof.statement)} --- {verdict} "
                f"({tex_escape(proof.method)})"
            )
        lines += [r"\end{itemize}", r"\end{document}", ""]
        return "\n".join(lines)


def _latex(expr: sp.Expr) -> str:
    """LaTeX with multi-letter parameter names upright (negative_slope, not negative subscript slope)."""
    names = {s: r"\mathrm{" + s.name.replace("_", r"\_") + "}" for s in expr.free_symbols if "_" in s.name}
    return sp.latex(expr, symbol_names=names)


def _dense_steps(spec: ArchitectureSpec, catalogue: CustomCatalogue) -> list[Step]:
    steps: list[Step] = []
    for index, layer in enumerate(spec.dense, start=1):
        act = _activation(spec, catalogue, layer.activation)
        params = ", ".join(f"{k} = {v:g}" for k, v in layer.parameters.items())
        fprime = _latex(act.derivative.subs(Z, sp.Symbol(r"\delta")))
        steps.append(
            Step(
                f"Dense layer {index} ({layer.width}, {layer.activation}{', ' + params if params else ''})",
                rf"\mathbf q_{index}=f_{index}(W_{index}\mathbf q_{index - 1}+\boldsymbol\beta_{index}),\quad "
                rf"\frac{{\partial\mathbf q_{index}}}{{\partial\mathbf q_{index - 1}}}"
                rf"=\operatorname{{diag}}\big(f_{index}'(\boldsymbol\delta_{index})\big)W_{index}\\"
                rf"f_{index}'(\delta)={fprime}",
                f"q_{index} = {layer.activation}(W_{index} q_{index - 1} + b_{index}); "
                f"f'(z) = {sp.sstr(act.derivative)} (Eq. 16-20)",
            )
        )
    return steps


def _output_steps(spec: ArchitectureSpec) -> list[Step]:
    steps: list[Step] = []
    last = len(spec.dense) + 1
    steps.append(
        Step(
            f"Output layer ({spec.classes} classes)",
            rf"\mathbf y=W_{last}\mathbf q_{last - 1}+\boldsymbol\beta_{last}",
            f"y = W_{last} q_{last - 1} + b_{last}",
        )
    )
    chain = r"\,".join(
        rf"\operatorname{{diag}}(f_{i}'(\boldsymbol\delta_{i}))W_{i}" for i in range(len(spec.dense), 0, -1)
    )
    steps.append(
        Step(
            "Grad-CAM chain (Eq. 9)",
            rf"\frac{{\partial\mathbf y}}{{\partial\mathbf x}}=W_{last}\,{chain}",
            f"dy/dx = W_{last} " + " ".join(f"diag(f_{i}') W_{i}" for i in range(len(spec.dense), 0, -1)),
        )
    )
    return steps


def _pca_steps(spec: ArchitectureSpec) -> list[Step]:
    steps: list[Step] = []
    a = spec.pca_after
    pca_chain = r"\,".join(rf"\operatorname{{diag}}(f_{i}'(\boldsymbol\delta_{i}))W_{i}" for i in range(a, 0, -1))
    vt = r"\operatorname{diag}(\boldsymbol\lambda)^{-1/2}V^\top" if spec.whiten else r"V^\top"
    steps.append(
        Step(
            (f"PCA layer on the output of dense layer {a}" if a else "PCA layer on the pooled features")
            + f" ({spec.n_components} components{', whitened' if spec.whiten else ''})",
            rf"\mathbf p={vt}(\mathbf q_{a}-\mathbf u),\quad "
            rf"\frac{{\partial\mathbf p}}{{\partial\mathbf x}}={vt}\,{pca_chain}",
            f"p = {'diag(lambda)^(-1/2) ' if spec.whiten else ''}V^T (q_{a} - u); dp/dx = "
            f"{'diag(lambda)^(-1/2) ' if spec.whiten else ''}V^T "
            + " ".join(f"diag(f_{i}') W_{i}" for i in range(a, 0, -1))
            + " (Eq. 5, 13, 23)",
        )
    )
    return steps


def _svm_steps(spec: ArchitectureSpec, catalogue: CustomCatalogue) -> list[Step]:
    steps: list[Step] = []
    kernel = _kernel(spec, catalogue)
    kprime = _latex(kernel.profile_derivative)
    grad = (
        r"\sum_i\alpha_ic_i\,k'(\mathbf s_i^\top\mathbf z)\,\mathbf s_i^\top"
        if kernel.kind == "dot_product"
        else r"\sum_i\alpha_ic_i\,2k'(\lVert\mathbf s_i-\mathbf z\rVert^2)(\mathbf z-\mathbf s_i)^\top"
    )
    scale = r"\operatorname{diag}(\boldsymbol\sigma)^{-1}" if spec.scaler else ""
    z = (
        r"\mathbf z=\operatorname{diag}(\boldsymbol\sigma)^{-1}(\mathbf p-\mathbf m)"
        if spec.scaler
        else r"\mathbf z=\mathbf p"
    )
    steps.append(
        Step(
            f"SVM ({spec.svm_kind}, {spec.kernel} kernel{', standardised scores' if spec.scaler else ''})",
            rf"{z},\quad a(\mathbf z)=\sum_i\alpha_ic_iK(\mathbf s_i,\mathbf z)+g\\"
            rf"\frac{{\partial a}}{{\partial\mathbf x}}=\Big({grad}\Big){scale}\,"
            rf"\frac{{\partial\mathbf p}}{{\partial\mathbf x}}\\k(u)={_latex(kernel.profile)},\quad k'(u)={kprime}",
            f"a(z) = sum_i alpha_i c_i K(s_i, z) + g; k(u) = {sp.sstr(kernel.profile)}, "
            f"k'(u) = {sp.sstr(kernel.profile_derivative)} (Eq. 6, 15, 24)",
        )
    )
    return steps


def _map_steps() -> list[Step]:
    steps: list[Step] = []
    steps.append(
        Step(
            "Channel weights and maps (Eq. 9, 10, 14)",
            r"w^t=\sum_{i}\frac{\partial(\cdot)}{\partial x_i^t},\quad "
            r"L=\mathrm{ReLU}\Big(\sum_t w^tF^t\Big),\ P_b^{\pm}=\mathrm{ReLU}\Big(\pm\sum_t w_b^tF^t\Big)",
            "w^t = sum_i d(.)/dx_i^t; L = ReLU(sum_t w^t F^t); P_b^+/- = ReLU(+/- sum_t w_b^t F^t)",
        )
    )
    return steps


def _layer_steps(spec: ArchitectureSpec, catalogue: CustomCatalogue) -> list[Step]:
    steps: list[Step] = []
    layout = "channels-last (Keras)" if spec.channels_last else "channel-major (PyTorch)"
    steps.append(
        Step(
            "Flatten",
            r"\mathbf x=\operatorname{vec}(F)\in\mathbb R^{T M N'}",
            f"x = flatten(F), {layout} order (Eq. 21)",
        )
    )
    steps += _dense_steps(spec, catalogue) + _output_steps(spec) + _pca_steps(spec)
    steps += _svm_steps(spec, catalogue) + _map_steps()
    return steps


def derive_architecture(spec: ArchitectureSpec) -> ArchitectureDerivation:
    """Parse the spec's expressions, prove every block it uses, and write out its chain.

    Proofs: each custom activation's stable forward equals the user's expression and its f′
    equals d/dz of it; the dense block for every activation the head uses; the PCA block
    (plain or whitened); the SVM block for the spec's kernel. A spec with expressions of its own
    is derived under the budget of :mod:`derivations.budget` (an overrun: ``BudgetExceeded``).
    """
    if not (spec.activations or spec.kernels):
        return _derive_architecture(spec)
    return run_within_budget(_derive_architecture, spec, what=f"deriving {_expressions(spec)}")


def _expressions(spec: ArchitectureSpec) -> str:
    """The spec's own expressions, for a message: ``activations.a = '...', kernels.k = '...'``."""
    items = [f"activations.{n} = {a.expression!r}" for n, a in sorted(spec.activations.items())]
    items += [f"kernels.{n} = {k.expression!r}" for n, k in sorted(spec.kernels.items())]
    text = ", ".join(items)
    return text if len(text) <= 300 else text[:297] + "..."


def _derive_architecture(spec: ArchitectureSpec) -> ArchitectureDerivation:
    start = time.perf_counter()
    catalogue = parse_custom_catalogue(spec)
    proofs: list[ProofResult] = []
    for act in catalogue.activations:
        proofs += [prove_activation_forward(act), prove_activation_derivative(act)]
    for name in dict.fromkeys(layer.activation for layer in spec.dense):
        proofs.append(prove_dense_block(_activation(spec, catalogue, name)))
    proofs.append(prove_pca_block(next(v for v in PCA_VARIANTS if v.whiten == spec.whiten)))
    kernels = {k.name: k for k in catalogue.kernels}
    for kernel in dict.fromkeys([_kernel(spec, catalogue), *kernels.values()]):
        proofs.append(prove_svm_block(kernel))
    steps = _layer_steps(spec, catalogue)
    return ArchitectureDerivation(spec, catalogue, steps, proofs, time.perf_counter() - start)
