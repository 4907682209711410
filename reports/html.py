"""The derivation report as one HTML page, from the very ``report.tex`` the PDF is built from.

The ``.tex`` is cadcam's own output (``reports/templates/report.tex.j2``), so its vocabulary is
known: sections, lists, theorem and proof environments, ``gather*``/``align`` displays, inline
``$...$``, tables (booktabs), figures, and a handful of text macros. Each formula becomes MathML
(``latex2mathml``), which browsers typeset natively: no script and no network. A formula the
converter cannot read is kept as its LaTeX source in ``<code class="math-error">`` and counted
(``HtmlReport.errors``); the test suite requires none and checks the page in headless Chromium.

Every formula also carries its LaTeX source (``data-tex``). When a KaTeX distribution is found
(:func:`find_katex`: ``$CADCAM_KATEX``, else Debian's ``libjs-katex``), the report folder gets a copy
of it in ``katex/`` and the page typesets each formula with KaTeX in the browser, strictly
(``throwOnError``): a formula KaTeX rejects keeps its MathML, is marked ``katex-failed`` with KaTeX's
message, and is counted in ``<body data-math-status="katex rendered=N failed=M">``, which the test
reads after the page's script ran. Without KaTeX the MathML stands alone.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cadcam_numeric.errors import CadcamInputError

__all__ = ["HtmlReport", "find_katex", "katex_files", "tex_to_html", "write_katex"]

#: where Debian's ``libjs-katex`` puts KaTeX (``apt-get install libjs-katex``)
DEBIAN_KATEX = Path("/usr/share/javascript/katex")

# After KaTeX loaded: typeset each formula from its data-tex, strictly; count what KaTeX rejected.
_KATEX_SCRIPT = """<script>
(function () {
  var nodes = document.querySelectorAll(".tex"), rendered = 0, failed = 0;
  if (typeof katex === "undefined") { document.body.dataset.mathStatus = "mathml (KaTeX did not load)"; return; }
  nodes.forEach(function (node) {
    try {
      // rendered to a string first: a formula KaTeX rejects leaves the node (its MathML) untouched
      node.innerHTML = katex.renderToString(node.dataset.tex, {displayMode: node.dataset.display === "1",
                                                               throwOnError: true, strict: "error", trust: false});
      rendered += 1;
    } catch (err) {
      failed += 1; node.classList.add("katex-failed"); node.title = String(err.message || err);
    }
  });
  document.body.dataset.mathStatus = "katex rendered=" + rendered + " failed=" + failed;
})();
</script>"""


def find_katex() -> Path | None:
    """The KaTeX distribution to ship with the HTML report: ``$CADCAM_KATEX`` when set (a folder
    holding ``katex.min.js``, ``katex.min.css`` and ``fonts/``), else Debian's; None when neither."""
    named = os.environ.get("CADCAM_KATEX")
    if named:
        if not (Path(named) / "katex.min.js").is_file():
            raise CadcamInputError(f"CADCAM_KATEX: {named} holds no katex.min.js; name KaTeX's dist folder")
        return Path(named)
    return DEBIAN_KATEX if (DEBIAN_KATEX / "katex.min.js").is_file() else None


def write_katex(out: Path, katex: Path, write: Callable[[Path, bytes], object] | None = None) -> None:
    """Copy :func:`katex_files` of ``katex`` into ``out/katex/`` (with ``write(path, data)`` when
    given, e.g. an atomic writer)."""
    for name, data in katex_files(katex).items():
        target = Path(out) / "katex" / name
        for folder in (Path(out) / "katex", target.parent):
            _real_folder(folder)
        if write is None:
            target.write_bytes(data)
        else:
            write(target, data)


