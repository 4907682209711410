"""The README's two commands exist, and CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks]


def test_readme_has_main_and_test_commands():
    commands = readme_commands()
    assert len(commands) >= 2
    main, tests = commands[0], commands[1]
    for command in (main, tests):
        assert "pip install torch==2.14.1 torchvision==0.29.1" in command
    assert "cadcam" in main
    assert "pytest" in tests


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


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


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


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    """Each fenced ```python block is executed with small fixtures for the names it uses, so the README
    can never drift from the code again."""
    blocks = readme_python_blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        if "PCASVMGradCAM" in block:
            namespace = _vgg16_problem()
        elif "load_architecture_file" in block:
            namespace = _spec_problem(tmp_path)
        elif "MapStore" in block:
            namespace = _store_problem(tmp_path)
        else:
            namespace = _small_problem()
        exec(compile(block, "README.md", "exec"), namespace)


def test_the_readme_cites_only_files_in_the_repository():
    text = (ROOT / "README.md").read_text()
    assert "MATH.md" not in text and "../shared" not in text
    links = re.findall(r"\]\(([^)#]+)\)", text)
    cited = re.findall(r"`((?:derivations|cadcam_numeric|proofs_tests|reports|\.ci)/[\w./-]*)`", text)
    missing = [c for c in [*links, *cited] if not c.startswith("http") and not (ROOT / c.rstrip("/")).exists()]
    assert links and cited and not missing, missing


def test_the_readme_table_of_accepted_estimators_is_the_engines():
    """The table between the markers is exactly what `cadcam accepted` prints from the engine's tuples."""
    from cadcam_numeric.engine.accepted import accepted_table

    text = (ROOT / "README.md").read_text()
    begin, end = "<!-- accepted-table: begin -->\n", "<!-- accepted-table: end -->"
    assert begin in text and end in text
    assert text.split(begin, 1)[1].split(end, 1)[0] == accepted_table()
