"""The production code's shape, measured: no function outside ``generated/`` longer than 80 lines or
above cyclomatic complexity 20 (ruff's C901), and the docstring rules that gate ``engine/`` and
``methods/`` (every public module, class and function documented; Google-style arguments complete)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ("derivations", "cadcam_numeric", "reports")
MAX_LINES = 80
MAX_COMPLEXITY = 20
#: pydocstyle rules enforced on the engine and the map methods (ruff's D rules, Google convention)
DOCSTRING_RULES = "D100,D101,D102,D103,D104,D106,D417,D419"


def _ruff() -> str:
    return shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"


def _production_files() -> list[Path]:
    return [p for pkg in PRODUCTION for p in sorted((ROOT / pkg).rglob("*.py")) if "generated" not in p.parts]


def _long_functions(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]


def test_no_production_function_is_longer_than_80_lines():
    long = [entry for path in _production_files() for entry in _long_functions(path)]
    assert not long, long


def test_the_length_measure_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    assert _long_functions(tmp_path / "long.py", tmp_path) == [f"long.py:1 long ({MAX_LINES + 1} lines)"]


def _ruff_check(rules: str, *paths: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_ruff(), "check", "--select", rules, *extra, "--exclude", "cadcam_numeric/generated", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_no_production_function_is_above_complexity_20():
    result = _ruff_check("C901", *PRODUCTION, extra=("--config", f"lint.mccabe.max-complexity = {MAX_COMPLEXITY}"))
    assert result.returncode == 0, result.stdout


def test_the_engine_and_the_map_methods_pass_the_docstring_rules():
    convention = ("--config", 'lint.pydocstyle.convention = "google"')
    result = _ruff_check(DOCSTRING_RULES, "cadcam_numeric/engine", "cadcam_numeric/methods", extra=convention)
    assert result.returncode == 0, result.stdout
