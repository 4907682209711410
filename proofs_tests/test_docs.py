"""The README and the documentation site are executable: the README's two commands exist and CI runs
the test command verbatim; every Python block of the README and of docs/ runs; every `cadcam` line of
their shell blocks is a command the parser takes; every file they cite exists; the site builds with
``mkdocs build --strict`` and its pages load in headless Chromium without a console message."""

from __future__ import annotations

import functools
import http.server
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the README and every page of the site
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_LINES = 200
SEARCH_INDEX = "search/search_index.json"


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks]


def test_readme_has_main_and_test_commands():
    commands = readme_commands()
    assert len(commands) >= 2
    main, tests = commands[0], commands[1]
    for command in (main, tests):
        assert command.startswith("./setup.sh && ")
    assert "cadcam" in main
    assert "pytest" in tests
    setup = (ROOT / "setup.sh").read_text()
    assert "pip install torch==2.14.1 torchvision==0.29.1" in setup and "pip install -e '.[test]'" in setup


def test_the_readme_is_a_front_door():
    """At most 200 lines, and a map (the first Python block, which calls explain) within its first 60."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES, len(lines)
    first_python = next(i for i, line in enumerate(lines) if line == "```python")
    end = next(i for i in range(first_python + 1, len(lines)) if lines[i] == "```")
    assert end < 60 and any("explain(" in line for line in lines[first_python:end])


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_the_spec_loop_in_the_readme_parses_and_names_a_spec_that_exists():
    """Every `cadcam` line of the spec loop is accepted by the CLI's parser (the loop itself runs in
    ``test_architecture_spec.test_cli_loop_demo_explain_report_on_the_example_spec``)."""
    import shlex

    from cadcam_numeric.cli import build_parser
    from cadcam_numeric.spec.architecture import read_spec_file

    loop = next(b for b in readme_commands() if b.startswith("S="))
    spec = loop.splitlines()[0].removeprefix("S=")
    assert read_spec_file(ROOT / spec)[1].activations
    lines = [line.split("#")[0].replace("$S", spec) for line in loop.splitlines()[1:]]
    assert [shlex.split(line)[1] for line in lines] == ["derive", "verify", "demo", "explain", "report"]
    for line in lines:
        build_parser().parse_args(shlex.split(line)[1:])


# --- every Python block of the README runs ----------------------------------------------------


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", page.read_text(), flags=re.S)


def readme_python_blocks() -> list[str]:
    return python_blocks(ROOT / "README.md")


def _small_problem() -> dict:
    """A small CNN (backbone + head), a PCA on dense layer 2 and an SVM, all fitted for real."""
    import numpy as np
    import torch
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC
    from torch import nn

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    head = nn.Sequential(nn.Flatten(), nn.Linear(256, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 5)).eval()
    images = torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = backbone(images)
        q2 = head[:5](features).numpy()
    pca = PCA(3).fit(q2)
    svm = SVC(kernel="rbf").fit(pca.transform(q2), np.arange(12) % 3)
    return {"backbone": backbone, "head": head, "images": images, "features": features, "pca": pca, "svm": svm}


def _vgg16_problem() -> dict:
    """torchvision's VGG16 (random weights: no download), PCA on dense layer 2 (4,096 wide), an SVM."""
    import numpy as np
    import torch
    import torchvision
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).eval()
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q2 = model.classifier[:5](torch.flatten(model.avgpool(model.features(images)), 1)).numpy()
    pca = PCA(3).fit(q2)
    svm = SVC(kernel="rbf").fit(pca.transform(q2), np.arange(4) % 2)
    return {"model": model, "images": images, "pca": pca, "svm": svm}


