"""Build the derivation report: derivations → LaTeX (``report.tex``) → PDF (pdflatex, in a private temporary directory).

Data flows one way: this module reads ``derivations`` (the symbolic proofs, theorems and
catalogue) and ``cadcam_numeric`` (the verification run and, with a bundle, the pipeline's
outputs); neither imports it. With ``SOURCE_DATE_EPOCH`` set the ``.tex`` is byte-identical
between builds on the same machine (the verification numbers depend on the CPU's floating point,
so the drift test compares a build without them).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy as sp

from derivations.activations import Activation
from derivations.latex import tex_escape
from reports.view import ArchitectureView, view_of_architecture

__all__ = ["LATEX_PACKAGES", "PAPER_SPEC", "ReportBuild", "build_report", "paper_view", "render_tex", "view_of_bundle"]

TEMPLATES = Path(__file__).parent / "templates"
#: the architecture a report describes when it is given neither a spec nor a bundle
PAPER_SPEC = Path(__file__).resolve().parent.parent / "derivations" / "examples" / "paper_head.toml"
LATEX_PACKAGES = "texlive-latex-base texlive-latex-recommended"
LONG = 90  # LaTeX longer than this is scaled to the line width
MAX_FIGURE_BYTES = 50 << 20  # a bundle's figure larger than this is left out


@dataclass
class ReportBuild:
    tex: Path
    pdf: Path | None
    message: str


#: how the report names the spec's classifier (its score is the linear kernel's for the linear kinds)
SVM_KIND_TITLES = {
    "svc": "SVM",
    "nu_svc": r"$\nu$-SVM",
    "linear_svc": "Linear SVM",
    "logistic": "Logistic regression (log-odds, a linear-kernel decision)",
    "lda": "LDA (log-posterior up to a shared term, a linear-kernel decision)",
    "ridge": "Ridge classifier (a linear-kernel decision)",
}


def _fit(latex: str) -> str:
    """Long formulas are shrunk to the line width instead of overflowing the page (never enlarged)."""
    if len(latex) <= LONG:
        return latex
    return r"\resizebox{\ifdim\width>0.85\linewidth 0.85\linewidth\else\width\fi}{!}{$\displaystyle " + latex + "$}"


def latex_of(expr: sp.Expr) -> str:
    """SymPy LaTeX for display: long constants to 10 digits, parameter names upright (not subscripts)."""
    expr = expr.xreplace({f: sp.Float(f, 10) for f in expr.atoms(sp.Float)})
    names = {
        sym: r"\mathrm{" + sym.name.replace("_", r"\_") + "}"
        for sym in expr.free_symbols
        if "_" in sym.name or sym.name in ("coef0", "degree", "threshold", "beta", "alpha")
    }
    names.update({sym: r"\beta" for sym in expr.free_symbols if sym.name == "beta"})
    names.update({sym: r"\alpha" for sym in expr.free_symbols if sym.name == "alpha"})
    return sp.latex(expr, symbol_names=names)


def _date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _fig4(path: Path, gamma: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    d_star = 1 / np.sqrt(2 * gamma)
    d = np.linspace(0, 4 * d_star * 2, 600)
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    for g, style in ((gamma / 4, ":"), (gamma, "-"), (4 * gamma, "--")):
        ax.plot(d, 2 * g * d * np.exp(-g * d**2), style, label=rf"$\gamma$ = {g:g}")
    ax.axvline(d_star, color="tab:red", lw=0.8)
    ax.plot(
        [d_star],
        [np.sqrt(2 * gamma) * np.exp(-0.5)],
        "o",
        color="tab:red",
        label=rf"$d^*=1/\sqrt{{2\gamma}}$ = {d_star:.3f}",
    )
    ax.set(xlabel=r"$d=\|\mathbf{p}_i-\mathbf{p}\|$", ylabel=r"$E(d)$", title="Degree of effect of a support vector")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _activation_latex(a: Activation) -> dict[str, str]:
    kinks = ", ".join(f"$f'({latex_of(x)})={latex_of(y)}$" for x, y in a.kink_derivatives)
    return {
        "name": tex_escape(a.name),
        "forward": _fit(latex_of(a.forward)),
        "derivative": _fit(latex_of(a.derivative)),
        "derivative_short": _fit(latex_of(a.derivative.subs(sp.Symbol("z", real=True), sp.Symbol(r"\delta")))),
        "kinks": kinks,
        "latex_name": a.latex_name,
        "torch": tex_escape(a.torch_module),
    }


def _verification_rows(view: ArchitectureView, cases: int, seed: int) -> list:
    """``cadcam verify`` (the catalogue against autograd) plus ``cadcam verify SPEC`` (this
    architecture's own functions and chain), run now."""
    from cadcam_numeric.verification.catalogue import verify_all

    return verify_all(cases=cases, seed=seed) + view.verification_rows(cases, seed)


def _context(
    view: ArchitectureView, verify: bool, cases: int, seed: int, bundle: Path | None, out: Path, command: str
) -> dict[str, object]:
    import sklearn
    import torch

    from cadcam_numeric import __version__
    from cadcam_numeric.generated import CATALOGUE_SHA256
    from derivations.activations import ACTIVATIONS
    from derivations.kernels import KERNELS
    from derivations.prove_all import all_proofs
    from derivations.table2 import TABLE2_CASES, table2_proof_name
    from derivations.theorems import all_theorems

    spec = view.spec
    t, m, n = view.feature_maps
    m2, n2 = (m // 2, n // 2) if view.pooling_in_head else (m, n)
    widths = [t * m2 * n2, *spec.widths, spec.classes]
    activations = [_activation_latex(a) for a in view.distinct_activations]
    layers = [
        {
            "index": i,
            "inp": widths[i - 1],
            "out": widths[i],
            "pca": i == spec.pca_after,
            "activation_latex": view.activations[i - 1].latex_name if i <= len(spec.widths) else r"\mathrm{id}",
        }
        for i in range(1, len(widths))
    ]
    kernel = view.kernel
    grad = (
        r"k'(\mathbf p_i^\top\mathbf p)\,\mathbf p_i^\top"
        if kernel.kind == "dot_product"
        else r"2k'(\lVert\mathbf p_i-\mathbf p\rVert^2)\,(\mathbf p-\mathbf p_i)^\top"
    )
    big_l = len(widths) - 1
    chain_cls = r"W_{%d}\," % big_l + r"\,".join(f"J_{{{i}}}" for i in range(big_l - 1, 1, -1)) + r"\,J_1^t"
    chain_pca = (r"\operatorname{diag}(\boldsymbol\lambda)^{-1/2}" if spec.whiten else "") + r"V^\top\,"
    if spec.pca_after:
        chain_pca += r"\,".join(f"J_{{{i}}}" for i in range(spec.pca_after, 1, -1)) + r"\,J_1^t"
    else:  # PCA on x itself: ∂x/∂x^t selects channel t's columns
        chain_pca += r"E_t"
    proofs = []
    table2_results = {}
    for r in all_proofs():  # each proof runs once; Table 2's cases are reported from the same results
        if r.name.startswith("table2/"):
            table2_results[r.name] = r
            continue
        proofs.append(
            {
                "name": tex_escape(r.name),
                "statement": tex_escape(r.statement),
                "result": ("proved" if r.holds else r"\textcolor{red}{NOT PROVED}") + f" ({tex_escape(r.method)})",
            }
        )
    table2 = []
    for case in TABLE2_CASES:
        res = table2_results[table2_proof_name(case)]
        table2.append(
            {
                "name": tex_escape(case.name),
                "latex": _fit(case.latex()),
                "result": "proved" if res.holds else r"\textcolor{red}{NOT PROVED}",
            }
        )
    method = "generic-$f$ chain identity + activation lemma"
    theorems = []
    for th in all_theorems():
        env = (
            "erratum" if th.key.startswith("erratum") else "extension" if th.key.startswith("extension") else "theorem"
        )
        # the environment already prints "Theorem 1" / "Erratum" / "Extension": keep the rest
        title = re.sub(r"^Theorem \d+ \((.*)\)$", r"\1", th.title)
        title = re.sub(r"^Extension \(([^)]*)\)", r"\1", re.sub(r"^Erratum: ", "", title))
        theorems.append(
            {
                "env": env,
                "title": tex_escape(title),
                "statement": tex_escape(th.statement),
                "statement_latex": th.statement_latex,
                "holds": th.holds,
                "steps": [
                    {"description": tex_escape(s.description), "latex": _fit(s.latex), "holds": s.holds}
                    for s in th.proof_steps
                ],
            }
        )
    verification, passed = [], 0
    if verify:
        for row in _verification_rows(view, cases, seed):
            passed += row.passed
            verification.append(
                {
                    "function": tex_escape(row.function),
                    "dtype": row.dtype,
                    "cases": row.cases,
                    "max_abs": f"{row.max_abs_error:.1e}",
                    "max_rel": f"{row.max_rel_error:.1e}",
                    "result": "pass" if row.passed else r"\textcolor{red}{FAIL}",
                }
            )
    gamma = view.gamma
    _fig4(out / "fig4_degree_of_effect.png", gamma)
    params = ", ".join(f"${sp.latex(sp.Symbol(k))}={v:g}$" for k, v in view.svm_params.items())
    return {
        "spec_name": tex_escape(spec.name),
        "date": _date(),
        "T": t,
        "M": m,
        "N": n,
        "M2": m2,
        "N2": n2,
        "pooling_in_head": view.pooling_in_head,
        "D0": widths[0],
        "layers": layers,
        "B": spec.n_components,
        "pca_after": spec.pca_after,
        "pca_reads": f"on dense layer $l={spec.pca_after}$"
        if spec.pca_after
        else r"on the pooled, flattened features $\mathbf x$ ($l=0$; $E_t$ selects the columns of channel $t$)",
        "pca_kind": {
            "pca": "PCA",
            "incremental_pca": "IncrementalPCA (the same linear form)",
            "truncated_svd": r"TruncatedSVD (the same linear form with $\mathbf u=\mathbf 0$)",
        }[spec.pca_kind],
        "pca_scaler": spec.pca_scaler,
        "svm_kind": SVM_KIND_TITLES[spec.svm_kind],
        "pca_latex": (r"\operatorname{diag}(\boldsymbol\lambda)^{-1/2}" if spec.whiten else "")
        + (r"V^\top(\mathbf q_{%d}-\mathbf u)" % spec.pca_after if spec.pca_after else r"V^\top(\mathbf x-\mathbf u)"),
        "pca_jacobian_latex": (r"\operatorname{diag}(\boldsymbol\lambda)^{-1/2}" if spec.whiten else "") + r"V^\top",
        "svm_input": "standardised PCA scores" if spec.scaler else "the PCA scores",
        "kernel_name": tex_escape(kernel.name),
        "kernel_latex": kernel.latex,
        "kernel_params": params,
        "kernel_gradient_latex": grad,
        "kernel_profile": latex_of(kernel.profile),
        "kernel_profile_derivative": latex_of(kernel.profile_derivative),
        "kernel_variable": r", $u=\mathbf p_i^\top\mathbf p$"
        if kernel.kind == "dot_product"
        else r", $u=\lVert\mathbf p_i-\mathbf p\rVert^2$",
        "activations": activations,
        "flatten_order": "channels-last, Keras" if spec.channels_last else "channel-major",
        "spec_steps": [
            {"title": tex_escape(st.title), "latex": r"\\ ".join(_fit(line) for line in st.latex.split(r"\\"))}
            for st in view.steps
        ],
        "spec_proofs": [
            {
                "name": tex_escape(p.name),
                "statement": tex_escape(p.statement),
                "result": ("proved" if p.holds else r"\textcolor{red}{NOT PROVED}") + f" ({tex_escape(p.method)})",
            }
            for p in view.spec_proofs
        ],
        "block_proofs": proofs,
        "chain_gradcam": chain_cls,
        "chain_pca": chain_pca,
        "table2": table2,
        "table2_method": method,
        "theorems": theorems,
        "gamma": f"{gamma:g}",
        "d_star": f"{1 / (2 * gamma) ** 0.5:.4f}",
        "e_max": f"{(2 * gamma) ** 0.5 * 0.6065306597:.4f}",
        "verification": verification,
        "verify_cases": cases,
        "verify_seed": seed,
        "verify_passed": passed,
        "verify_total": len(verification),
        "bundle": _bundle_context(bundle, out) if bundle is not None else None,
        "versions": {
            "cadcam": __version__,
            "sympy": sp.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
        },
        "catalogue_short": CATALOGUE_SHA256[:16],
        "spec_hash_short": spec.sha256()[:16],
        "command": tex_escape(command),
        "catalogue": [
            {
                "name": tex_escape(a.name),
                "torch": tex_escape(a.torch_module),
                "forward": _fit(latex_of(a.forward)),
                "derivative": _fit(latex_of(a.derivative)),
            }
            for a in ACTIVATIONS
        ],
        "kernels": [
            {
                "name": k.name,
                "latex": k.latex,
                "profile": latex_of(k.profile),
                "derivative": latex_of(k.profile_derivative),
                "variable": r"$u=\mathbf s^\top\mathbf p$"
                if k.kind == "dot_product"
                else r"$u=\lVert\mathbf s-\mathbf p\rVert^2$",
            }
            for k in KERNELS
        ],
    }


FIGURES = (
    (
        "fig6_contribution_ratios.png",
        0.5,
        "Contribution ratio of each principal component: the share (\\%) of the "
        "variance of the dense layer's outputs on the training set that the component carries (the paper's Fig.~6).",
    ),
    (
        "fig7_pca_scatter.png",
        0.6,
        "The test set's PCA scores $(p_1,p_2,p_3)$ coloured by true class (the paper's Fig.~7).",
    ),
    (
        "fig5_validation_accuracy.png",
        0.55,
        "Validation accuracy per training epoch; the dashed line marks the epoch kept (best validation accuracy).",
    ),
    (
        "fig8_maps.png",
        1.0,
        "Maps for one test image per class (the paper's Fig.~8 style). Columns: the image; Grad-CAM of the "
        "CNN's predicted class; SVM-Grad-CAM of the SVM's predicted class; then for each principal component $b$ the "
        "pair $P_b^{\\oplus}$ (evidence that raises $p_b$) and $P_b^{\\ominus}$ (evidence that lowers it), both drawn "
        "on one colour scale $[0,\\nu_b]$ (Eq.~12) whose maximum the colour bar gives. Row labels: image, true class "
        "and the two predictions.",
    ),
)


def _own_regular_file(folder: Path, name: str) -> bytes | None:
    """The bytes of ``folder/name`` if it is a regular file of that folder — not a symbolic link,
    not a FIFO or device, not resolving outside ``folder`` — else None (it is left out)."""
    path = folder / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode) or not path.resolve().is_relative_to(folder.resolve()):
            return None
        data = fh.read(MAX_FIGURE_BYTES + 1)
    return data if len(data) <= MAX_FIGURE_BYTES else None


def _is_png(data: bytes) -> bool:
    """Whether ``data`` is a PNG that decodes whole (a corrupt one would stop pdflatex)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG" or img.width * img.height > 64_000_000:
                return False
            img.load()
    except Exception:  # any decoding failure: the figure is left out
        return False
    return True


def _table3_rows(run_dir: Path) -> list[dict[str, str]]:
    """Table 3 from the run's ``table3.csv`` (a regular file of the run folder); a malformed table
    is left out, not typeset."""
    data = _own_regular_file(run_dir, "table3.csv")
    if data is None:
        return []
    try:
        return [
            {
                "model": tex_escape(r["model"]),
                "train": f"{float(r['train_macro_f1']):.3f}",
                "test": f"{float(r['test_macro_f1']):.3f}",
            }
            for r in csv.DictReader(io.StringIO(data.decode("utf-8")))
        ]
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, csv.Error):
        return []


def _bundle_context(bundle: Path, out: Path) -> dict[str, object]:
    run_dir = Path(bundle).resolve().parent
    rows = _table3_rows(run_dir)
    figures = []
    for name, width, caption in FIGURES:
        data = _own_regular_file(run_dir, name)
        if data is not None and _is_png(data):
            (out / name).write_bytes(data)
            figures.append({"file": name, "width": width, "caption": caption})
    return {"path": tex_escape(str(bundle)), "table3": rows, "figures": figures}


def render_tex(
    view: ArchitectureView | None = None,
    out: Path = Path("."),
    verify: bool = True,
    cases: int = 20,
    seed: int = 0,
    bundle: Path | None = None,
    command: str = "cadcam report --out DIR",
) -> str:
    """The report's LaTeX for ``view`` (default: the paper's architecture, :data:`PAPER_SPEC`)."""
    view = view if view is not None else paper_view()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    return env.get_template("report.tex.j2").render(**_context(view, verify, cases, seed, bundle, out, command))


def paper_view() -> ArchitectureView:
    """The view of the paper's architecture (``derivations/examples/paper_head.toml``)."""
    from cadcam_numeric.spec.architecture import load_architecture_file

    arch = load_architecture_file(PAPER_SPEC, None)
    return view_of_architecture(arch.spec, arch.code)


