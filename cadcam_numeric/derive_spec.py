"""``cadcam derive SPEC --out DIR``: derive, prove, generate and verify one architecture spec.

Steps, each of which must succeed before anything is written:

1. read and validate the TOML spec (errors name the key);
2. parse its expressions with the whitelist parser and derive its chain with SymPy; every
   proof (custom forward = the user's expression, f′ = d/dz of it, each dense block, the PCA
   block, the SVM block) must hold;
3. render ``cadcam_custom.py`` and run it in memory;
4. verify it against autograd and SymPy (:func:`cadcam_numeric.custom.verify_custom`).

Then DIR receives, as one directory swapped in whole: ``cadcam_custom.py``, ``derivation.tex``
(every step in LaTeX, a standalone document) and ``summary.json`` (the derivation, the proofs,
the verification rows, timings).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cadcam_numeric.atomic import atomic_directory
from cadcam_numeric.custom import CUSTOM_MODULE, CustomCode, module_from_source, render_custom_source, verify_custom
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.verify import VerificationRow

if TYPE_CHECKING:  # annotations only: importing derivations loads SymPy
    from derivations.architecture import ArchitectureSpec
    from derivations.custom import ArchitectureDerivation

__all__ = ["SpecDerivation", "derivation_latex", "derive_spec", "load_spec"]


@dataclass
class SpecDerivation:
    derivation: ArchitectureDerivation
    code: CustomCode
    rows: list[VerificationRow]
    timings: dict[str, float]
    written: list[Path]

    @property
    def ok(self) -> bool:
        return self.derivation.holds and all(r.passed for r in self.rows)


def load_spec(path: str | Path) -> ArchitectureSpec:
    """Read a TOML architecture spec; a bad spec or expression becomes a :class:`CadcamInputError`."""
    from derivations.architecture import SpecError, load_architecture

    try:
        return load_architecture(path)
    except SpecError as exc:
        raise CadcamInputError(str(exc)) from exc


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "^": r"\^{}",
    "~": r"\~{}",
}


def _escape(text: str) -> str:
    """Plain text for LaTeX: every special character escaped in one pass."""
    return re.sub(r"[\\_&%#$^{}~]", lambda m: _LATEX_SPECIAL[m.group()], text)


def derivation_latex(derivation: ArchitectureDerivation) -> str:
    """A standalone LaTeX document with every step of the spec's derivation and its proofs."""
    import sympy as sp

    spec = derivation.spec
    lines = [
        r"\documentclass[11pt]{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\allowdisplaybreaks",
        r"\begin{document}",
        rf"\section*{{Derivation: {_escape(spec.name)}}}",
        rf"Spec sha256 \texttt{{{spec.sha256()[:16]}}}\dots; every step below is proved by SymPy "
        r"and the generated code is verified against PyTorch autograd.",
    ]
    for act in derivation.catalogue.activations:
        lines += [
            rf"\subsection*{{Activation {_escape(act.name)}}}",
            r"\begin{align*}",
            rf"f(z) &= {sp.latex(act.elementary_definition)}\\",
            rf"f(z) &= {sp.latex(act.forward)} \quad\text{{(stable form, proved equal)}}\\",
            rf"f'(z) &= {sp.latex(act.derivative)}",
            r"\end{align*}",
        ]
    for kernel in derivation.catalogue.kernels:
        var = r"\rho=\lVert\mathbf s-\mathbf p\rVert^2" if kernel.kind == "stationary" else r"u=\mathbf s^\top\mathbf p"
        lines += [
            rf"\subsection*{{Kernel {_escape(kernel.name)}}}",
            r"\begin{align*}",
            rf"K(\mathbf s,\mathbf p) &= k({var.split('=')[0]}),\quad {var}\\",
            rf"k(u) &= {sp.latex(kernel.profile)},\qquad k'(u) = {sp.latex(kernel.profile_derivative)}",
            r"\end{align*}",
        ]
    lines.append(r"\subsection*{The chain of this head}")
    for step in derivation.steps:
        lines += [rf"\paragraph{{{_escape(step.title)}}}", r"\begin{gather*}", step.latex, r"\end{gather*}"]
    lines += [r"\subsection*{Proofs}", r"\begin{itemize}"]
    for proof in derivation.proofs:
        verdict = "holds" if proof.holds else "NOT PROVED"
        lines.append(
            rf"\item \texttt{{{_escape(proof.name)}}}: {_escape(proof.statement)} --- {verdict} ({proof.method})"
        )
    lines += [r"\end{itemize}", r"\end{document}", ""]
    return "\n".join(lines)


def derive_spec(spec_path: str | Path, out_dir: str | Path, cases: int = 20, seed: int = 0) -> SpecDerivation:
    """Run the four steps (module docstring); write DIR only when every proof and check passes."""
    from derivations.custom import derive_architecture
    from derivations.expressions import ExpressionError

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    spec = load_spec(spec_path)
    try:
        derivation = derive_architecture(spec)
    except ExpressionError as exc:
        raise CadcamInputError(str(exc)) from exc
    timings["derive_and_prove_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    source = render_custom_source(spec)
    code = module_from_source(source, spec.sha256())
    timings["generate_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    rows = verify_custom(spec, code, cases=cases, seed=seed)
    timings["verify_s"] = time.perf_counter() - t2
    result = SpecDerivation(derivation, code, rows, timings, [])
    if not result.ok:
        return result
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        (tmp / CUSTOM_MODULE).write_text(source, encoding="utf-8")
        (tmp / "derivation.tex").write_text(derivation_latex(derivation), encoding="utf-8")
        summary = {
            **derivation.to_json(),
            "spec_file": str(spec_path),
            "verification": [r.to_json() for r in rows],
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    result.written = [out_dir / CUSTOM_MODULE, out_dir / "derivation.tex", out_dir / "summary.json"]
    return result
