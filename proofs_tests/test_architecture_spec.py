"""Architecture specs: validation, derive → verify → explain with a custom activation and kernel
(maps against autograd through hand-written torch modules), and regeneration after a change."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from cadcam_numeric.cli import main
from cadcam_numeric.engine.explain import explain
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.spec.architecture import LoadedArchitecture, architecture_from_text
from cadcam_numeric.spec.code import CUSTOM_MODULE, load_custom_code
from cadcam_numeric.spec.derive import derive_spec
from derivations.architecture import SpecError, parse_architecture

EXAMPLE = Path(__file__).resolve().parents[1] / "derivations" / "examples" / "custom_head.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")


def toml_with(**changes: object) -> dict:
    """The example spec as a dict with dotted keys replaced (``{"pca.after": 1}``)."""
    doc = tomllib.loads(TEXT)
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = doc
        for key in path:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value
    return doc


def dumps(doc: dict) -> str:
    """Minimal TOML writer for the example's shapes (tables, inline arrays of inline tables)."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for section in ("backbone", "head", "pca", "svm", "training"):
        if section in doc:
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in doc[section].items()]
    for group in ("activations", "kernels"):
        for name, table in doc.get(group, {}).items():
            lines.append(f"[{group}.{name}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# validation


def test_the_example_spec_reads_as_written():
    spec = parse_architecture(tomllib.loads(TEXT))
    assert spec.widths == (40, 30, 20) and spec.classes == 10
    assert [d.activation for d in spec.dense] == ["relu", "mish_log", "leaky_relu"]
    assert spec.dense[2].parameters == {"negative_slope": 0.1}
    assert (spec.pca_after, spec.n_components, spec.whiten, spec.scaler) == (2, 3, False, True)
    assert spec.kernel == "inverse_quadratic" and spec.kernel_parameters == {"gamma": 0.5}
    assert spec.kernels["inverse_quadratic"].variable == "rho"
    assert dumps(tomllib.loads(TEXT)) and parse_architecture(tomllib.loads(dumps(tomllib.loads(TEXT)))) == spec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"head.dense.1.activation": "swish"}, "head.dense[1].activation: 'swish' is not allowed; allowed values:"),
        ({"svm.kernel": "laplace"}, "svm.kernel: 'laplace' is not allowed; allowed values: linear, poly, rbf"),
        ({"kernels.inverse_quadratic.kind": "radial"}, "kernels.inverse_quadratic.kind: 'radial' is not allowed"),
        ({"pca.after": 4}, "pca.after: expected an integer in 0..3, got 4"),
        ({"pca.kind": "kernel_pca"}, "pca.kind: 'kernel_pca' is not allowed; allowed values: pca, incremental_pca"),
        ({"pca.kind": "truncated_svd", "pca.whiten": True}, "pca.whiten: truncated_svd has no whitening"),
        ({"svm.kind": "logistic"}, "svm.kernel: logistic is linear"),
        ({"svm.kind": "knn"}, "svm.kind: 'knn' is not allowed; allowed values: svc, nu_svc, linear_svc, logistic"),
        ({"pca.components": 31}, "pca.components: expected an integer in 1..30, got 31"),
        ({"pca.whiten": "yes"}, "pca.whiten: expected true or false, got 'yes'"),
        ({"svm.kind": "linear_svc"}, "svm.kernel: linear_svc is linear"),
        ({"head.flatten": "nhwc"}, "head.flatten: 'nhwc' is not allowed; allowed values: channel_major, channels_last"),
        ({"head.dense.2.parameters": {"alpha": 1.0}}, "are not parameters of leaky_relu (it takes ['negative_slope'])"),
        (
            {"svm.parameters": {"degree": 2}},
            "svm.parameters: ['degree'] are not parameters of kernel inverse_quadratic",
        ),
        ({"backbone.name": "resnet50"}, "backbone.name: 'resnet50' is not allowed; allowed values: small_vgg, vgg16"),
        ({"backbone.input_size": 30}, "backbone.input_size: the small backbone needs a multiple of 4"),
        ({"head.colour": "red"}, "head: unknown key(s) ['colour']"),
        ({"activations.mish_log.parameters": {"z": 1.0}}, "'z' is reserved"),
        ({"activations.mish_log.variable": "exp"}, "'exp' is a function or constant name"),
    ],
)
def test_bad_specs_name_the_key_and_the_allowed_values(changes, message):
    with pytest.raises(SpecError) as info:
        parse_architecture(toml_with(**changes))
    assert message in str(info.value)


