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


#: parameter names the reports write as the notation table's symbols (scikit-learn's and PyTorch's names in
#: code; a formula shows a symbol, never a multi-letter name as text)
NOTATION = {
    "coef0": "r",
    "degree": r"\deg",
    "negative_slope": "s",
    "weight": r"w_{\mathrm P}",
    "threshold": r"\tau",
    "min_val": r"z_{\min}",
    "max_val": r"z_{\max}",
}


def _decimal(q: sp.Rational) -> sp.Float | None:
    """A rational with a terminating decimal expansion and a long denominator (8943/200000) as that
    decimal, exactly (0.044715); None for any other rational (1/2 stays a fraction)."""
    den, twos, fives = int(q.q), 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1 or q.q < 1000:
        return None
    places = max(twos, fives)
    digits = str(abs(int(q.p)) * 10**places // int(q.q)).rjust(places + 1, "0")
    text = ("-" if q.p < 0 else "") + digits[:-places] + "." + digits[-places:]
    return sp.Float(text, max(15, len(digits)))  # 15 digits at least: a product with it stays exact to print


def _coefficients(expr: sp.Basic) -> set[sp.Rational]:
    """The rationals of ``expr`` outside any function of numbers only (log(3/2000) stays exact:
    replacing its argument by a float would evaluate it)."""
    found: set[sp.Rational] = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, sp.Rational):
            found.add(e)
        elif not (isinstance(e, sp.Function) and not e.free_symbols):
            stack.extend(e.args)
    return found


def formula_latex(expr: sp.Expr) -> str:
    """SymPy's LaTeX as the reports print formulas: long constants to 10 significant digits,
    rationals with long terminating expansions as their exact decimals (GELU's 0.044715, not
    8943/200000), parameter names upright (``min_val``, not min with a subscript) or as the
    notation table writes them (:data:`NOTATION`), ``expm1``/``log1p`` as named functions (SymPy
    prints them as expm with a subscript 1)."""
    expr = expr.xreplace({f: sp.Float(f, 10) for f in expr.atoms(sp.Float)})
    expr = expr.xreplace({q: d for q in _coefficients(expr) if (d := _decimal(q)) is not None})
    names = {
        sym: NOTATION.get(sym.name) or r"\mathrm{" + sym.name.replace("_", r"\_") + r"}\,"  # \, : apart
        for sym in expr.free_symbols
        if isinstance(sym, sp.Symbol)
        and len(sym.name) > 1
        and "\\" not in sym.name
        and sym.name not in greek_letters_set
    }
    text = sp.latex(expr, symbol_names=names)
    return re.sub(r"\\operatorname\{(expm|log)\}_\{(1|1p)\}", r"\\operatorname{\1\2}", text)
