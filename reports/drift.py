"""What the drift test compares: the report of the default spec, without the parts that depend on
the machine (verification numbers are not rendered; the versions/date block is cut out)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["EXPECTED", "comparable"]

EXPECTED = Path(__file__).parent / "expected" / "default_spec.tex"
_ENVIRONMENT = re.compile(r"% BEGIN ENVIRONMENT.*?% END ENVIRONMENT\n", re.S)


def comparable(tex: str) -> str:
    """The .tex without its environment block (package versions, build date)."""
    return _ENVIRONMENT.sub("% (environment block removed for the drift comparison)\n", tex)
