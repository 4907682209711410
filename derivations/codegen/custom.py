"""Render a spec's own activations and kernels into one Python module for the user's directory.

Same pipeline and templates as the package's generated code (cse → StableTorchPrinter →
Jinja2 → ruff format), so the output is a pure function of the spec's validated content and
the tool versions: regenerating it is byte-identical, which is how loaders check it.
"""

from __future__ import annotations

import sympy as sp

from derivations.architecture import ArchitectureSpec, plain_text_problem
from derivations.budget import run_within_budget
from derivations.codegen.render import (
    activation_context,
    format_source,
    kernel_context,
    ruff_version,
    template_environment,
)
from derivations.custom import CustomCatalogue, parse_custom_catalogue

__all__ = ["CUSTOM_MODULE", "render_custom_module"]

#: File name of the generated module inside the user's ``--out`` directory.
CUSTOM_MODULE = "cadcam_custom.py"


def render_custom_module(spec: ArchitectureSpec, catalogue: CustomCatalogue | None = None) -> str:
    """The text of ``cadcam_custom.py`` for ``spec`` (nothing is written), printed under the
    derivation budget (:mod:`derivations.budget`)."""
    return run_within_budget(_render, spec, catalogue, what=f"generating the code of spec {spec.sha256()[:12]}")


def _render(spec: ArchitectureSpec, catalogue: CustomCatalogue | None) -> str:
    catalogue = catalogue or parse_custom_catalogue(spec)
    activations = [activation_context(a) for a in catalogue.activations]
    kernels = [kernel_context(k) for k in catalogue.kernels]
    exports = sorted(
        ["ACTIVATIONS", "KERNELS", "SPEC_SHA256"]
        + [n for a in catalogue.activations for n in (a.name, f"{a.name}_derivative")]
        + [
            f"{k.name}_{part}"
            for k in catalogue.kernels
            for part in ("profile", "profile_derivative", "kernel", "decision", "decision_gradient")
        ]
    )
    source = (
        template_environment()
        .get_template("custom.py.j2")
        .render(
            spec_sha256=spec.sha256(),
            sympy_version=sp.__version__,
            ruff_version=ruff_version(),
            activations=activations,
            kernels=kernels,
            exports=exports,
        )
    )
    source = format_source(source, CUSTOM_MODULE)
    for line_number, line in enumerate(source.split("\n"), 1):  # the last guard: nothing may end a line but \n
        problem = plain_text_problem(line)
        if problem:
            raise ValueError(f"{CUSTOM_MODULE}: line {line_number}: {problem}; refusing to write it")
    return source
