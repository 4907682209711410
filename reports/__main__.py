"""``python -m reports expected``: rewrite the committed drift reference ``reports/expected/default_spec.tex``.

Run it after an intended change to the derivations, the catalogue or the template, and commit
the result; ``proofs_tests/test_report.py`` fails on any unintended difference.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from reports.build import render_tex
from reports.drift import EXPECTED, comparable


def main(argv: list[str]) -> int:
    if argv != ["expected"]:
        print(__doc__)
        return 2
    os.environ["SOURCE_DATE_EPOCH"] = "0"  # the date the drift test renders with
    with tempfile.TemporaryDirectory() as tmp:
        text = comparable(render_tex(out=Path(tmp), verify=False))
    EXPECTED.write_text(text, encoding="utf-8")
    print(f"wrote {EXPECTED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
