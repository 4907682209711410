"""LaTeX helpers shared by the derivation documents (``derivations.custom``) and the report."""

from __future__ import annotations

import re
import unicodedata

import sympy as sp
from sympy.printing.latex import greek_letters_set

__all__ = ["formula_latex", "tex_escape"]

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "/": r"/\allowbreak{}",
}


#: combining accents LaTeX's default fonts can put on an ASCII letter
_ACCENTS = {
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0308": '"',
    "\u030a": "r",
    "\u0327": "c",
    "\u030c": "v",
    "\u0304": "=",
}


def _unicode(ch: str) -> str:
    return r"\texttt{[U+%04X]}" % ord(ch)


def tex_escape(text: object) -> str:
    """Plain text for LaTeX: special characters escaped; '/' may break a line (long identifiers).

    Any text typesets with pdflatex's default fonts: an accented Latin letter becomes its accent
    command (é → \\'{e}), every other non-ASCII or control character its code point, [U+XXXX].
    """
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", str(text)):
        if ch in _ACCENTS and out and len(out[-1]) == 1 and out[-1].isascii() and out[-1].isalpha():
            out[-1] = "\\" + _ACCENTS[ch] + "{" + out[-1] + "}"
        elif ch.isascii() and ch.isprintable():
            out.append(_ESCAPES.get(ch, ch))
        else:
            out.append(_unicode(ch))
    return "".join(out)


def formula_latex(expr: sp.Expr) -> str:
    """SymPy's LaTeX as the reports print formulas: long constants to 10 significant digits,
    parameter names upright (``min_val``, not min with a subscript), ``expm1``/``log1p`` as named
    functions (SymPy prints them as expm with a subscript 1)."""
    expr = expr.xreplace({f: sp.Float(f, 10) for f in expr.atoms(sp.Float)})
    names = {
        sym: r"\mathrm{" + sym.name.replace("_", r"\_") + r"}\,"  # \, : apart from a following factor
        for sym in expr.free_symbols
        if isinstance(sym, sp.Symbol)
        and len(sym.name) > 1
        and "\\" not in sym.name
        and sym.name not in greek_letters_set
    }
    text = sp.latex(expr, symbol_names=names)
    return re.sub(r"\\operatorname\{(expm|log)\}_\{(1|1p)\}", r"\\operatorname{\1\2}", text)
