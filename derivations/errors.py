"""The one base of every error ``derivations`` raises for bad input (a spec, an expression, a
budget overrun). SymPy-free, so that the CLI's error boundary can name it without importing SymPy."""

from __future__ import annotations

__all__ = ["DerivationInputError"]


class DerivationInputError(ValueError):
    """Input the derivations refuse; the message names what was wrong (the CLI: exit 2)."""
