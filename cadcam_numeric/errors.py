"""The exception the engine raises for input it cannot explain exactly."""

from __future__ import annotations

__all__ = ["CadcamInputError"]


class CadcamInputError(ValueError):
    """Bad input: the message names the argument and says what was expected."""
