"""The derivation report: PDF contents, reproducibility, drift against the committed copy, spec changes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cadcam_numeric.cli import main
from cadcam_numeric.spec.architecture import spec_from_text
from cadcam_numeric.spec.code import empty_code
from reports.build import PAPER_SPEC, build_report, render_tex
from reports.drift import EXPECTED, comparable
from reports.view import view_of_architecture

HAVE_LATEX = shutil.which("pdflatex") is not None and shutil.which("pdftotext") is not None
needs_latex = pytest.mark.skipif(
    not HAVE_LATEX,
    reason="LaTeX/poppler not installed (apt-get install texlive-latex-base texlive-latex-recommended poppler-utils)",
)


@pytest.fixture(scope="module")
def demo_with_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 0
    return out


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@needs_latex
def test_demo_ends_with_a_pdf_holding_theorems_verification_and_every_caption(demo_with_report):
    pdf = demo_with_report / "report" / "report.pdf"
    assert pdf.is_file()
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert 10 <= pages <= 30
    text = " ".join(
        pdf_text(pdf).replace("_", " ").replace("\u2019", "'").split()
    )  # pdftotext reads \_ in \texttt as a space
    for needle in (
        "Theorem 1",
        "RBF degree of effect vanishes near and far",
        "Theorem 2",
        "the RBF degree of effect peaks at d",
        "Erratum",
        "Extension (poly kernel: no locality)",
        "Verification of the generated code",
        "max abs",
        "max rel",
        "activations.relu_derivative",
        "this spec (relu, rbf)",
        "Table 3",
        "Degree of effect (the paper's Fig. 4)",
        "Contribution ratio of each principal component",
        "PCA scores (p1 , p2 , p3 ) coloured by true class",
        "Validation accuracy per training epoch",
        "Maps for one test image of every class",
        "small_vgg",
        "Block Jacobians",
        "Composed chains",
    ):
        assert needle.replace("_", " ") in text, needle
    assert "Theorem 1 (RBF degree of effect vanishes near and far)" in text and "Theorem 1 (Theorem 1" not in text
    assert "FAIL" not in text and "NOT PROVED" not in text


def test_tex_is_reproducible_with_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    a = render_tex(out=tmp_path / "a", verify=False)
    b = render_tex(out=tmp_path / "b", verify=False)
    assert a == b and "1970-01-01 00:00 UTC" in a


def test_tex_of_the_default_spec_matches_the_committed_copy(tmp_path, monkeypatch, compare_or_update):
    """Drift test. After an intended change: `pytest --update-goldens` and commit the file."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    compare_or_update(comparable(render_tex(out=tmp_path, verify=False)), EXPECTED)


def test_changing_activation_and_kernel_changes_derivations_and_verification(tmp_path):
    paper = PAPER_SPEC.read_text()
    changed = paper.replace('activation = "relu"', 'activation = "sigmoid"').replace(
        'kernel = "rbf"', 'kernel = "poly"'
    )
    changed = changed.replace("{ gamma = 1.0 }", "{ gamma = 0.5, coef0 = 1.0, degree = 3 }")
    relu = render_tex(None, tmp_path / "relu", verify=True, cases=2)
    spec = spec_from_text(changed)
    sig = render_tex(view_of_architecture(spec, empty_code(spec)), tmp_path / "sig", verify=True, cases=2)
    assert r"\sigma\!\left(z\right)" in sig.split(r"\subsection*{Blocks")[0]
    assert "this spec (sigmoid, poly)" in sig and "this spec (relu, rbf)" in relu
    assert "this spec (relu, rbf)" not in sig
    assert r"\texttt{poly} kernel" in sig and r"\texttt{rbf} kernel" in relu
    assert "gamma=0.5" in sig.replace("$", "").replace(r"\gamma", "gamma")


def test_missing_latex_leaves_the_tex_and_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    build = build_report(tmp_path, verify=False)
    assert build.pdf is None and build.tex.is_file()
    assert "apt-get install -y --no-install-recommends texlive-latex-base" in build.message