def _spec_problem(directory: Path) -> dict:
    """The example spec derived into my_derived/ (as `cadcam derive` does), a head built from it."""
    import shutil

    import numpy as np
    import torch
    from sklearn.decomposition import PCA
    from torch import nn

    from cadcam_numeric.spec.architecture import load_architecture_file
    from cadcam_numeric.spec.derive import derive_spec

    shutil.copy(ROOT / "derivations" / "examples" / "custom_head.toml", directory / "my_head.toml")
    assert derive_spec(directory / "my_head.toml", directory / "my_derived", cases=2).ok
    arch = load_architecture_file(directory / "my_head.toml", directory / "my_derived")
    torch.manual_seed(0)
    widths = [4 * 3 * 3] + [layer.width for layer in arch.spec.dense] + [arch.spec.classes]
    modules: list[nn.Module] = [nn.Flatten()]
    for i, act in enumerate(arch.activation_modules()):
        modules += [nn.Linear(widths[i], widths[i + 1]), act]
    head = nn.Sequential(*modules, nn.Linear(widths[-2], widths[-1])).eval()
    features = torch.randn(40, 4, 3, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        q = head[: 1 + 2 * arch.spec.pca_after](features).numpy()
    pca = PCA(arch.spec.n_components).fit(q)
    return {
        "features": features,
        "head": head,
        "pca": pca,
        "train_scores": pca.transform(q),
        "labels": np.arange(40) % 3,
    }


def _store_problem(directory: Path) -> dict:
    """A map store in ./maps, as `cadcam explain digits --bundle B --out maps` writes it."""
    from cadcam_numeric.pipeline.explain_store import explain_to_store
    from cadcam_numeric.pipeline.small_demo import small_demo_bundle

    bundle = small_demo_bundle(directory / "bundle")
    explain_to_store(bundle, "digits", directory / "maps", shard_size=100, workers=0, progress=False)
    return {}


def _bundle_problem(directory: Path) -> dict:
    """A small bundle in ./bundle, as `cadcam demo` writes one."""
    from cadcam_numeric.pipeline.small_demo import small_demo_bundle

    small_demo_bundle(directory / "bundle")
    return {}


def _namespace_for(block: str, directory: Path) -> dict:
    if "load_bundle" in block:
        return _bundle_problem(directory)
    if "PCASVMGradCAM" in block:
        return _vgg16_problem()
    if "load_architecture_file" in block:
        return _spec_problem(directory)
    if "MapStore" in block:
        return _store_problem(directory)
    return _small_problem()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_python_block_runs(page, tmp_path, monkeypatch):
    """Each fenced ```python block is executed with small fixtures for the names it uses, so the README and
    the site can never drift from the code."""
    monkeypatch.chdir(tmp_path)
    for block in python_blocks(page):
        exec(compile(block, str(page.relative_to(ROOT)), "exec"), _namespace_for(block, tmp_path))


def test_the_readme_and_the_site_hold_python_blocks():
    assert len(readme_python_blocks()) >= 2
    assert sum(len(python_blocks(p)) for p in PAGES) >= 8


def _cadcam_lines(page: Path) -> list[str]:
    """Every `cadcam ...` line of the page's shell blocks, without comments, `$S` set as the block sets it."""
    lines = []
    for block in re.findall(r"```(?:bash|console|sh)\n(.*?)\n```", page.read_text(), flags=re.S):
        spec = re.search(r"^S=(\S+)", block, flags=re.M)
        for line in block.splitlines():
            line = line.split(" #")[0].strip().removeprefix(".venv/bin/")
            if line.startswith("cadcam "):
                lines.append(line.replace("$S", spec.group(1) if spec else "$S"))
    return lines


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_cadcam_line_is_a_command_the_parser_takes(page):
    from cadcam_numeric.cli import build_parser

    for line in _cadcam_lines(page):
        for command in line.split(" && "):
            words = shlex.split(command.removeprefix(".venv/bin/"))
            try:
                build_parser().parse_args(words[1:])
            except SystemExit:
                pytest.fail(f"{page.name}: `{command}` is not a command cadcam takes")


def _cited(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is not prose: `head[:2](x)` is no link
    links = [link for link in re.findall(r"\]\(([^)#]+)\)", text) if not link.startswith("http")]
    base = page.parent
    cited = re.findall(r"`((?:derivations|cadcam_numeric|proofs_tests|reports|docs|\.ci)/[\w./-]*)`", text)
    return [str((base / link).resolve().relative_to(ROOT)) for link in links] + cited


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_cited_is_in_the_repository(page):
    text = page.read_text()
    assert "MATH.md" not in text and "../shared" not in text
    missing = [c for c in _cited(page) if not (ROOT / c.rstrip("/")).exists()]
    assert not missing, missing


def test_the_table_of_accepted_estimators_is_the_engines():
    """The table between the markers is exactly what `cadcam accepted` prints from the engine's tuples."""
    from cadcam_numeric.engine.accepted import accepted_table

    text = (ROOT / "docs" / "guide.md").read_text()
    begin, end = "<!-- accepted-table: begin -->\n", "<!-- accepted-table: end -->"
    assert begin in text and end in text
    assert text.split(begin, 1)[1].split(end, 1)[0] == accepted_table()


# --- the documentation site ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return site


def test_the_site_builds_strict_with_every_page_and_the_api(built_site):
    pages = {p.parent.name for p in built_site.glob("*/index.html")}
    assert {p.stem for p in PAGES if p.parent.name == "docs" and p.stem != "index"} <= pages
    api = (built_site / "api" / "index.html").read_text()
    for name in (
        "engine.explain.explain",
        "engine.closed_form.ClosedForm",
        "engine.model_cam.PCASVMGradCAM",
        "engine.split.split_classifier",
        "methods.decom.decom_cam",
    ):
        assert f'id="cadcam_numeric.{name}"' in api, name  # a heading mkdocstrings rendered from the code
    cli = (built_site / "cli" / "index.html").read_text()
    assert "usage: cadcam explain" in cli and "usage: cadcam bench-dataset" in cli  # the parser's own help


@pytest.fixture(scope="module")
def served_site(built_site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize("path", ["index.html", "index.html?q=closed+form", "api/index.html", SEARCH_INDEX])
def test_the_site_loads_in_headless_chromium_without_a_console_message(served_site, path):
    """Served over HTTP as a user's browser gets it: the page's scripts run (Material marks the search box),
    and nothing is written to the console — no failed script, no missing asset."""
    run = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000"]
        + ["--enable-logging=stderr", "--v=0", "--dump-dom", f"{served_site}/{path}"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    if path.endswith(".json"):
        assert '"location"' in run.stdout and "ClosedForm" in run.stdout  # the search index holds the API
    else:
        assert 'data-md-component="search-query"' in run.stdout and "focus-visible" in run.stdout