def view_of_bundle(bundle: Path, derived: Path | None = None) -> ArchitectureView:
    """The architecture a bundle records: the spec it embeds (``derived``: that spec's derive
    directory, when it has code of its own), else the spec of its pipeline settings; the
    feature-map shape as recorded. The bundle is validated first, as every command does."""
    from cadcam_numeric.pipeline.bundle import read_bundle_document
    from cadcam_numeric.spec.architecture import architecture_from_text, spec_of_pipeline_config
    from cadcam_numeric.spec.code import empty_code

    doc = read_bundle_document(Path(bundle))
    shape = tuple(doc["backbone"]["feature_shape"])
    if doc.get("architecture"):
        arch = architecture_from_text(doc["architecture"]["toml"], derived, "bundle: architecture")
        return view_of_architecture(arch.spec, arch.code, shape)
    config = {**doc["config"], **doc["backbone"], **doc["head"], "backbone": doc["backbone"]["name"]}
    config.update(pca_after=doc["pca"]["after"], n_components=doc["pca"]["n_components"], whiten=doc["pca"]["whiten"])
    name = f"bundle: {doc['backbone']['name']} ({doc['config'].get('data', '')}), default SVM {doc['default_svm']}"
    spec = spec_of_pipeline_config(config, doc["svms"][doc["default_svm"]], name)
    return view_of_architecture(spec, empty_code(spec), shape)


