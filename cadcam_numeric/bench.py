"""Benchmark: all maps of a batch in closed form vs one autograd backward per target.

The paper's head on VGG16 features (dense 40, 30, 20, C = 10; PCA with B = 3 on layer 2; an
RBF SVM on the PCA scores), random weights (timing does not depend on training), features
either at the last pooling layer (512×6×6) or at conv5_3 with the pooling moved into the head
(512×12×12 → MaxPool2d(2)). "All maps" = Grad-CAM + 3 PCA components (± from one signed map)
+ SVM-Grad-CAM, with weights; the baseline computes the same five gradients with
``torch.autograd.grad``, one backward each, then the same weighted sums. Timings are medians
of repeated runs measured in one process; they are ratios to read, not test assertions.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric.engine import explain
from cadcam_numeric.reference import ReferencePCA
from cadcam_numeric.svm import parse_svm

__all__ = ["BenchRow", "run_benchmark"]


@dataclass
class BenchRow:
    layout: str
    device: str
    dtype: str
    batch: int
    closed_form_ms: float
    autograd_ms: float
    speedup: float
    max_weight_rel_diff: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _setup(layout: str, batch: int, device: torch.device, dtype: torch.dtype, seed: int):
    gen = torch.Generator().manual_seed(seed)
    size = 6 if layout == "pool5 (6x6)" else 12
    front = [] if size == 6 else [nn.MaxPool2d(2)]
    head = (
        nn.Sequential(
            *front,
            nn.Flatten(),
            nn.Linear(512 * 36, 40),
            nn.ReLU(),
            nn.Linear(40, 30),
            nn.ReLU(),
            nn.Linear(30, 20),
            nn.ReLU(),
            nn.Linear(20, 10),
        )
        .to(device, dtype)
        .eval()
    )
    fit_features = torch.randn(200, 512, size, size, generator=gen).relu().to(device, dtype)
    with torch.no_grad():
        q2 = head[: len(front) + 5](fit_features).cpu().double().numpy()
    pca = PCA(3).fit(q2)
    scores = pca.transform(q2)
    labels = np.argsort(np.argsort(scores[:, 0])) * 10 // len(scores)  # 10 balanced classes along p_1
    svm = SVC(kernel="rbf", gamma=1.0, C=1.0).fit(scores, labels)
    features = torch.randn(batch, 512, size, size, generator=gen).relu().to(device, dtype)
    return head, front, pca, svm, features


def _autograd_maps(head, n_front, pca, svm, features):
    """Five backwards (class, 3 PCA components, SVM), each through the whole head."""
    f = features.clone().requires_grad_(True)
    logits = head(f)
    q2 = head[: n_front + 5](f)
    p = ReferencePCA(*(torch.as_tensor(a).to(f) for a in (pca.components_, pca.mean_)))(q2)
    svm_head = parse_svm(svm, f)
    target = logits.argmax(1)
    svm_index = svm_head.class_index(svm.predict(p.detach().cpu().double().numpy()), "svm").to(f.device)
    a = svm_head.class_scores(p)
    rows = torch.arange(f.shape[0], device=f.device)
    outputs = [logits[rows, target], p[:, 0], p[:, 1], p[:, 2], a[rows, svm_index]]
    weights, maps = [], []
    for k, out in enumerate(outputs):
        (g,) = torch.autograd.grad(out.sum(), f, retain_graph=k < len(outputs) - 1)
        w = g.sum(dim=(-2, -1))
        weights.append(w)
        maps.append(torch.einsum("nt,nthw->nhw", w, f.detach()))
    return torch.stack(weights, 1), maps


def _time(fn, repeats: int, device: torch.device) -> float:
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def run_benchmark(
    batch: int = 32, repeats: int = 5, device: str | None = None, dtype: torch.dtype = torch.float32, seed: int = 0
) -> list[BenchRow]:
    """Closed form vs autograd for both feature layouts; also checks the two agree."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows = []
    for layout in ("pool5 (6x6)", "conv5_3 (12x12) + MaxPool2d in head"):
        head, front, pca, svm, features = _setup(layout, batch, dev, dtype, seed)

        closed = partial(explain, features, head, pca, 2, svm)
        autograd = partial(_autograd_maps, head, len(front), pca, svm, features)

        result, (weights, _) = closed(), autograd()  # warm-up and agreement check
        ours = torch.cat([result.class_weights[:, None], result.pca_weights, result.svm_weights[:, None]], 1)
        rel = float((ours - weights).abs().max() / weights.abs().max().clamp_min(1e-30))
        t_closed, t_auto = _time(closed, repeats, dev), _time(autograd, repeats, dev)
        rows.append(
            BenchRow(
                layout,
                str(dev),
                str(dtype).replace("torch.", ""),
                batch,
                round(t_closed, 2),
                round(t_auto, 2),
                round(t_auto / t_closed, 2),
                rel,
            )
        )
    return rows