def test_report_command_bad_inputs(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(PAPER_SPEC.read_text().replace('activation = "relu"', 'activation = "swishy"'))
    assert main(["report", "--spec", str(spec), "--out", str(tmp_path / "r"), "--no-verify"]) == 2
    assert "head.dense[0].activation: 'swishy' is not allowed; allowed values: " in capsys.readouterr().err
    spec.write_text(PAPER_SPEC.read_text() + "\nlayers = 3\n")
    assert main(["report", "--spec", str(spec), "--out", str(tmp_path / "r")]) == 2
    assert "unknown key(s) ['layers']" in capsys.readouterr().err
    spec.write_text(json.dumps({"activation": "relu"}))  # the JSON spec is gone: one spec, TOML
    assert main(["report", "--spec", str(spec), "--out", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["report", "--bundle", str(tmp_path), "--out", str(tmp_path / "r")]) == 2


def test_table2_reports_each_case_and_proves_each_once(tmp_path, monkeypatch):
    """A failing first case is reported as such, not masked by the last (issue 12, defect 3)."""
    from dataclasses import replace

    import derivations.prove_all as prove_all
    from derivations.table2 import TABLE2_CASES, table2_proof_name

    real, calls = prove_all.prove_table2_case, []

    def first_case_fails(case):
        calls.append(case)
        result = real(case)
        return replace(result, holds=False) if case is TABLE2_CASES[0] else result

    monkeypatch.setattr(prove_all, "prove_table2_case", first_case_fails)
    tex = render_tex(out=tmp_path, verify=False)
    assert len(calls) == len(TABLE2_CASES)  # each case proved once
    section = tex.split(r"\subsection*{The paper's Table 2 as special cases}")[1].split(r"\section")[0]
    assert section.count(r"\textcolor{red}{NOT PROVED}") == 1
    assert section.count("proved.") == len(TABLE2_CASES) - 1
    assert table2_proof_name(TABLE2_CASES[0]).startswith("table2/")


# ---------------------------------------------------------------------------------------------
# typesetting: what a reviewer reads


#: plain-text renderings of maths that must never reach the typeset mathematics
ASCII_MATH = ("->", "^", "_{", "sqrt(", "gamma", "˜", "expm", "8943")  # 8943: GELU-tanh 0.044715 as a fraction


def _code_words(tex: str) -> set[str]:
    """Every word set in \\texttt in the .tex (code names: those may hold '_' and 'gamma')."""
    words = set()
    for body in re.findall(r"\\texttt\{((?:[^{}]|\{[^{}]*\})*)\}", tex):
        plain = body.replace("\\allowbreak{}", "").replace("\\_", "_").replace("\\textasciicircum{}", "^")
        words.update(w for w in re.split(r"[\s,;:()]+", plain) if w)
    return words


def typesetting_problems(out) -> list[str]:
    """Overfull boxes, unresolved references and ASCII maths in a built report (``out``)."""
    log = (out / "report.log").read_text(errors="replace")
    tex = (out / "report.tex").read_text()
    problems = [f"overfull box: {m}" for m in re.findall(r"Overfull \\hbox \(([\d.]+pt) too wide\)", log)]
    problems += [
        f"LaTeX: {m}" for m in re.findall(r"(Reference `[^']*' on page \d+ undefined|There were undefined)", log)
    ]
    text = pdf_text(out / "report.pdf")
    text = text.split("Reproducing this report")[0]  # versions and the command line are not mathematics
    code = _code_words(tex)
    for line in text.splitlines():
        words = [w for w in line.split() if w not in code and w.strip(".,;:()") not in code]
        kept = " ".join(words)
        problems += [f"ASCII maths {marker!r} in: {line.strip()[:100]}" for marker in ASCII_MATH if marker in kept]
        if re.search(r"(?<![\w/])[A-Za-z]_\d", kept):  # q_2 typed, not typeset (pdftotext gives q2 for q₂)
            problems.append(f"ASCII subscript in: {line.strip()[:100]}")
    if "??" in text:
        problems.append("an unresolved reference (??) in the text")
    return problems


@needs_latex
def test_three_reports_typeset_their_mathematics(demo_with_report, tmp_path):
    """The default, a demo bundle's and a custom spec's report: no overfull box, no unresolved
    reference, and none of the ASCII renderings of maths in their text (code names aside)."""
    from cadcam_numeric.spec.architecture import load_architecture_file
    from cadcam_numeric.spec.derive import derive_spec

    default = tmp_path / "default"
    build_report(default, verify=False)
    example = PAPER_SPEC.parent / "custom_head.toml"
    derived = tmp_path / "derived"
    derive_spec(example, derived, cases=2)
    custom = tmp_path / "custom"
    arch = load_architecture_file(example, derived)
    build_report(custom, view=view_of_architecture(arch.spec, arch.code), verify=False)
    from reports.html import tex_to_html

    for out in (default, demo_with_report / "report", custom):
        assert typesetting_problems(out) == [], out
        assert tex_to_html((out / "report.tex").read_text()).errors == [], out  # its HTML page typesets all
    pages = subprocess.run(["pdfinfo", str(custom / "report.pdf")], capture_output=True, text=True).stdout
    assert "Title:" in pages and "cadcam derivation report" in pages  # the PDF's metadata


def test_the_typesetting_check_catches_what_it_looks_for(tmp_path):
    """The check is not vacuous: ASCII maths and an overfull box planted in a report are reported."""
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.tex").write_text("\\texttt{block/svm/rbf\\_gamma}")
    (out / "report.log").write_text("Overfull \\hbox (12.5pt too wide) in paragraph at lines 3--4")
    fake = "E(d) = 2 gamma d exp(-gamma d^2) as d -> 0\nblock/svm/rbf_gamma is code\nPCA layer on q_2\n"
    import unittest.mock

    with unittest.mock.patch(f"{__name__}.pdf_text", return_value=fake):
        problems = typesetting_problems(out)
    assert any("overfull box: 12.5pt" in p for p in problems)
    assert any("'gamma'" in p for p in problems) and any("'->'" in p for p in problems)
    assert any("ASCII subscript in: PCA layer on q_2" in p for p in problems)
    assert not any("is code" in p for p in problems)


HAVE_CHROMIUM = shutil.which("chromium") is not None


def _katex_or_skip():
    from reports.html import find_katex

    katex = find_katex()
    if katex is None:
        pytest.skip("KaTeX not installed (apt-get install libjs-katex, or set CADCAM_KATEX)")
    return katex


CHROMIUM = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
]


def _chromium_dom(page: Path) -> str:
    """The DOM of ``page`` after its scripts ran, in headless Chromium."""
    return subprocess.run([*CHROMIUM, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180).stdout


def _math_status(dom: str) -> str:
    found = re.search(r'<body[^>]*data-math-status="([^"]*)"', dom)
    assert found, "the page's body carries no data-math-status"
    return found.group(1)


def test_the_demo_reports_html_page_holds_every_formula_as_mathml(demo_with_report):
    """report.html is written beside the PDF from the same .tex; every formula converts to MathML
    and carries its LaTeX for KaTeX."""
    from reports.html import find_katex, tex_to_html

    out = demo_with_report / "report"
    page = tex_to_html((out / "report.tex").read_text(), katex=find_katex() is not None)
    assert page.errors == [] and page.formulas > 300
    written = (out / "report.html").read_text()
    assert written == page.text and written.count("<math") >= page.formulas
    assert written.count('class="tex"') == page.formulas
    assert 'class="math-error"' not in written and "fig8_maps_part1.png" in written


def test_the_converter_shows_what_it_cannot_typeset():
    """A formula the converter cannot read is kept as source, marked and counted, never dropped."""
    from reports.html import tex_to_html

    tex = "\\title{t}\n\\begin{document}\nok $a+b$ and bad $\\frac{a}{$ end\n\\end{document}"
    page = tex_to_html(tex)
    assert page.formulas == 2 and len(page.errors) == 1 and 'class="math-error"' in page.text


@pytest.mark.skipif(not HAVE_CHROMIUM, reason="Chromium not installed (apt-get install chromium)")
def test_the_html_report_renders_in_headless_chromium(demo_with_report, tmp_path):
    """Load the demo's report.html in headless Chromium: after its script ran, KaTeX reports every
    formula typeset and none rejected (the page's data-math-status), the DOM holds a KaTeX box per
    formula, and a screenshot of it is taken."""
    _katex_or_skip()
    from reports.html import tex_to_html

    page = (demo_with_report / "report" / "report.html").resolve()
    assert (page.parent / "katex" / "katex.min.js").is_file()
    formulas = tex_to_html((page.parent / "report.tex").read_text()).formulas
    dom = _chromium_dom(page)
    assert _math_status(dom) == f"katex rendered={formulas} failed=0" and formulas > 300
    assert dom.count('class="katex"') + dom.count('class="katex-display"') >= formulas
    assert "katex-failed" not in dom.split("<body", 1)[1].split("<script", 1)[0]
    shot = tmp_path / "report.png"
    subprocess.run(
        [*CHROMIUM, "--window-size=1100,2400", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180
    )
    assert shot.is_file() and shot.stat().st_size > 50_000


@pytest.mark.skipif(not HAVE_CHROMIUM, reason="Chromium not installed (apt-get install chromium)")
def test_a_formula_katex_rejects_is_counted_in_the_browser(tmp_path):
    """The browser check can fail: a page with one formula KaTeX rejects reports failed=1 and marks
    it, keeping its MathML."""
    katex = _katex_or_skip()
    from reports.html import tex_to_html, write_katex

    tex = "\\title{t}\n\\begin{document}\nok $a+b$ and $\\nosuchmacro{x}$ end\n\\end{document}"
    (tmp_path / "report.html").write_text(tex_to_html(tex, katex=True).text)
    write_katex(tmp_path, katex)
    dom = _chromium_dom(tmp_path / "report.html")
    assert _math_status(dom) == "katex rendered=1 failed=1"
    failed = dom.split('class="tex katex-failed"', 1)[1].split("</span>", 1)[0]
    assert "<math" in failed  # the rejected formula keeps its MathML


def test_formulas_print_terminating_constants_as_their_exact_decimals():
    """GELU-tanh's 0.044715 is printed as written, not as SymPy's 8943/200000; short fractions
    (1/2) and non-terminating ones (1/3) stay fractions; kernel parameters use the notation table's
    symbols."""
    import sympy as sp

    from derivations.latex import formula_latex

    z, coef0, degree = sp.symbols("z coef0 degree")
    assert formula_latex(sp.Rational(8943, 200000) * z) == "0.044715 z"
    assert formula_latex(sp.Rational(-3, 2000) * z) == "- 0.0015 z"
    assert formula_latex(z / 2 + z / 3) == r"\frac{5 z}{6}"
    assert formula_latex(z / 1024) == r"0.0009765625 z"
    assert formula_latex((coef0 + z) ** degree) == r"\left(r + z\right)^{\deg}"
    assert formula_latex(sp.log(sp.Rational(3, 2000)) * z) == r"z \log{\left(\frac{3}{2000} \right)}"  # not evaluated
    assert formula_latex(sp.sqrt(2) * sp.Rational(3, 2000) * z) == r"0.0015 \sqrt{2} z"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_a_pdflatex_failure_is_exit_2_with_the_logs_first_error(tmp_path, monkeypatch, capsys):
    """pdflatex rejecting the .tex is a named error (exit 2, one line with the log's first error), not
    "internal error"; nothing is left in --out."""
    import reports.build as build

    real = build.render_tex
    monkeypatch.setattr(
        build, "render_tex", lambda *a, **k: real(*a, **k).replace(r"\end{document}", r"\nosuchmacro{}\end{document}")
    )
    out = tmp_path / "report"
    assert main(["report", "--no-verify", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pdflatex failed on report.tex: Undefined control sequence." in err
    assert "internal error" not in err and not out.exists()


def test_the_first_latex_error_of_a_log():
    from reports.build import first_latex_error

    log = "This is pdfTeX\n(./report.tex\n! Missing $ inserted.\n<inserted text>\nl.88 a_b\n! Second.\n"
    assert first_latex_error(log) == "Missing $ inserted. (l.88 a_b)"
    assert first_latex_error("") == "it wrote no log"
    assert first_latex_error("no errors here\n") == "no error line in its log (see report.log)"


@needs_latex
def test_the_table_of_contents_gives_the_pages_the_sections_are_on(demo_with_report):
    """A changed table of contents never asks LaTeX for a rerun: the build reruns until .aux and .toc
    settle, so the page the contents give for each section is the page its heading is on."""
    pdf = demo_with_report / "report" / "report.pdf"
    pages = pdf_text(pdf).split("\f")
    contents = re.findall(r"^\s*(\d+)\s+([A-Z][^\n.]*?)\s*\.*\s+(\d+)\s*$", pages[0] + pages[1], flags=re.M)
    assert len(contents) >= 4, contents
    for number, title, page in contents:
        heading = re.compile(rf"^\s*{number}\s+{re.escape(title.strip())}\s*$", flags=re.M)
        found = [i + 1 for i, text in enumerate(pages) if heading.search(text) and i > 0]
        assert int(page) in found, (number, title, page, found)
