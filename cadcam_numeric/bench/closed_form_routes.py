"""What a reused :class:`~cadcam_numeric.engine.closed_form.ClosedForm` costs, against the head's own
forward and the autograd baselines, and what the exported whole model costs in ONNX Runtime.

Head routes, from the paper head's features (random ReLU feature maps of the pool5 shape, so batch
256 needs no backbone pass), all maps of the predicted classes unless said otherwise:

* ``head_forward``         — ``head(F)``: the logits alone, the floor;
* ``explained_forward``    — logits, PCA scores p and the SVM's class scores a(p): every quantity
  the maps explain, without a gradient;
* ``cf_reused``            — ``cf(F)`` of a ``ClosedForm`` built once (logits and every map);
* ``cf_all``               — the same with ``classes="all"`` (one map per class, 10 + 10);
* ``cf_compiled``          — ``torch.compile(cf, fullgraph=True)`` (inductor), compiled before timing;
* ``explain_per_call``     — ``explain(F, head, pca, 2, svm)``: the head and estimators read on every call;
* ``autograd_loop``        — one head forward with graph, one backward per target (class, p₁..p₃, SVM);
* ``autograd_batched``     — one ``torch.autograd.grad(..., is_grads_batched=True)`` for the five targets;
* ``torch_func``           — ``vmap(jacrev(·))`` over the images.

ONNX Runtime routes (the demo's architecture: small_vgg at 32 px and its head 40-30-20-10, PCA B = 3
on layer 2, RBF SVC; random weights, PCA and SVC fitted on its features), exported with
``torch.onnx.export(dynamo=True)`` and run by one CPU session each:

* ``ort_logits`` — image → logits;  ``ort_maps`` — ``ExplainingModel``: image → logits + every map.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.svm import SVC
from torch import Tensor, nn

from cadcam_numeric.bench.problem import N_CLASSES, N_COMPONENTS, PCA_AFTER, BenchProblem
from cadcam_numeric.bench.routes import Routes
from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.explain import explain
from cadcam_numeric.engine.explaining_model import ExplainingModel
from cadcam_numeric.engine.head import layer_cut
from cadcam_numeric.pipeline.backbones import build_backbone
from cadcam_numeric.pipeline.training import make_head

__all__ = ["CLOSED_FORM_ROUTES", "ORT_ROUTES", "closed_form_agreement", "closed_form_routes", "onnx_runtime_routes"]

#: route key -> row label
CLOSED_FORM_ROUTES = {
    "head_forward": "head(F): logits only",
    "explained_forward": "logits + p + SVM scores, no gradient",
    "cf_reused": "ClosedForm, built once: logits + every map",
    "cf_all": 'ClosedForm(classes="all"): a map per class',
    "cf_compiled": "torch.compile(ClosedForm, fullgraph=True), inductor",
    "explain_per_call": "explain(): head and estimators read per call",
    "autograd_loop": "autograd, one backward per target",
    "autograd_batched": "autograd, is_grads_batched=True",
    "torch_func": "torch.func, vmap(jacrev)",
}
ORT_ROUTES = {"ort_logits": "ONNX Runtime: image → logits", "ort_maps": "ONNX Runtime: image → logits + every map"}


def _autograd_batched(problem: BenchProblem, routes: Routes) -> Callable[[Tensor], Tensor]:
    """Channel weights of the five targets by one batched vector-Jacobian product."""

    def run(features: Tensor) -> Tensor:
        cls, svm_idx = routes.targets(features)
        f = features.detach().clone().requires_grad_(True)
        logits, p, a = problem.outputs(f)
        rows = torch.arange(f.shape[0], device=f.device)
        selected = torch.stack([logits[rows, cls], *(p[:, b] for b in range(N_COMPONENTS)), a[rows, svm_idx]], 1)
        k = selected.shape[1]
        seeds = torch.eye(k, dtype=f.dtype, device=f.device)[:, None, :].expand(k, *selected.shape)
        (g,) = torch.autograd.grad(selected, f, seeds, is_grads_batched=True)  # (5, N, T, M, N')
        return g.sum(dim=(-2, -1)).transpose(0, 1)

    return run


def _compiled(cf: ClosedForm, example: Tensor) -> Callable[[Tensor], object] | None:
    """``torch.compile(cf, fullgraph=True)`` warmed on ``example`` (None where inductor cannot build)."""
    compiled = torch.compile(cf, fullgraph=True, dynamic=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled(example)
    except Exception as exc:  # no C++ toolchain, or an inductor failure: the row says n/a
        print(f"bench: torch.compile (inductor) skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return None
    return compiled


def closed_form_routes(problem: BenchProblem, routes: Routes, batch: int) -> dict[str, Callable[[], object]]:
    """Route key -> a call on one batch of ``batch`` random pool5-shaped features (module docstring)."""
    gen = torch.Generator().manual_seed(batch)
    features = torch.randn(batch, *problem.feature_shape, generator=gen).relu().to(problem.device, problem.dtype)
    pr = problem
    shape = problem.feature_shape
    cf = ClosedForm(pr.head, pr.pca, PCA_AFTER, pr.svm, dtype=pr.dtype, feature_shape=shape).to(pr.device)
    cf_all = ClosedForm(pr.head, pr.pca, PCA_AFTER, pr.svm, dtype=pr.dtype, classes="all", feature_shape=shape)
    cf_all = cf_all.to(pr.device)
    compiled = _compiled(cf, features)
    batched = _autograd_batched(problem, routes)
    table: dict[str, Callable[[], object] | None] = {
        "head_forward": lambda: pr.head(features),
        "explained_forward": lambda: pr.outputs(features),
        "cf_reused": lambda: cf(features),
        "cf_all": lambda: cf_all(features),
        "cf_compiled": None if compiled is None else (lambda: compiled(features)),
        "explain_per_call": lambda: explain(features, pr.head, pr.pca, PCA_AFTER, pr.svm),
        "autograd_loop": lambda: routes.autograd_head(features),
        "autograd_batched": lambda: batched(features),
        "torch_func": lambda: routes.torch_func_head(features),
    }
    no_grad = {"head_forward", "explained_forward", "cf_reused", "cf_all", "cf_compiled", "explain_per_call"}
    return {key: (_without_grad(fn) if key in no_grad else fn) for key, fn in table.items() if fn is not None}


def _without_grad(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return fn()

    return run


def _demo_architecture(seed: int) -> tuple[nn.Module, nn.Module, ClosedForm]:
    """small_vgg + the demo head with random weights, PCA (B = 3) on layer 2 and an RBF SVC fitted on
    its outputs for 200 random images; ``(backbone, head, closed form)``."""
    torch.manual_seed(seed)
    backbone = build_backbone("small_vgg")
    features, head = backbone.features.eval(), make_head(backbone, N_CLASSES).eval()
    images = torch.rand(200, 3, backbone.input_size, backbone.input_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        f = features(images)
        q2 = head[: layer_cut(head, PCA_AFTER)](f).double().numpy()
    pca = PCA(N_COMPONENTS, random_state=seed).fit(q2)
    scores = pca.transform(q2)
    labels = np.argsort(np.argsort(scores[:, 0])) * N_CLASSES // len(scores)
    svm = SVC(kernel="rbf", gamma=1.0).fit(scores, labels)
    return features, head, ClosedForm(head, pca, PCA_AFTER, svm, feature_shape=tuple(f.shape[1:]))


def onnx_runtime_routes(batch: int, seed: int = 0) -> tuple[dict[str, Callable[[], object]], float] | str:
    """``ort_logits`` and ``ort_maps`` on one batch of the demo architecture, and the largest
    difference of any output of ``ort_maps`` from the eager model (relative to max(1, |value|));
    or why they cannot run."""
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime is not installed (pip install 'cadcam[export]')"
    backbone, head, cf = _demo_architecture(seed)
    models = {"ort_logits": nn.Sequential(backbone, head).eval(), "ort_maps": ExplainingModel(backbone, cf).eval()}
    size = 32
    example = torch.rand(2, 3, size, size)
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)).numpy()
    out: dict[str, Callable[[], object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, model in models.items():
            path = Path(tmp) / f"{key}.onnx"
            dim = torch.export.Dim("batch", min=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=({0: dim},), verbose=False)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            out[key] = lambda session=session, name=name: session.run(None, {name: images})
    with torch.no_grad():
        eager = models["ort_maps"](torch.from_numpy(images))
    got = out["ort_maps"]()
    difference = max(
        float((torch.as_tensor(g).double() - w.double()).abs().max() / max(1.0, float(w.double().abs().max())))
        for g, w in zip(got, eager.values(), strict=True)
    )
    return out, difference


def closed_form_agreement(problem: BenchProblem, routes: Routes, batch: int) -> float:
    """Largest relative difference of the reused ``ClosedForm``'s channel weights (class, p₁..p₃,
    SVM) from the batched-autograd route's, on one batch."""
    gen = torch.Generator().manual_seed(batch + 1)
    features = torch.randn(batch, *problem.feature_shape, generator=gen).relu().to(problem.device, problem.dtype)
    cf = ClosedForm(problem.head, problem.pca, PCA_AFTER, problem.svm, dtype=problem.dtype,
                    feature_shape=problem.feature_shape).to(problem.device)  # fmt: skip
    with torch.no_grad():
        out = cf(features)
    ours = torch.cat([out["class_weights"][:, None], out["pca_weights"], out["svm_weights"][:, None]], 1)
    theirs = _autograd_batched(problem, routes)(features)
    return float((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max().clamp_min(1e-30))