def _latex_env(work: Path) -> dict[str, str]:
    """pdflatex's environment: no shell escape, reads and writes only below the working directory
    (``openin_any``/``openout_any`` paranoid), font caches in the private working directory (so a
    missing or read-only ``HOME`` does not break the build), reproducible dates."""
    return {
        **os.environ,
        "FORCE_SOURCE_DATE": "1",
        "openin_any": "p",
        "openout_any": "p",
        "shell_escape": "f",
        "HOME": os.environ.get("HOME") or str(work),
        "TEXMFVAR": str(work / ".texmf-var"),
    }


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to kill it when cadcam dies (no orphaned pdflatex
    after a ``kill -9``); elsewhere a no-op."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pdflatex(work: Path) -> subprocess.CompletedProcess:
    """pdflatex directly (no latexmk: it would read a Perl ``latexmkrc``), rerun until the
    cross-references and longtable widths settle (at most 4 passes)."""
    command = [
        shutil.which("pdflatex") or "pdflatex",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-no-shell-escape",
        "report.tex",
    ]
    for _ in range(4):
        result = subprocess.run(
            command,
            cwd=work,
            capture_output=True,
            text=True,
            env=_latex_env(work),
            timeout=600,
            preexec_fn=_die_with_parent,
        )
        log = (work / "report.log").read_text(errors="replace") if (work / "report.log").is_file() else ""
        if result.returncode != 0 or not re.search(r"Rerun to get|Label\(s\) may have changed|Rerun LaTeX", log):
            break
    return result


