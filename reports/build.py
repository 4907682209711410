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

from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.chance import chance_warning
from derivations.activations import Activation
from derivations.budget import die_with_parent
from derivations.degree_of_effect import degree_of_effect
from derivations.latex import formula_latex, tex_escape
from reports.html import find_katex, tex_to_html, write_katex
from reports.sections import (
    ArchitectureSection,
    BundleSection,
    CatalogueSection,
    EnvironmentSection,
    KernelSection,
    ProofsSection,
    TheoremsSection,
    VerificationSection,
    merged,
)
from reports.view import ArchitectureView, view_of_architecture

__all__ = [
    "LATEX_PACKAGES",
    "PAPER_SPEC",
    "PdfLatexError",
    "ReportBuild",
    "build_report",
    "first_latex_error",
    "paper_view",
    "render_tex",
    "view_of_bundle",
]

TEMPLATES = Path(__file__).parent / "templates"
#: the architecture a report describes when it is given neither a spec nor a bundle
PAPER_SPEC = Path(__file__).resolve().parent.parent / "derivations" / "examples" / "paper_head.toml"
LATEX_PACKAGES = "texlive-latex-base texlive-latex-recommended"
MAX_FIGURE_BYTES = 50 << 20  # a bundle's figure larger than this is left out


@dataclass
class ReportBuild:
    tex: Path
    pdf: Path | None
    message: str
    html: Path | None = None
    html_unreadable: int = 0  # formulas the HTML page could not typeset (shown as source; 0 expected)


#: how the report names the spec's classifier (its score is the linear kernel's for the linear kinds)
SVM_KIND_TITLES = {
    "svc": "SVM",
    "nu_svc": r"$\nu$-SVM",
    "linear_svc": "Linear SVM",
    "logistic": "Logistic regression (log-odds, a linear-kernel decision)",
    "lda": "LDA (log-posterior up to a shared term, a linear-kernel decision)",
    "ridge": "Ridge classifier (a linear-kernel decision)",
}


def _lines(latex: str) -> str:
    r"""A formula as lines of a ``gather*``: split after its top-level ``\quad`` separators (never
    shrunk; the overfull-box check of the suite holds every line within the text width)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(latex):
        ch = latex[i]
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0 and latex.startswith(r"\quad", i):
            parts.append(latex[start:i].rstrip().rstrip(",").rstrip(r"\,").rstrip())
            i += len(r"\quad")
            start = i
            continue
        i += 1
    parts.append(latex[start:])
    return r"\\ ".join(p.strip() for p in parts if p.strip())


#: the reports' formula printer (``derivations.latex.formula_latex``)
latex_of = formula_latex


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


def _fig4_any_kernel(path: Path, doe: object, kernel_name: str) -> None:
    """E of a non-RBF kernel against its variable, with its derived maximiser when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stationary = doe.variable.name == "d"
    centre = doe.maximiser if doe.maximiser is not None else (0.0 if not stationary else 1.0)
    span = max(3.0, 3 * abs(centre)) if doe.maximiser is not None else 4.0
    x = np.linspace(0 if stationary else centre - span, centre + span, 600)
    y = np.broadcast_to(np.asarray(doe.function()(x), dtype=float), x.shape)
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    ax.plot(x, y, "-", label=f"{kernel_name} kernel")
    if doe.maximiser is not None:
        star = "d^*" if stationary else "u^*"
        ax.axvline(doe.maximiser, color="tab:red", lw=0.8)
        ax.plot([doe.maximiser], [doe.maximum], "o", color="tab:red", label=rf"${star}$ = {doe.maximiser:.3f}")
    xlabel = (
        r"$d=\|\mathbf{p}_i-\mathbf{p}\|$" if stationary else r"$u=\mathbf{p}_i^\top\mathbf{p}$ ($\|\mathbf{p}_i\|=1$)"
    )
    ax.set(xlabel=xlabel, ylabel="$E$", title="Degree of effect of a support vector")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _fig4_caption(kernel: object, doe: object, gamma: float) -> str:
    """The caption of the degree-of-effect figure, from the derivation (``derivations.degree_of_effect``)."""
    if kernel.name == "rbf":
        return (
            r"Degree of effect (the paper's Fig.~4) $E(d)=2\gamma d\,e^{-\gamma d^2}$ for $\gamma="
            + f"{gamma:g}"
            + r"$ (this architecture's kernel parameter), with the maximiser $d^*=1/\sqrt{2\gamma}="
            + f"{1 / (2 * gamma) ** 0.5:.4f}"
            + r"$ and the maximum $\sqrt{2\gamma}e^{-1/2}="
            + f"{(2 * gamma) ** 0.5 * 0.6065306597:.4f}"
            + r"$ marked; curves for $\gamma/4$ and $4\gamma$ show the erratum: smaller $\gamma$, larger $d^*$."
        )
    variable = doe.variable.name
    what = (
        r"of the distance $d=\lVert\mathbf p_i-\mathbf p\rVert$"
        if variable == "d"
        else r"of the projection $u=\mathbf p_i^\top\mathbf p$, for $\lVert\mathbf p_i\rVert=1$"
    )
    text = (
        rf"Degree of effect $E={latex_of(doe.expression)}$ of this architecture's \texttt{{{tex_escape(kernel.name)}}} "
        rf"kernel, derived by SymPy as $\lVert\partial K/\partial\mathbf p\rVert$, as a function {what}. "
    )
    if doe.maximiser is not None:
        star = "d^*" if variable == "d" else "u^*"
        return text + rf"Its maximiser ${star}={doe.maximiser:.4f}$ (maximum ${doe.maximum:.4f}$) is marked."
    return text + tex_escape(doe.reason) + "."


