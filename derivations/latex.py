"""LaTeX helpers shared by the derivation documents (``derivations.custom``) and the report."""

from __future__ import annotations

__all__ = ["tex_escape"]

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


def tex_escape(text: object) -> str:
    """Plain text for LaTeX: special characters escaped; '/' may break a line (long identifiers)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))