def _real_folder(folder: Path) -> None:
    """Make ``folder`` if missing; refuse a symbolic link (or a file) in its place, which would send
    the report's files somewhere else."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise CadcamInputError(f"out: {folder} is a symbolic link or a file; cadcam writes only into real folders")
    folder.mkdir(exist_ok=True)


def katex_files(katex: Path) -> dict[str, bytes]:
    """The files of ``katex`` the page needs, by their path under the report's ``katex/`` folder
    (the script, the stylesheet and its woff2 fonts; symbolic links are read through)."""
    files = {name: (katex / name).read_bytes() for name in ("katex.min.js", "katex.min.css")}
    for font in sorted((katex / "fonts").glob("*.woff2")):
        files[f"fonts/{font.name}"] = font.read_bytes()
    return files


_DISPLAY = re.compile(r"\\begin\{(gather\*|align\*?)\}(.*?)\\end\{\1\}|\\\[(.*?)\\\]", re.S)
_INLINE = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)
_TEXT_MACROS = (
    (re.compile(r"\\texttt\{((?:[^{}]|\{[^{}]*\})*)\}"), r"<code>\1</code>"),
    (re.compile(r"\\textbf\{((?:[^{}]|\{[^{}]*\})*)\}"), r"<b>\1</b>"),
    (re.compile(r"\\emph\{((?:[^{}]|\{[^{}]*\})*)\}"), r"<em>\1</em>"),
    (re.compile(r"\\textcolor\{red\}\{((?:[^{}]|\{[^{}]*\})*)\}"), r'<span class="red">\1</span>'),
)
#: LaTeX escapes of characters written as text (``tex_escape``), each held as a private-use
#: character while the macros are converted, then written as the character itself
_HELD = ((r"\textbackslash{}", "\ue000", "\\"), (r"\{", "\ue001", "{"), (r"\}", "\ue002", "}"), (r"\$", "\ue003", "$"))
_PLAIN = (
    (r"\allowbreak{}", ""),
    (r"\_", "_"),
    (r"\&", "&amp;"),
    (r"\%", "%"),
    (r"\#", "#"),
    (r"\textasciicircum{}", "^"),
    (r"\textasciitilde{}", "~"),
    (r"\textless{}", "&lt;"),
    (r"\textgreater{}", "&gt;"),
    (r"\textbar{}", "|"),
    (r"\S", "§"),
    ("---", "—"),
    ("--", "–"),
    ("``", "“"),
    ("''", "”"),
    ("~", "\u00a0"),
    (r"\ ", " "),
    (r"\,", "\u2009"),
    (r"\^o", "ô"),
)


@dataclass
class HtmlReport:
    text: str
    formulas: int
    errors: list[str]


class _Converter:
    def __init__(self) -> None:
        import latex2mathml.converter

        self._convert = latex2mathml.converter.convert
        self.formulas = 0
        self.errors: list[str] = []
        self.figure = 0
        self.theorem = 0

    def math(self, latex: str, display: bool) -> str:
        self.formulas += 1
        # inside \text{...} LaTeX's ~ and -- are a space and an en dash (the converter keeps them literally)
        latex = re.sub(
            r"\\text\{([^{}]*)\}", lambda m: r"\text{" + m.group(1).replace("~", " ").replace("--", "–") + "}", latex
        )
        latex = latex.strip()
        try:
            mathml = self._convert(latex, display="block" if display else "inline")
        except Exception as exc:  # any converter failure is shown as source and counted, never hidden
            self.errors.append(f"{latex[:120]} ({type(exc).__name__})")
            mathml = f'<code class="math-error">{html.escape(latex)}</code>'
        tag = "div" if display else "span"
        return f'<{tag} class="tex" data-display="{int(display)}" data-tex="{html.escape(latex)}">{mathml}</{tag}>'

    def display(self, body: str) -> str:
        """A display environment's lines (split at its own ``\\\\``, not at those of a ``cases`` inside),
        alignment ``&`` at its top level dropped."""
        lines, depth, current, i = [], 0, [], 0
        while i < len(body):
            if body.startswith(r"\begin{", i):
                depth += 1
            elif body.startswith(r"\end{", i):
                depth -= 1
            if depth == 0 and body.startswith("\\\\", i):
                lines.append("".join(current))
                current = []
                i += 2
                if i < len(body) and body[i] == "[":
                    i = body.index("]", i) + 1
                continue
            if depth == 0 and body[i] == "&":
                i += 1
                continue
            current.append(body[i])
            i += 1
        lines.append("".join(current))
        lines = [re.sub(r"\\(tag|label)\{[^}]*\}", "", line) for line in lines if line.strip()]
        return '<div class="display">' + "".join(self.math(line, True) for line in lines) + "</div>"

    def text(self, chunk: str) -> str:
        """Text with inline maths; LaTeX text macros to HTML."""
        out, last = [], 0
        for m in _INLINE.finditer(chunk):
            out.append(self._plain(chunk[last : m.start()]))
            out.append(self.math(m.group(1), False))
            last = m.end()
        out.append(self._plain(chunk[last:]))
        return "".join(out)

    def _plain(self, text: str) -> str:
        text = html.escape(text, quote=False).replace("&amp;", "&")
        for escaped, held, _ in _HELD:  # escaped characters of the text, held apart from the macros' braces
            text = text.replace(escaped, held)
        for pattern, repl in _TEXT_MACROS:
            for _ in range(3):
                text = pattern.sub(repl, text)
        for old, new in _PLAIN:
            text = text.replace(old, new)
        text = text.replace("&", "&amp;").replace("&amp;amp;", "&amp;").replace("&amp;lt;", "&lt;")
        text = text.replace("&amp;gt;", "&gt;").replace("&amp;nbsp;", "&nbsp;")
        text = text.replace("\\\\", "<br>")
        for _, held, character in _HELD:
            text = text.replace(held, character)
        return text


def _table(conv: _Converter, spec: str, body: str) -> str:
    math_first = spec.startswith(">{$}")
    rows = []
    for raw in re.split(r"\\\\(?:\*|\[[^\]]*\])?", body):
        raw = re.sub(r"\\(toprule|midrule|bottomrule|endhead|hline)", "", raw).strip()
        if not raw:
            continue
        cells = [c.strip() for c in raw.split(" & ")]
        tds = [conv.math(c, False) if math_first and i == 0 else conv.text(c) for i, c in enumerate(cells)]
        rows.append("<tr>" + "".join(f"<td>{t}</td>" for t in tds) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


_TOKEN = re.compile(
    r"\\(section|subsection|paragraph)(\*?)\{((?:[^{}]|\{[^{}]*\})*)\}"
    r"|\\begin\{(itemize|enumerate|abstract|proof|theorem|erratum|extension)\}(\[(?:[^\[\]]|\[[^\]]*\])*\])?"
    r"|\\end\{(itemize|enumerate|abstract|proof|theorem|erratum|extension)\}"
    r"|\\item\s*"
    r"|\\begin\{(figure|sidewaysfigure)\}(?:\[[^\]]*\])?(.*?)\\end\{\7\}"
    r"|\\begin\{(tabular|longtable)\}\{((?:[^{}]|\{[^{}]*\})*)\}(.*?)\\end\{\9\}"
    r"|\\begin\{(gather\*|align\*?)\}(.*?)\\end\{\12\}|\\\[(.*?)\\\]",
    re.S,
)
_THEOREM_NAMES = {"theorem": "Theorem", "erratum": "Erratum", "extension": "Extension"}
_STYLE = """\
body { max-width: 52em; margin: 2em auto; font-family: "Latin Modern Roman", Georgia, serif; line-height: 1.45;
       padding: 0 1em; }
