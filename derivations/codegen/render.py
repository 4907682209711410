"""Render the catalogue into ``cadcam_numeric/generated/`` and check committed code for drift.

Pipeline: SymPy expression → common-subexpression elimination (``sympy.cse``) →
:class:`~derivations.codegen.printer.StableTorchPrinter` → Jinja2 template (``StrictUndefined``)
→ ``ruff format``. The output is a pure function of the catalogue, the templates, SymPy's and
ruff's versions: no timestamps, so regeneration is byte-identical.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import jinja2
import sympy as sp

from derivations import activations as activation_catalogue
from derivations import kernels as kernel_catalogue
from derivations.activations import Activation
from derivations.block_formulas import BLOCK_FORMULAS, interpolation_slope
from derivations.blocks import printed_formula_proofs
from derivations.codegen.matrix_printer import batched_torch
from derivations.codegen.printer import StableTorchPrinter, numeric_constants_to_floats
from derivations.kernels import Kernel
from derivations.pca import PCA_VARIANTS

__all__ = [
    "DEFAULT_OUTPUT",
    "activation_context",
    "catalogue_hash",
    "check",
    "format_source",
    "kernel_context",
    "render_all",
    "ruff_version",
    "template_environment",
    "write",
]

TEMPLATES = Path(__file__).parent / "templates"
#: Where ``generate`` writes by default: the numeric package inside this source tree.
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "cadcam_numeric" / "generated"
OUTPUTS = {
    "__init__.py": "init.py.j2",
    "activations.py": "activations.py.j2",
    "kernels.py": "kernels.py.j2",
    "blocks.py": "blocks.py.j2",
}


def catalogue_hash() -> str:
    """sha256 of a canonical description of every catalogue entry (SymPy ``srepr``)."""
    doc = {
        "activations": [
            {
                "name": a.name,
                "forward": sp.srepr(a.forward),
                "derivative": sp.srepr(a.derivative),
                "definition": sp.srepr(a.elementary_definition),
                "torch": a.torch_module,
                "fixed": a.torch_fixed,
                "parameters": [list(map(str, p.__dict__.values())) for p in a.parameters],
                "kinks": [[sp.srepr(x), sp.srepr(y)] for x, y in a.kink_derivatives],
            }
            for a in activation_catalogue.ACTIVATIONS
        ],
        "kernels": [
            {
                "name": k.name,
                "kind": k.kind,
                "profile": sp.srepr(k.profile),
                "parameters": [list(map(str, p.__dict__.values())) for p in k.parameters],
            }
            for k in kernel_catalogue.KERNELS
        ],
        "pca": [[v.name, v.whiten] for v in PCA_VARIANTS],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _ruff_binary() -> str:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError as exc:  # pragma: no cover - ruff is a declared dependency
        raise RuntimeError("code generation formats with ruff: pip install the project's dependencies") from exc
    return str(find_ruff_bin())


def ruff_version() -> str:
    out = subprocess.run([_ruff_binary(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]


def format_source(source: str, filename: str) -> str:
    result = subprocess.run(
        [_ruff_binary(), "format", "--isolated", "--line-length", "100", "--stdin-filename", filename, "-"],
        input=source,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ruff could not format generated {filename}:\n{result.stderr}\n{source}")
    return result.stdout


def _print_with_cse(expr: sp.Expr, like: str, scalars: frozenset[str]) -> tuple[list[tuple[str, str]], str]:
    """Assignments for common subexpressions and the final expression, as PyTorch code."""
    printer = StableTorchPrinter(like, scalars)
    replacements, (reduced,) = sp.cse(numeric_constants_to_floats(expr), symbols=sp.numbered_symbols("t"))
    tensors = {like}
    lines = []
    for sym, sub in replacements:
        code = printer.doprint(sub)
        if not ({s.name for s in sub.free_symbols} & tensors):
            code = f"torch.zeros_like({like}) + {code}"
        tensors.add(sym.name)
        lines.append((sym.name, code))
    printer.scalars = scalars
    final = printer.doprint(reduced)
    if not ({s.name for s in reduced.free_symbols} & tensors):
        final = f"torch.zeros_like({like}) + {final}"
    return lines, final


def activation_context(act: Activation) -> dict[str, object]:
    scalars = frozenset(p.name for p in act.parameters)
    fwd_lines, fwd = _print_with_cse(act.forward, "z", scalars)
    der_lines, der = _print_with_cse(act.derivative, "z", scalars)
    params = ", ".join(
        f'"{p.name}": ParameterInfo("{p.torch_attribute}", {p.default!r}, {p.low!r}, {p.high!r})'
        for p in act.parameters
    )
    kinks = ", ".join(
        f"f'({x}) = {sp.N(y, 17) if y.is_number and not y.is_Integer else y}" for x, y in act.kink_derivatives
    )
    return {
        "name": act.name,
        "title": act.name.replace("_", " "),
        "description": act.description,
        "forward_str": sp.sstr(act.forward),
        "derivative_str": sp.sstr(act.derivative),
        "forward_cse": fwd_lines,
        "forward_code": fwd,
        "derivative_cse": der_lines,
        "derivative_code": der,
        "parameters": [{"name": p.name, "default": repr(p.default)} for p in act.parameters],
        "torch_module": act.torch_module,
        "torch_fixed": repr(dict(act.torch_fixed)),
        "parameter_table": "{" + params + "}",
        "kinks": kinks,
        "kink_points": repr(tuple(str(x) for x, _ in act.kink_derivatives)),
    }


def kernel_context(kernel: Kernel) -> dict[str, object]:
    names = [p.name for p in kernel.parameters]
    scalars = frozenset(names)
    profile_cse, profile = _print_with_cse(kernel.profile, "u", scalars)
    derivative_cse, derivative = _print_with_cse(kernel.profile_derivative, "u", scalars)
    signature = "".join(f", {p.name}: {'int' if p.integer else 'float'}" for p in kernel.parameters)
    if kernel.kind == "dot_product":
        gradient = "d a/d p = sum_i alpha_i c_i k'(p_i^T p) p_i^T"
    else:
        gradient = "d a/d p = sum_i alpha_i c_i 2 k'(|p_i - p|^2) (p - p_i)^T"
    params = ", ".join(
        f'"{p.name}": ParameterInfo("{p.sklearn_attribute}", None, {p.low!r}, {p.high!r}, {p.integer})'
        for p in kernel.parameters
    )
    return {
        "name": kernel.name,
        "kind": kernel.kind,
        "description": kernel.description,
        "profile_str": sp.sstr(kernel.profile),
        "derivative_str": sp.sstr(kernel.profile_derivative),
        "profile_cse": profile_cse,
        "profile_code": profile,
        "derivative_cse": derivative_cse,
        "derivative_code": derivative,
        "signature": signature,
        "call": "".join(f", {n}" for n in names),
        "argument": "dot_products" if kernel.kind == "dot_product" else "squared_distances",
        "gradient_str": gradient,
        "parameter_table": "{" + params + "}",
    }


def template_environment() -> jinja2.Environment:
    """The Jinja2 environment of every generated file (undefined names are errors)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_all() -> dict[str, str]:
    """Every generated file's text, keyed by file name (nothing is written)."""
    env = template_environment()
    block_proofs = printed_formula_proofs()
    unproved = [p.name for p in block_proofs if not p.holds]
    if unproved:
        raise RuntimeError(f"refusing to generate blocks.py: not proved: {unproved}")
    activations = [activation_context(a) for a in activation_catalogue.ACTIVATIONS]
    kernels = [kernel_context(k) for k in kernel_catalogue.KERNELS]
    activation_names = sorted(
        ["ACTIVATIONS"] + [n for a in activation_catalogue.ACTIVATIONS for n in (a.name, f"{a.name}_derivative")]
    )
    kernel_names = sorted(
        ["KERNELS", "dot_products", "squared_distances"]
        + [
            f"{k.name}_{part}"
            for k in kernel_catalogue.KERNELS
            for part in ("profile", "profile_derivative", "kernel", "decision", "decision_gradient")
        ]
    )
    context = {
        "activation_exports": activation_names,
        "kernel_exports": kernel_names,
        "catalogue_hash": catalogue_hash(),
        "sympy_version": sp.__version__,
        "ruff_version": ruff_version(),
        "activations": activations,
        "kernels": kernels,
        "proofs": [{"statement": p.statement} for p in block_proofs],
        "block_code": {
            **{name: batched_torch(f.expression) for name, f in BLOCK_FORMULAS.items()},
            "interpolation_slope": StableTorchPrinter("y_hi", frozenset()).doprint(interpolation_slope()),
        },
    }
    rendered = {}
    for filename, template in OUTPUTS.items():
        source = env.get_template(template).render(**context, template=template)
        if "ParameterInfo(" in source and "import ParameterInfo" not in source:
            source = source.replace(
                "from cadcam_numeric.catalogue_types import ActivationCode",
                "from cadcam_numeric.catalogue_types import ActivationCode, ParameterInfo",
            ).replace(
                "from cadcam_numeric.catalogue_types import KernelCode",
                "from cadcam_numeric.catalogue_types import KernelCode, ParameterInfo",
            )
        rendered[filename] = format_source(source, filename)
    return rendered


