"""The layout is the architecture: who may import whom, checked on every import in the tree (also
those inside functions, so that no cycle hides behind a lazy import).

* ``derivations`` imports no torch and nothing of ``cadcam_numeric`` or ``reports``;
* ``cadcam_numeric.engine`` imports only torch, scikit-learn, NumPy/SciPy, the standard library,
  ``cadcam_numeric.generated``, ``errors``, ``catalogue_types``, ``names`` and itself;
* ``cadcam_numeric.generated`` imports only torch and ``catalogue_types``;
* nothing in ``cadcam_numeric`` imports ``reports`` except the CLI, where the two meet;
* nothing imports the CLI; no module imports another module's private (``_name``) names.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("derivations", "cadcam_numeric", "reports")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names]))
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(module: str) -> str:
    return module.split(".")[0]


STDLIB = set(sys.stdlib_module_names) | {"__future__"}
ENGINE_ALLOWED = {"torch", "sklearn", "numpy", "scipy"} | STDLIB
ENGINE_OWN = (
    "cadcam_numeric.engine",
    "cadcam_numeric.generated",
    "cadcam_numeric.errors",
    "cadcam_numeric.catalogue_types",
    "cadcam_numeric.names",
)


def _violations(files, allowed) -> list[str]:
    bad = []
    for path in files:
        for module, _ in _imports(path):
            if not allowed(module):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    return bad


def test_derivations_import_no_torch_and_nothing_above_them():
    assert not _violations(
        _files("derivations"), lambda m: _top(m) not in {"torch", "cadcam_numeric", "reports", "torchvision"}
    )


def test_engine_imports_only_torch_sklearn_generated_errors_catalogue_types():
    def allowed(module: str) -> bool:
        return _top(module) in ENGINE_ALLOWED or module.startswith(ENGINE_OWN)

    assert not _violations(_files("cadcam_numeric/engine"), allowed)


def test_generated_imports_only_torch_and_catalogue_types():
    allowed = {"torch", "cadcam_numeric.catalogue_types", "cadcam_numeric.generated", "__future__"}
    assert not _violations(
        _files("cadcam_numeric/generated"),
        lambda m: m in allowed or _top(m) == "torch" or m.startswith("cadcam_numeric.generated"),
    )


def test_only_the_cli_meets_reports_and_nothing_imports_the_cli():
    bad = []
    for package in PACKAGES:
        for path in _files(package):
            for module, _ in _imports(path):
                in_cli = path.is_relative_to(ROOT / "cadcam_numeric" / "cli")
                if module.startswith("cadcam_numeric.cli") and path.name != "__main__.py" and not in_cli:
                    bad.append(f"{path.relative_to(ROOT)} imports the CLI")
                if package == "cadcam_numeric" and _top(module) == "reports" and not in_cli:
                    bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad


@pytest.mark.parametrize("package", PACKAGES)
def test_no_private_names_cross_modules(package):
    bad = []
    for path in _files(package):
        for module, names in _imports(path):
            if _top(module) in PACKAGES and module != _module_name(path):
                bad += [
                    f"{path.relative_to(ROOT)}: {module}.{n}" for n in names if n.startswith("_") and n != "__version__"
                ]
    assert not bad


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (``from pkg import sub`` is an edge to ``pkg.sub``)."""
    modules = {_module_name(p): p for p in _files(package)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, names in _imports(path):
            for imported in names or [None]:
                target = f"{module}.{imported}" if imported and f"{module}.{imported}" in modules else module
                if target in modules and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_of_cadcam_numeric_has_no_cycle():
    """Every import counts, lazy ones inside functions too (issue 24: svm and calibrated were one)."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]  # the detector finds a cycle
    assert not _cycles(_import_graph("cadcam_numeric"))