h1 { text-align: center; font-weight: normal; } .date { text-align: center; }
.display { margin: 0.6em 0; overflow-x: auto; } .display math { display: block; margin: 0.2em 0; }
.abstract { margin: 1em 3em; font-size: 0.95em; } .theorem { margin: 1em 0; font-style: italic; }
.theorem b { font-style: normal; } .proof { margin: 0.5em 0 1.5em; } .red { color: #c00; }
figure { margin: 1.5em 0; text-align: center; } figure img { max-width: 100%; }
figcaption { text-align: left; font-size: 0.95em; } table { border-collapse: collapse; margin: 1em auto; }
td { padding: 0.15em 0.6em; border-bottom: 1px solid #ddd; vertical-align: top; }
code { font-size: 0.92em; } .math-error { color: #c00; } .katex-failed { outline: 1px solid #c00; }"""


def _document_body(tex: str) -> str:
    """The text between begin/end document, without comments and the commands the page has no use for."""
    body = tex.split(r"\begin{document}", 1)[1].split(r"\end{document}", 1)[0]
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("%"))
    for drop in (r"\maketitle", r"\tableofcontents", r"\appendix", r"\clearpage", r"\noindent", r"\centering"):
        body = body.replace(drop, "")
    body = re.sub(r"\\setlength\{[^}]*\}\{[^}]*\}", "", body)
    body = re.sub(r"\{\\(small|footnotesize|raggedright)\s*", "", body)
    body = re.sub(r"\\par(?![A-Za-z])\}?", "", body)  # \par and \par}, not \partial or \paragraph
    body = re.sub(r"^\}\s*$", "", body, flags=re.M)
    return re.sub(r"\\begin\{center\}\\small|\\begin\{center\}|\\end\{center\}", "", body)


def _environment_open(conv: _Converter, env: str, option: str) -> str:
    if env in ("itemize", "enumerate"):
        return "<ul>" if env == "itemize" else "<ol>"
    if env == "abstract":
        return '<div class="abstract"><h4>Abstract</h4>'
    if env == "proof":
        return f'<div class="proof"><i>{conv.text(option) if option else "Proof"}.</i> '
    number = ""
    if env == "theorem":
        conv.theorem += 1
        number = f" {conv.theorem}"
    head = f"<b>{_THEOREM_NAMES[env]}{number}</b>" + (f" ({conv.text(option)})" if option else "")
    return f'<div class="theorem">{head}. '


def _figure(conv: _Converter, inner: str) -> str:
    conv.figure += 1
    image = re.search(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", inner)
    caption = re.search(r"\\caption\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}", inner)
    src = html.escape(image.group(1)) if image else ""
    text = conv.text(caption.group(1)) if caption else ""
    return (
        f'<figure><img src="{src}" alt="figure {conv.figure}">'
        f"<figcaption>Figure {conv.figure}: {text}</figcaption></figure>"
    )


def _token_html(conv: _Converter, m: re.Match) -> str:
    """One structural token of the body (heading, environment, item, figure, table, display) as HTML."""
    if m.group(1):
        level = {"section": "h2", "subsection": "h3", "paragraph": "h4"}[m.group(1)]
        return f"<{level}>{conv.text(m.group(3))}</{level}>"
    if m.group(4):
        return _environment_open(conv, m.group(4), (m.group(5) or "")[1:-1])
    if m.group(6):
        return {"itemize": "</ul>", "enumerate": "</ol>"}.get(m.group(6), "</div>")
    if m.group(0).startswith(r"\item"):
        return "<li>"
    if m.group(7):
        return _figure(conv, m.group(8))
    if m.group(9):
        return _table(conv, m.group(10), m.group(11))
    return conv.display(m.group(13) if m.group(12) else m.group(14))


def tex_to_html(tex: str, katex: bool = False) -> HtmlReport:
    """The HTML page of a report's ``.tex`` (module docstring). Figures are referenced by file name,
    so the page reads them from its own folder; with ``katex`` the page loads ``katex/`` beside it
    and typesets every formula with it (:func:`katex_files` writes that folder)."""
    conv = _Converter()
    title = re.search(r"\\title\{(.*?)\}\n", tex)
    date = re.search(r"\\date\{(.*?)\}", tex)
    body = _document_body(tex)
    parts: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(body):
        parts.append(_paragraphs(conv, body[pos : m.start()]))
        pos = m.end()
        parts.append(_token_html(conv, m))
    parts.append(_paragraphs(conv, body[pos:]))
    head_title = conv.text(re.sub(r"\\\\\[[^\]]*\]\\large", " — ", title.group(1))) if title else "cadcam report"
    katex_head = '\n<link rel="stylesheet" href="katex/katex.min.css">' if katex else ""
    katex_head += '<script src="katex/katex.min.js"></script>' if katex else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{re.sub("<[^>]+>", "", head_title)}</title>
<style>
{_STYLE}
</style>{katex_head}</head><body data-math-status="mathml">
<h1>{head_title}</h1>
<p class="date">{conv.text(date.group(1)) if date else ""}</p>
{"".join(parts)}
{_KATEX_SCRIPT if katex else ""}
</body></html>
"""
    return HtmlReport(page, conv.formulas, conv.errors)


def _paragraphs(conv: _Converter, chunk: str) -> str:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", chunk) if b.strip()]
    return "".join(f"<p>{conv.text(b)}</p>" for b in blocks)