def write(out_dir: Path = DEFAULT_OUTPUT) -> list[Path]:
    """Generate into ``out_dir``; each file is written atomically (temp file + rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in render_all().items():
        target = out_dir / filename
        with tempfile.NamedTemporaryFile("w", dir=out_dir, delete=False, suffix=".tmp", encoding="utf-8") as tmp:
            tmp.write(text)
        Path(tmp.name).replace(target)
        written.append(target)
    return written


def check(committed_dir: Path = DEFAULT_OUTPUT) -> str:
    """Regenerate into a temporary directory and diff against ``committed_dir``.

    Returns the unified diff ('' when in sync). Files in ``committed_dir`` that generation does
    not produce (other than caches) are reported too: nothing may be hand-added there.
    """
    with tempfile.TemporaryDirectory() as tmp:
        fresh_dir = Path(tmp)
        write(fresh_dir)
        chunks = []
        for filename in OUTPUTS:
            fresh = (fresh_dir / filename).read_text(encoding="utf-8").splitlines(keepends=True)
            path = committed_dir / filename
            committed = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
            chunks.extend(difflib.unified_diff(committed, fresh, f"committed/{filename}", f"regenerated/{filename}"))
        extras = (
            sorted(p.name for p in committed_dir.glob("*") if p.name not in OUTPUTS and p.name != "__pycache__")
            if committed_dir.exists()
            else []
        )
        for name in extras:
            chunks.append(f"--- committed/{name}\n+++ (not generated: remove it)\n")
    return "".join(chunks)