def test_the_cnn_svm_recipe_is_a_spec_and_verifies(capsys, tmp_path):
    """Issue 14: PCA on the pooled features (after = 0), an IncrementalPCA after a StandardScaler,
    a logistic regression: the spec parses, `cadcam verify SPEC` checks its chain, and its
    estimator and pipeline settings are what it says."""
    from cadcam_numeric.spec.architecture import pipeline_overrides

    paper = (EXAMPLE.parent / "paper_head.toml").read_text(encoding="utf-8")
    text = (
        paper.replace("after = 2", 'after = 0\nkind = "incremental_pca"\nscaler = true')
        .replace('kind = "svc"\nkernel = "rbf"', 'kind = "logistic"\nkernel = "linear"')
        .replace("parameters = { gamma = 1.0 }", "")
    )
    loaded = architecture_from_text(text, None)
    spec = loaded.spec
    assert (spec.pca_after, spec.pca_kind, spec.pca_scaler, spec.svm_kind) == (0, "incremental_pca", True, "logistic")
    assert type(loaded.svm_estimator()).__name__ == "LogisticRegression"
    overrides = pipeline_overrides(spec)
    assert overrides["pca_after"] == 0 and overrides["scale_before_pca"] and overrides["pca_kind"] == "incremental_pca"
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["verify", str(path), "--cases", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows and all(r["passed"] for r in rows)


def test_reserved_and_malformed_entry_names_are_refused():
    doc = toml_with()
    doc["activations"]["lambda"] = {"expression": "x"}
    with pytest.raises(SpecError, match="'lambda' is reserved"):
        parse_architecture(doc)
    doc = toml_with()
    doc["activations"]["relu"] = {"expression": "x"}
    with pytest.raises(SpecError, match="'relu' is a catalogue activation"):
        parse_architecture(doc)


def test_cli_refuses_a_hostile_expression_and_writes_nothing(tmp_path, capsys):
    doc = toml_with(**{"activations.mish_log.expression": "x * __import__('os').getcwd()"})
    spec = tmp_path / "bad.toml"
    spec.write_text(dumps(doc), encoding="utf-8")
    assert main(["derive", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "activations.mish_log.expression: name '__import__' is not allowed" in err
    assert not (tmp_path / "out").exists()


def test_derive_refuses_an_activation_that_is_not_finite(tmp_path, capsys):
    doc = toml_with(**{"activations.mish_log.expression": "x * exp(x * x)"})  # overflows near |x| = 27
    spec = tmp_path / "overflow.toml"
    spec.write_text(dumps(doc), encoding="utf-8")
    assert main(["derive", str(spec), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "custom.mish_log is finite on [-30, 30]" in captured.out and "FAIL" in captured.out
    assert "refused: nothing was written" in captured.err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# derive -> verify -> explain


@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spec") / "derived"
    result = derive_spec(EXAMPLE, out, cases=5)
    assert result.ok and result.derivation.holds
    return out


class HandMish(nn.Module):
    """The example's activation written by hand (no generated code): x tanh(log(1 + e^x))."""

    def forward(self, x):
        return x * torch.tanh(torch.log1p(torch.exp(x)))


def hand_kernel(p: torch.Tensor, s: torch.Tensor, gamma: float) -> torch.Tensor:
    """The example's kernel written by hand: 1 / (1 + γ‖s − p‖²)."""
    return 1.0 / (1.0 + gamma * ((p[:, None, :] - s[None, :, :]) ** 2).sum(-1))


class HandOvOScores(nn.Module):
    """Oriented one-vs-one class scores a_c = Σ_{j≠c} ±d_cj (NOTES.md §2), from scikit-learn's attributes."""

    def __init__(self, pipeline, train_scores: np.ndarray):
        super().__init__()
        scaler, self.svc = pipeline.steps[0][1], pipeline.steps[1][1]
        self.mean = torch.tensor(scaler.mean_)
        self.scale = torch.tensor(scaler.scale_)
        self.sv = torch.tensor(scaler.transform(train_scores)[self.svc.support_])
        self.gamma = self.svc.kernel.parameters["gamma"]

    def pairwise(self, p):
        z = (p - self.mean) / self.scale
        k = hand_kernel(z, self.sv, self.gamma)
        svc, n = self.svc, len(self.svc.classes_)
        starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
        out, idx = [], 0
        for i in range(n):
            for j in range(i + 1, n):
                si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                d = k[:, si] @ torch.tensor(svc.dual_coef_[j - 1, si]) + k[:, sj] @ torch.tensor(svc.dual_coef_[i, sj])
                out.append((i, j, d + float(svc.intercept_[idx])))
                idx += 1
        return out

    def forward(self, p):
        scores = torch.zeros(p.shape[0], len(self.svc.classes_), dtype=p.dtype)
        for i, j, d in self.pairwise(p):
            scores[:, i] += d
            scores[:, j] -= d
        return scores


def build_problem(arch: LoadedArchitecture, seed: int = 0, hand: bool = False):
    """A random head shaped by the spec (features 4×3×3), PCA and the spec's SVM fitted on its outputs."""
    torch.manual_seed(seed)
    spec = arch.spec
    acts = arch.activation_modules()
    widths = [36, *spec.widths]
    linears = [nn.Linear(widths[i], widths[i + 1]).double() for i in range(len(spec.widths))]
    out = nn.Linear(widths[-1], spec.classes).double()
    train = torch.randn(160, 4, 3, 3, dtype=torch.float64)

    def head_with(modules):
        layers: list[nn.Module] = [nn.Flatten()]
        for lin, act in zip(linears, modules):
            layers += [lin, act]
        return nn.Sequential(*layers, out)

    head = head_with(acts)
    with torch.no_grad():
        q = head[: 1 + 2 * spec.pca_after](train).numpy()
    pca = PCA(spec.n_components, whiten=spec.whiten, random_state=0).fit(q)
    scores = pca.transform(q)
    labels = np.digitize(scores[:, 0], np.quantile(scores[:, 0], [1 / 3, 2 / 3]))  # 3 classes
    svm = arch.svm_estimator().fit(scores, labels)
    if not hand:
        return head, pca, svm, scores
    hand_acts = [HandMish() if layer.activation == "mish_log" else act for layer, act in zip(spec.dense, acts)]
    return head, pca, svm, scores, head_with(hand_acts)


def autograd_map(module: nn.Module, features: torch.Tensor, select) -> torch.Tensor:
    f = features.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(select(module(f)).sum(), f)
    weights = grad.sum((2, 3))
    return torch.einsum("nt,nthw->nhw", weights, features)


def test_derive_verify_explain_maps_equal_autograd(derived, capsys):
    # derive wrote the module, its LaTeX and a summary; verify passes on the written module
    assert sorted(p.name for p in derived.iterdir()) == [
        ".cadcam-output",
        CUSTOM_MODULE,
        "derivation.tex",
        "summary.json",
    ]
    assert main(["verify", str(EXAMPLE), "--derived", str(derived), "--cases", "3"]) == 0
    assert "9 passed, 0 failed" in capsys.readouterr().out

    arch = architecture_from_text(TEXT, derived)
    head, pca, svm, train_scores, hand_head = build_problem(arch, hand=True)
    features = torch.randn(7, 4, 3, 3, dtype=torch.float64)
    result = explain(features, head, pca, arch.spec.pca_after, svm)

    # Grad-CAM of the CNN's prediction, through the hand-written head
    target = hand_head(features).argmax(1)
    expected = autograd_map(hand_head, features, lambda y: y[torch.arange(7), target])
    torch.testing.assert_close(result.gradcam, torch.relu(expected), rtol=1e-9, atol=1e-12)

    # PCA-Grad-CAM ± for every component
    a = arch.spec.pca_after
    components, mean = torch.tensor(pca.components_), torch.tensor(pca.mean_)

    def pca_module(f):
        return (hand_head[: 1 + 2 * a](f) - mean) @ components.T

    for b in range(arch.spec.n_components):
        signed = autograd_map(pca_module, features, lambda p, b=b: p[:, b])
        torch.testing.assert_close(result.pca_positive[:, b], torch.relu(signed), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(result.pca_negative[:, b], torch.relu(-signed), rtol=1e-9, atol=1e-12)

    # SVM-Grad-CAM of the SVM's prediction, through the hand-written kernel
    scores_module = HandOvOScores(svm, train_scores)
    p = pca_module(features).detach()
    svc = svm.steps[1][1]
    svc.decision_function_shape = "ovo"
    z = svm.steps[0][1].transform(p.numpy())
    pairwise = torch.stack([d for _, _, d in scores_module.pairwise(p)], 1)
    np.testing.assert_allclose(pairwise.numpy(), svc.decision_function(z), rtol=1e-10, atol=1e-10)
    predicted = torch.as_tensor(svm.predict(p.numpy()))
    np.testing.assert_array_equal(np.asarray(result.svm_prediction), predicted.numpy())
    signed = autograd_map(
        lambda f: scores_module(pca_module(f)), features, lambda s: s[torch.arange(7), predicted.long()]
    )
    torch.testing.assert_close(result.svm, torch.relu(signed), rtol=1e-9, atol=1e-12)
    assert float(result.svm.abs().max()) > 0  # not a vacuous comparison


def test_derive_writes_whole_directories_and_loading_refuses_edits(derived, tmp_path):
    arch_spec = architecture_from_text(TEXT, derived).spec
    edited = tmp_path / "edited"
    edited.mkdir()
    text = (derived / CUSTOM_MODULE).read_text(encoding="utf-8")
    (edited / CUSTOM_MODULE).write_text(text.replace("return t0 + z", "return t0 + 2 * z"), encoding="utf-8")
    with pytest.raises(CadcamInputError, match="is not what this spec generates"):
        load_custom_code(edited, arch_spec)
    with pytest.raises(CadcamInputError, match="pass --derived DIR"):
        architecture_from_text(TEXT, None)


def _generated(doc: dict, tmp_path: Path, name: str) -> tuple[str, str, LoadedArchitecture]:
    spec_file = tmp_path / f"{name}.toml"
    spec_file.write_text(dumps(doc), encoding="utf-8")
    out = tmp_path / name
    assert derive_spec(spec_file, out, cases=3).ok
    module = (out / CUSTOM_MODULE).read_text(encoding="utf-8")
    body = "\n".join(line for line in module.splitlines() if "SHA256" not in line.upper())
    return body, (out / "derivation.tex").read_text(encoding="utf-8"), architecture_from_text(dumps(doc), out)


def test_changing_a_layers_activation_or_the_pca_position_regenerates_code_and_maps(tmp_path):
    base_code, base_tex, base = _generated(toml_with(), tmp_path, "base")
    swish_code, swish_tex, swish = _generated(
        toml_with(**{"activations.mish_log.expression": "x * sigmoid(x)"}), tmp_path, "swish"
    )
    moved_code, moved_tex, moved = _generated(toml_with(**{"pca.after": 1}), tmp_path, "moved")

    assert swish_code != base_code and "torch.sigmoid(z)" in swish_code  # new f and f' generated
    assert moved_code == base_code  # same functions; only the spec hash line differs
    assert r"\mathbf p=V^\top(\mathbf q_1-\mathbf u)" in moved_tex and r"(\mathbf q_2-\mathbf u)" in base_tex
    assert swish_tex != base_tex

    features = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    maps = {}
    for name, arch in (("base", base), ("swish", swish), ("moved", moved)):
        head, pca, svm, _ = build_problem(arch, seed=1)
        maps[name] = explain(features, head, pca, arch.spec.pca_after, svm)
    assert not torch.allclose(maps["base"].gradcam, maps["swish"].gradcam)
    assert not torch.allclose(maps["base"].pca_positive, maps["moved"].pca_positive)
    torch.testing.assert_close(maps["base"].gradcam, maps["moved"].gradcam)  # same head: Grad-CAM unchanged


def test_cli_loop_demo_explain_report_on_the_example_spec(derived, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["demo", "--spec", str(EXAMPLE), "--derived", str(derived), "--out", str(run), "--epochs", "1"]
    assert main([*args, "--no-report"]) == 0
    assert "Spec SVM (inverse_quadratic, standardised scores)" in (run / "table3.md").read_text()
    assert sorted(p.name for p in (run / "test_images").glob("*.png"))[0] == "true0_test24.png"
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8)).save(image)
    capsys.readouterr()
    assert main(["explain", str(image), "--bundle", str(run / "bundle"), "--out", str(tmp_path / "maps")]) == 2
    assert "pass --derived DIR" in capsys.readouterr().err
    explain_args = ["explain", str(image), "--bundle", str(run / "bundle"), "--derived", str(derived)]
    assert main([*explain_args, "--out", str(tmp_path / "maps")]) == 0
    other = tmp_path / "other.toml"
    other.write_text(dumps(toml_with(**{"pca.after": 1})), encoding="utf-8")
    assert main([*explain_args, "--spec", str(other), "--out", str(tmp_path / "maps2")]) == 2
    assert "is not what this spec generates" in capsys.readouterr().err  # the derived code is the example's
    other_derived = tmp_path / "other_derived"
    assert main(["derive", str(other), "--out", str(other_derived), "--cases", "2"]) == 0
    mismatch = ["explain", str(image), "--bundle", str(run / "bundle"), "--derived", str(other_derived)]
    assert main([*mismatch, "--spec", str(other), "--out", str(tmp_path / "maps2")]) == 2
    assert "the bundle was made from another spec" in capsys.readouterr().err
    maps = np.load(tmp_path / "maps" / "maps.npz")
    assert maps["svm_raw"].shape == (1, 8, 8) and np.isfinite(maps["svm_raw"]).all()
    rep = ["report", "--spec", str(EXAMPLE), "--derived", str(derived), "--out", str(tmp_path / "rep")]
    status = main([*rep, "--no-verify"])
    tex = (tmp_path / "rep" / "report.tex").read_text()
    assert status in (0, 3)  # 3: LaTeX not installed, .tex written
    assert "This spec, step by step" in tex and "Activation of this head: \\texttt{mish\\_log}" in tex


class WrongMish(nn.Module):
    """Claims to be the spec's activation but computes x tanh(x)."""

    def forward(self, x):
        return x * torch.tanh(x)


def test_the_users_own_activation_class_is_matched_by_name_and_checked(tmp_path):
    own = f"{HandMish.__module__}.{HandMish.__qualname__}"
    doc = toml_with(**{"activations.mish_log.torch_module": own})
    _, _, arch = _generated(doc, tmp_path, "own")
    assert arch.code.activations["mish_log"].torch_module == own
    head, pca, svm, _, hand_head = build_problem(arch, hand=True)
    features = torch.randn(4, 4, 3, 3, dtype=torch.float64)
    with pytest.raises(CadcamInputError, match="cannot differentiate HandMish"):
        explain(features, hand_head, pca, 2, svm)  # without the spec's code the class is unknown
    ours = explain(features, head, pca, 2, svm)
    theirs = explain(features, hand_head, pca, 2, svm, custom_activations=arch.code.activations)
    torch.testing.assert_close(theirs.svm, ours.svm, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(theirs.pca_positive, ours.pca_positive, rtol=1e-12, atol=1e-14)
    wrong = nn.Sequential(*[WrongMish() if isinstance(m, HandMish) else m for m in hand_head])
    WrongMish.__qualname__, saved = "HandMish", WrongMish.__qualname__
    try:
        with pytest.raises(CadcamInputError, match="does not compute the spec's activation 'mish_log'"):
            explain(features, wrong, pca, 2, svm, custom_activations=arch.code.activations)
    finally:
        WrongMish.__qualname__ = saved


def test_every_whitelisted_function_derives_generates_and_verifies(tmp_path):
    """abs, where, expm1, atan, erf, sinh, log1p, sqrt, sigmoid, cos, max, min; a dot-product and a
    stationary kernel; whitened PCA on layer 3 — all proved, printed, and checked against autograd."""
    spec = Path(__file__).parent / "data" / "every_function.toml"
    result = derive_spec(spec, tmp_path / "out", cases=3)
    assert result.derivation.holds, [p.name for p in result.derivation.proofs if not p.holds]
    assert all(r.passed for r in result.rows), [r.function for r in result.rows if not r.passed]
    source = (tmp_path / "out" / CUSTOM_MODULE).read_text()
    for call in ("torch.log1p(", "torch.expm1(", "torch.erf(", "torch.atan(", "torch.sign(", "torch.where("):
        assert call in source