def _activation_latex(a: Activation) -> dict[str, str]:
    kinks = ", ".join(f"$f'({latex_of(x)})={latex_of(y)}$" for x, y in a.kink_derivatives)
    return {
        "name": tex_escape(a.name),
        "forward": _lines(latex_of(a.forward)),
        "derivative": _lines(latex_of(a.derivative)),
        "derivative_short": _lines(latex_of(a.derivative.subs(sp.Symbol("z", real=True), sp.Symbol(r"\delta")))),
        "kinks": kinks,
        "latex_name": a.latex_name,
        "torch": tex_escape(a.torch_module),
    }


def _verification_rows(view: ArchitectureView, cases: int, seed: int) -> list:
    """``cadcam verify`` (the catalogue against autograd) plus ``cadcam verify SPEC`` (this
    architecture's own functions and chain), run now."""
    from cadcam_numeric.verification.catalogue import verify_all

    return verify_all(cases=cases, seed=seed) + view.verification_rows(cases, seed)


def _architecture_section(view: ArchitectureView) -> ArchitectureSection:
    """The head as the report writes it: sizes, layers, the PCA and classifier, the chain rules."""
    spec = view.spec
    t, m, n = view.feature_maps
    m2, n2 = (m // 2, n // 2) if view.pooling_in_head else (m, n)
    widths = [t * m2 * n2, *spec.widths, spec.classes]
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
    big_l = len(widths) - 1
    chain_cls = r"W_{%d}\," % big_l + r"\,".join(f"J_{{{i}}}" for i in range(big_l - 1, 1, -1)) + r"\,J_1^t"
    whiten = r"\operatorname{diag}(\boldsymbol\lambda)^{-1/2}" if spec.whiten else ""
    chain_pca = whiten + r"V^\top\,"
    if spec.pca_after:
        chain_pca += r"\,".join(f"J_{{{i}}}" for i in range(spec.pca_after, 1, -1)) + r"\,J_1^t"
    else:  # PCA on x itself: ∂x/∂x^t selects channel t's columns
        chain_pca += r"E_t"
    return ArchitectureSection(
        spec_name=tex_escape(spec.name),
        spec_name_plain=re.sub(r"[^A-Za-z0-9 ,.:()=-]", " ", spec.name),
        T=t,
        M=m,
        N=n,
        M2=m2,
        N2=n2,
        D0=widths[0],
        pooling_in_head=view.pooling_in_head,
        layers=layers,
        B=spec.n_components,
        pca_after=spec.pca_after,
        pca_reads=f"on dense layer $l={spec.pca_after}$"
        if spec.pca_after
        else r"on the pooled, flattened features $\mathbf x$ ($l=0$; $E_t$ selects the columns of channel $t$)",
        pca_kind={
            "pca": "PCA",
            "incremental_pca": "IncrementalPCA (the same linear form)",
            "truncated_svd": r"TruncatedSVD (the same linear form with $\mathbf u=\mathbf 0$)",
        }[spec.pca_kind],
        pca_scaler=spec.pca_scaler,
        svm_kind=SVM_KIND_TITLES[spec.svm_kind],
        pca_latex=whiten
        + (r"V^\top(\mathbf q_{%d}-\mathbf u)" % spec.pca_after if spec.pca_after else r"V^\top(\mathbf x-\mathbf u)"),
        pca_jacobian_latex=whiten + r"V^\top",
        svm_input="standardised PCA scores" if spec.scaler else "the PCA scores",
        activations=[_activation_latex(a) for a in view.distinct_activations],
        flatten_order="channels-last, Keras" if spec.channels_last else "channel-major",
        chain_gradcam=chain_cls,
        chain_pca=chain_pca,
    )


def _kernel_section(view: ArchitectureView) -> KernelSection:
    """The classifier's kernel, its parameters (as math: a name is a symbol, never text), Fig. 4's caption."""
    kernel = view.kernel
    grad = (
        r"k'(\mathbf p_i^\top\mathbf p)\,\mathbf p_i^\top"
        if kernel.kind == "dot_product"
        else r"2k'(\lVert\mathbf p_i-\mathbf p\rVert^2)\,(\mathbf p-\mathbf p_i)^\top"
    )
    doe = degree_of_effect(view.kernel, view.svm_params)
    return KernelSection(
        kernel_name=tex_escape(kernel.name).replace(r"\_", r"\_\allowbreak{}"),
        kernel_latex=kernel.latex,
        kernel_params=", ".join(f"${formula_latex(sp.Symbol(k))}={v:g}$" for k, v in view.svm_params.items()),
        kernel_params_math=r",\ ".join(f"{formula_latex(sp.Symbol(k))}={v:g}" for k, v in view.svm_params.items()),
        kernel_gradient_latex=grad,
        kernel_profile=latex_of(kernel.profile),
        kernel_profile_derivative=latex_of(kernel.profile_derivative),
        kernel_variable=r", $u=\mathbf p_i^\top\mathbf p$"
        if kernel.kind == "dot_product"
        else r", $u=\lVert\mathbf p_i-\mathbf p\rVert^2$",
        gamma=f"{view.gamma:g}",
        fig4_caption=_fig4_caption(view.kernel, doe, view.gamma),
    )


def _proof_result(holds: bool, method: str | None = None) -> str:
    text = "proved" if holds else r"\textcolor{red}{NOT PROVED}"
    return text + (f" ({tex_escape(method)})" if method else "")


def _proofs_section(view: ArchitectureView) -> ProofsSection:
    """Every block proof, Table 2 and the spec's own proofs — each proof run once, here."""
    from derivations.prove_all import all_proofs
    from derivations.table2 import TABLE2_CASES, table2_proof_name

    results = list(all_proofs())
    by_name = {r.name: r for r in results}
    proofs = [
        {"name": tex_escape(r.name), "lines": _lines(r.latex), "result": _proof_result(r.holds, r.method)}
        for r in results
        if not r.name.startswith("table2/")
    ]
    table2 = [
        {
            "name": tex_escape(case.name).replace(" x ", r" $\times$ "),
            "latex": _lines(case.latex()),
            "result": _proof_result(by_name[table2_proof_name(case)].holds),
        }
        for case in TABLE2_CASES
    ]
    held = [r.holds for r in results if not r.name.startswith("table2/")]
    held += [by_name[table2_proof_name(case)].holds for case in TABLE2_CASES]
    return ProofsSection(
        spec_steps=[
            {"title": tex_escape(st.title), "latex": r"\\ ".join(_lines(line) for line in st.latex.split(r"\\"))}
            for st in view.steps
        ],
        spec_proofs=[
            {
                "name": tex_escape(p.name),
                "lines": _lines(p.latex) if p.latex else r"\text{" + tex_escape(p.statement) + "}",
                "result": _proof_result(p.holds, p.method),
            }
            for p in view.spec_proofs
        ],
        block_proofs=proofs,
        table2=table2,
        table2_method="generic-$f$ chain identity + activation lemma",
        proofs_total=len(held),
        proofs_held=sum(held),
    )


def _theorems_section() -> TheoremsSection:
    from derivations.theorems import all_theorems

    theorems = [
        {
            "env": "erratum"
            if th.key.startswith("erratum")
            else "extension"
            if th.key.startswith("extension")
            else "theorem",
            "title": th.title_latex,
            "statement": th.prose_latex,
            "statement_latex": th.statement_latex,
            "holds": th.holds,
            "steps": [{"caption": s.caption, "latex": _lines(s.latex), "holds": s.holds} for s in th.proof_steps],
        }
        for th in all_theorems()
    ]
    return TheoremsSection(
        theorems=theorems, theorems_total=len(theorems), theorems_held=sum(t["holds"] for t in theorems)
    )


def _verification_section(view: ArchitectureView, verify: bool, cases: int, seed: int) -> VerificationSection:
    """The autograd verification table, run now (empty with ``verify=False``)."""
    rows = _verification_rows(view, cases, seed) if verify else []
    table = [
        {
            "function": tex_escape(row.function),
            "dtype": row.dtype,
            "cases": row.cases,
            "max_abs": f"{row.max_abs_error:.1e}",
            "max_rel": f"{row.max_rel_error:.1e}",
            "result": "pass" if row.passed else r"\textcolor{red}{FAIL}",
        }
        for row in rows
    ]
    return VerificationSection(
        verification=table,
        verify_cases=cases,
        verify_seed=seed,
        verify_passed=sum(row.passed for row in rows),
        verify_total=len(table),
        verify_worst_latex=_sci(max((row.max_rel_error for row in rows), default=0.0)),
    )


def _environment_section(view: ArchitectureView, command: str) -> EnvironmentSection:
    """Versions, hashes, the date and the command that rebuilds the report."""
    import sklearn
    import torch

    from cadcam_numeric import __version__
    from cadcam_numeric.generated import CATALOGUE_SHA256

    return EnvironmentSection(
        date=_date(),
        versions={
            "cadcam": __version__,
            "sympy": sp.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
        },
        catalogue_hash=CATALOGUE_SHA256,
        spec_hash=view.spec.sha256(),
        command=tex_escape(command),
    )


def _catalogue_section() -> CatalogueSection:
    from derivations.activations import ACTIVATIONS
    from derivations.kernels import KERNELS

    return CatalogueSection(
        catalogue=[
            {
                "name": tex_escape(a.name),
                "torch": tex_escape(a.torch_module),
                "forward": _lines(latex_of(a.forward)),
                "derivative": _lines(latex_of(a.derivative)),
            }
            for a in ACTIVATIONS
        ],
        kernels=[
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
    )


def _context(
    view: ArchitectureView, verify: bool, cases: int, seed: int, bundle: BundleSection | None, command: str
) -> dict[str, object]:
    """The template's context: the pure sections merged (nothing is written here)."""
    sections = (
        _architecture_section(view),
        _kernel_section(view),
        _proofs_section(view),
        _theorems_section(),
        _verification_section(view, verify, cases, seed),
        _environment_section(view, command),
        _catalogue_section(),
    )
    return {**merged(*sections), "bundle": None if bundle is None else vars(bundle)}


def _write_fig4(view: ArchitectureView, out: Path) -> None:
    """Fig. 4 (the kernel's degree of effect) into the report folder."""
    if view.kernel.name == "rbf":
        _fig4(out / "fig4_degree_of_effect.png", view.gamma)
    else:
        doe = degree_of_effect(view.kernel, view.svm_params)
        _fig4_any_kernel(out / "fig4_degree_of_effect.png", doe, view.kernel.name)


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
        "Maps for one test image of every class (the paper's Fig.~8). Columns: the image; Grad-CAM of the "
        "CNN's predicted class; SVM-Grad-CAM of the SVM's predicted class; then for each principal component $b$ the "
        "pair $P_b^{\\oplus}$ (evidence that raises $p_b$) and $P_b^{\\ominus}$ (evidence that lowers it), both drawn "
        "on one colour scale $[0,\\nu_b]$ (Eq.~12), $\\nu_b$ the largest value of the pair's raw maps, which the "
        "opaque colour bar's top gives. Row labels: image, true class and the two predictions.",
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


def _sci(value: float) -> str:
    """1.2e-15 as LaTeX: 1.2\\times10^{-15}."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return rf"{mantissa}\times10^{{{int(exponent)}}}"


def _results_in_words(rows: list[dict[str, str]]) -> str:
    """Two or three sentences read off Table 3: the best classifier on the test set, and every one
    that memorises its training set (train − test > 0.1), with the γ = 1 explanation for RBF rows."""
    if not rows:
        return ""
    cnn = next((r for r in rows if r["model"] == "CNN"), None)
    others = [r for r in rows if r["model"] != "CNN"]
    sentences = []
    if cnn is not None:
        sentences.append(f"The CNN reaches a test macro-F1 of {cnn['test']} (train {cnn['train']}).")
    if others:
        best = max(others, key=lambda r: float(r["test"]))
        sentences.append(
            f"Of the classifiers on the PCA scores, {best['model']} does best on the test set ({best['test']})."
        )
    for r in others:
        gap = float(r["train"]) - float(r["test"])
        if gap > 0.1:
            why = (
                r" With $\gamma=1$ and unscaled scores that span tens of units, every training point lies many "
                r"$d^*=1/\sqrt{2\gamma}$ from the others (Theorem~2), so the RBF kernel matrix is nearly the identity."
                if "RBF" in r["model"] and "standardised" not in r["model"]
                else ""
            )
            sentences.append(f"{r['model']} memorises the training set (train {r['train']}, test {r['test']}).{why}")
    return " ".join(sentences)


def _bundle_section(bundle: Path, out: Path) -> tuple[BundleSection, dict[str, bytes]]:
    """Table 3, the run's figures and what they say, read from the bundle's run folder; and the figure
    files to copy beside the report (name -> bytes: the build step writes them, not this function).
    The bundle's path is written relative to the report's folder."""
    run_dir = Path(bundle).resolve().parent
    rows = _table3_rows(run_dir)
    figures, copies = [], {}
    for name, width, caption in FIGURES:
        pages = _figure_pages(run_dir, name) if name == "fig8_maps.png" else [name]
        found = [(page, data) for page in pages if (data := _own_regular_file(run_dir, page)) and _is_png(data)]
        for k, (page, data) in enumerate(found, start=1):
            copies[page] = data
            part = f" (part {k} of {len(found)}, classes in order)" if len(found) > 1 else ""
            figures.append(
                {"file": page, "width": width, "caption": caption + part, "landscape": name == "fig8_maps.png"}
            )
    words = _results_in_words(rows)
    cnn = next((r for r in rows if r["model"] == "CNN"), None)
    warning = chance_warning("the CNN's test macro-F1", float(cnn["test"]), _class_count(bundle)) if cnn else None
    if warning:
        text = warning.removeprefix("warning: ")
        words = r"\textbf{" + tex_escape(text[0].upper() + text[1:]).replace("--", "-{}-") + ".} " + words
    path = os.path.relpath(Path(bundle).resolve(), Path(out).resolve())
    return BundleSection(path=tex_escape(path), table3=rows, figures=figures, words=words), copies


def _class_count(bundle: Path) -> int:
    from cadcam_numeric.pipeline.bundle_document import read_bundle_document

    return read_bundle_document(Path(bundle)).head.n_classes


def _figure_pages(run_dir: Path, name: str) -> list[str]:
    """The pages of a map grid (``fig8_maps_part<k>.png``) when the run wrote them, else the grid itself."""
    stem = name.removesuffix(".png")
    parts = []
    while (run_dir / f"{stem}_part{len(parts) + 1}.png").is_file():
        parts.append(f"{stem}_part{len(parts) + 1}.png")
    return parts or [name]


def render_tex(
    view: ArchitectureView | None = None,
    out: Path = Path("."),
    verify: bool = True,
    cases: int = 20,
    seed: int = 0,
    bundle: Path | None = None,
    command: str = "cadcam report --out DIR",
    published: Path | None = None,
) -> str:
    """The report's LaTeX for ``view`` (default: the paper's architecture, :data:`PAPER_SPEC`), written
    beside its figures in ``out``; paths in it are relative to ``published`` (default ``out``), the folder
    the report ends up in."""
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
    section, copies = _bundle_section(bundle, published or out) if bundle is not None else (None, {})
    for name, data in copies.items():  # the figures beside the .tex, where \includegraphics finds them
        (out / name).write_bytes(data)
    _write_fig4(view, out)
    return env.get_template("report.tex.j2").render(**_context(view, verify, cases, seed, section, command))


def paper_view() -> ArchitectureView:
    """The view of the paper's architecture (``derivations/examples/paper_head.toml``)."""
    from cadcam_numeric.spec.architecture import load_architecture_file

    arch = load_architecture_file(PAPER_SPEC, None)
    return view_of_architecture(arch.spec, arch.code)


def view_of_bundle(bundle: Path, derived: Path | None = None) -> ArchitectureView:
    """The architecture a bundle records: the spec it embeds (``derived``: that spec's derive
    directory, when it has code of its own), else the spec of its pipeline settings; the
    feature-map shape as recorded. The bundle is validated first, as every command does."""
    from cadcam_numeric.pipeline.bundle_document import read_bundle_document, spec_of_document
    from cadcam_numeric.spec.architecture import architecture_from_text
    from cadcam_numeric.spec.code import empty_code

    doc = read_bundle_document(Path(bundle))
    shape = doc.backbone.feature_shape
    if doc.architecture is not None:
        arch = architecture_from_text(doc.architecture.toml, derived, "bundle: architecture")
        return view_of_architecture(arch.spec, arch.code, shape)
    spec = spec_of_document(doc)
    return view_of_architecture(spec, empty_code(spec), shape)


class PdfLatexError(CadcamInputError):
    """pdflatex could not typeset the report (exit 2 at the command line, with the log's first error)."""


def first_latex_error(log: str) -> str:
    """The first error of a LaTeX log — its ``! ...`` line and the ``l.N`` line that locates it.

    >>> first_latex_error("This is pdfTeX\\n! Undefined control sequence.\\nl.12 \\\\nosuch\\n")
    'Undefined control sequence. (l.12 \\\\nosuch)'
    """
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("! "):
            where = next((x.strip() for x in lines[i + 1 : i + 12] if x.startswith("l.")), "")
            return line[2:].strip() + (f" ({where})" if where else "")
    return "no error line in its log (see report.log)" if log else "it wrote no log"


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


def _pdflatex(work: Path) -> subprocess.CompletedProcess:
    """pdflatex directly (no latexmk: it would read a Perl ``latexmkrc``), rerun until the
    cross-references, the table of contents and longtable widths settle: until a pass leaves the .aux and
    .toc as the pass before left them and its log asks for no rerun (at least 2, at most 5 passes; a
    changed table of contents never says "Rerun")."""
    command = [
        shutil.which("pdflatex") or "pdflatex",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-no-shell-escape",
        "report.tex",
    ]
    state = None
    for _ in range(5):
        result = subprocess.run(
            command,
            cwd=work,
            capture_output=True,
            text=True,
            env=_latex_env(work),
            timeout=600,
            preexec_fn=die_with_parent,
        )
        log = (work / "report.log").read_text(errors="replace") if (work / "report.log").is_file() else ""
        previous, state = state, [(work / n).read_bytes() for n in ("report.aux", "report.toc") if (work / n).is_file()]
        if result.returncode != 0:
            break
        if state == previous and not re.search(r"Rerun to get|Label\(s\) may have changed|Rerun LaTeX", log):
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

    out = claim_directory(Path(out)).path  # new, empty or cadcam's own: nothing of yours is overwritten
    if view is None:
        view = view_of_bundle(bundle, derived) if bundle is not None else paper_view()
    with tempfile.TemporaryDirectory(prefix="cadcam-report-") as tmp:
        work = Path(tmp)
        tex_text = render_tex(view, work, verify, cases, seed, bundle, command, published=out)
        (work / "report.tex").write_text(tex_text, "utf-8")
        katex = find_katex()  # typesets the browser page when found; MathML alone otherwise
        page = tex_to_html(tex_text, katex=katex is not None)  # the same document for a browser
        (work / "report.html").write_text(page.text, "utf-8")
        have_latex = shutil.which("pdflatex") is not None
        if pdf and have_latex:
            result = _pdflatex(work)
            if result.returncode != 0 or not (work / "report.pdf").is_file():
                log = (work / "report.log").read_text(errors="replace") if (work / "report.log").is_file() else ""
                raise PdfLatexError(
                    f"pdflatex failed on report.tex: {first_latex_error(log)}; nothing was written to {out}"
                )
        made_pdf = (work / "report.pdf").is_file()
        published = [*sorted(work.glob("*.png")), work / "report.tex", work / "report.html"]
        if made_pdf:  # with LaTeX's log: its warnings (overfull boxes, references) are checked by the suite
            published += [work / "report.pdf", work / "report.log"]
        for f in published:
            atomic_write_bytes(out / f.name, f.read_bytes())
        if katex is not None:
            write_katex(out, katex, atomic_write_bytes)
    html_path = out / "report.html"
    html_note = f"; {html_path}" + (f" ({len(page.errors)} formulas left as source)" if page.errors else "")
    html_note += f" (formulas typeset by KaTeX from {katex})" if katex is not None else " (formulas as MathML)"
    tex, pdf_path = out / "report.tex", out / "report.pdf"
    if not made_pdf:
        pdf_path.unlink(missing_ok=True)
    if not pdf:
        return ReportBuild(tex, None, f"wrote {tex}{html_note}", html_path, len(page.errors))
    if not have_latex:
        return ReportBuild(
            tex,
            None,
            f"LaTeX is not installed, so only {tex} was written. Install it with "
            f"`apt-get install -y --no-install-recommends {LATEX_PACKAGES}` and rerun "
            f"(or run `pdflatex report.tex` twice in {out}){html_note}.",
            html_path,
            len(page.errors),
        )
    return ReportBuild(tex, pdf_path, f"wrote {tex} and {pdf_path}{html_note}", html_path, len(page.errors))