def build_report(
    out: Path,
    view: ArchitectureView | None = None,
    bundle: Path | None = None,
    verify: bool = True,
    cases: int = 20,
    seed: int = 0,
    pdf: bool = True,
    command: str = "cadcam report --out DIR",
    derived: Path | None = None,
) -> ReportBuild:
    """Write ``out/report.tex`` and, when LaTeX is installed, ``out/report.pdf``, with their figures.

    The architecture is ``view``, else the bundle's, else the paper's (:data:`PAPER_SPEC`);
    ``derived`` is the derive directory of a bundle made from a spec with its own code. Everything
    is built in a fresh private temporary directory (nothing in ``out`` is read or run) and moved
    into ``out`` only when the build succeeded, each file atomically; a ``report.pdf`` left from an
    earlier build is removed when this build makes none, so the PDF beside the ``.tex`` is always
    this build's.
    """
    from cadcam_numeric.atomic import atomic_write_bytes, claim_directory

    out = claim_directory(Path(out))  # new, empty or cadcam's own: nothing of yours is overwritten
    if view is None:
        view = view_of_bundle(bundle, derived) if bundle is not None else paper_view()
    with tempfile.TemporaryDirectory(prefix="cadcam-report-") as tmp:
        work = Path(tmp)
        (work / "report.tex").write_text(render_tex(view, work, verify, cases, seed, bundle, command), "utf-8")
        have_latex = shutil.which("pdflatex") is not None
        if pdf and have_latex:
            result = _pdflatex(work)
            if result.returncode != 0 or not (work / "report.pdf").is_file():
                log = (
                    (work / "report.log").read_text(errors="replace")[-3000:] if (work / "report.log").is_file() else ""
                )
                raise RuntimeError(f"pdflatex failed on report.tex (nothing was written to {out}):\n{log}")
        made_pdf = (work / "report.pdf").is_file()
        published = [*sorted(work.glob("*.png")), work / "report.tex", *([work / "report.pdf"] if made_pdf else [])]
        for f in published:
            atomic_write_bytes(out / f.name, f.read_bytes())
    tex, pdf_path = out / "report.tex", out / "report.pdf"
    if not made_pdf:
        pdf_path.unlink(missing_ok=True)
    if not pdf:
        return ReportBuild(tex, None, f"wrote {tex}")
    if not have_latex:
        return ReportBuild(
            tex,
            None,
            f"LaTeX is not installed, so only {tex} was written. Install it with "
            f"`apt-get install -y --no-install-recommends {LATEX_PACKAGES}` and rerun "
            f"(or run `pdflatex report.tex` twice in {out}).",
        )
    return ReportBuild(tex, pdf_path, f"wrote {tex} and {pdf_path}")
