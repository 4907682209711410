"""``cadcam bench --model vit_small_patch16_224``: the class maps of a vision transformer, timed.

Routes, each giving Grad-CAM of the predicted class at image resolution, min–max scaled (the probe
route: also PCA-Grad-CAM ± and SVM-Grad-CAM of a PCA → SVC probe on the embedding):

1. ``forward``       — ``model(images)`` alone: the floor every route pays;
2. ``explain``       — this project: the tokens entering the last block, then the closed form back to
                       its ``norm1`` (no autograd);
   ``explain_probe`` — the same with the probe's maps (3 PCA components, RBF SVC on 2 classes);
3. ``grad_cam_pkg``  — pytorch-grad-cam's ``GradCAM`` with ``blocks[-1].norm1`` as the target layer and
                       a token-to-grid reshape, as its documentation does it for ViTs: one forward and
                       one backward through the whole model.

The model has random weights (timm, no download); the probe is fitted for real on the embeddings of
a batch. Timings are medians after a warm-up, to be read as ratios of one run; no test asserts them.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from cadcam_numeric.bench.suite import Timing, fmt_ms, median_ratio, package_versions, synchronise, time_call
from cadcam_numeric.devices import select_device
from cadcam_numeric.engine.explain import explain
from cadcam_numeric.engine.explaining_model import image_maps
from cadcam_numeric.engine.maps import normalise, upsample
from cadcam_numeric.engine.split import split_classifier
from cadcam_numeric.engine.split_vit import patch_grid
from cadcam_numeric.errors import CadcamInputError

__all__ = ["VIT_MODELS", "ViTBenchConfig", "ViTBenchResult", "run_vit_bench", "vit_markdown"]

#: the ViTs ``--model`` takes (timm names)
VIT_MODELS = ("vit_small_patch16_224", "vit_tiny_patch16_224", "deit_small_patch16_224")
ROUTES = ("forward", "explain", "explain_probe", "grad_cam_pkg")


@dataclass
class ViTBenchConfig:
    model: str = "vit_small_patch16_224"
    batches: tuple[int, ...] | None = None  # default (1, 8, 32); quick: (1, 2)
    repeats: int = 3
    quick: bool = False  # 64 px (a 4×4 grid) instead of 224
    device: str | None = None
    seed: int = 0

    def resolved_batches(self) -> tuple[int, ...]:
        return tuple(self.batches) if self.batches else ((1, 2) if self.quick else (1, 8, 32))

    def image_size(self) -> int:
        return 64 if self.quick else 224


@dataclass
class ViTBenchResult:
    model: str
    device: str
    device_name: str
    image_size: int
    config: dict
    versions: dict[str, str]
    timings: list[Timing] = field(default_factory=list)
    ratios: dict[str, dict[str, float | None]] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)

    def median(self, route: str, batch: int) -> float | None:
        return next((t.median_ms for t in self.timings if t.route == route and t.batch == batch), None)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class _ViTRoutes:
    """The routes of the module docstring on one model and one fitted probe."""

    def __init__(self, model: nn.Module, device: torch.device, size: int, seed: int) -> None:
        from sklearn.decomposition import PCA
        from sklearn.svm import SVC

        self.model, self.size = model, size
        self.backbone, self.head = split_classifier(model)
        with torch.no_grad():
            embedding = self.head.embedding(self.backbone(self.images(16, seed + 1))).cpu().double().numpy()
        self.pca = PCA(3).fit(embedding)
        self.svm = SVC(kernel="rbf").fit(self.pca.transform(embedding), np.arange(16) % 2)
        self.device = device

    def images(self, n: int, seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(n, 3, self.size, self.size, generator=g).to(next(self.model.parameters()).device)

    def forward(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return self.model(images)

    def explain(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            r = explain(self.backbone(images), self.head)
        return normalise(upsample(r.gradcam, (self.size, self.size)))

    def explain_probe(self, images: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            r = explain(self.backbone(images), self.head, self.pca, 0, self.svm)
        maps = {k: getattr(r, k) for k in ("gradcam", "pca_positive", "pca_negative", "svm")}
        return image_maps(maps, (self.size, self.size))

    def grad_cam_pkg(self, images: Tensor) -> Tensor:
        from pytorch_grad_cam import GradCAM

        def to_grid(t: Tensor) -> Tensor:
            return patch_grid(t, self.head.num_prefix_tokens, self.head.grid)

        with GradCAM(model=self.model, target_layers=[self.head.parts.norm1], reshape_transform=to_grid) as cam:
            return torch.from_numpy(cam(input_tensor=images, targets=None))  # None: the predicted class


def _model(name: str, size: int, device: torch.device) -> nn.Module:
    try:
        import timm
    except ImportError as exc:
        raise CadcamInputError(
            "--model: a ViT needs timm, the transformers extra: pip install -e '.[transformers]'"
        ) from exc
    if name not in VIT_MODELS:
        raise CadcamInputError(f"--model: expected vgg16 or one of {', '.join(VIT_MODELS)}, got {name!r}")
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, img_size=size, num_classes=10).eval().to(device)


def run_vit_bench(config: ViTBenchConfig, log: Callable[[str], None] = print) -> ViTBenchResult:
    """Time every route at every batch size (module docstring) and check the maps agree."""
    device = select_device(config.device)
    size = config.image_size()
    routes = _ViTRoutes(_model(config.model, size, device), device, size, config.seed)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "CPU")
    if device.type == "cpu":
        name = f"{name} ({torch.get_num_threads()} threads)"
    batches = config.resolved_batches()
    result = ViTBenchResult(
        config.model, str(device), name, size, {**asdict(config), "batches": batches}, package_versions()
    )
    for batch in batches:
        images = routes.images(batch, config.seed)
        for route in ROUTES:
            log(f"bench: {config.model} {route} @ {batch}")
            med, lo, hi = time_call(lambda r=route, x=images: getattr(routes, r)(x), config.repeats, device)
            result.timings.append(Timing(route, batch, round(med, 3), round(lo, 3), round(hi, 3), config.repeats))
        result.ratios[str(batch)] = _ratios(result, batch)
    images = routes.images(min(batches[-1], 4), config.seed + 2)
    synchronise(device)
    ours, peer = routes.explain(images).cpu().double(), routes.grad_cam_pkg(images).double()
    probe = routes.explain_probe(images)["image_gradcam"].cpu().double()
    result.agreement["class map: pytorch-grad-cam vs explain (max abs)"] = float((ours - peer).abs().max())
    result.agreement["class map: explain with the probe vs without (max abs)"] = float((probe - ours).abs().max())
    return result


def _ratios(result: ViTBenchResult, batch: int) -> dict[str, float | None]:
    return {
        "explain / forward": median_ratio(result, "explain", "forward", batch),
        "explain with probe / forward": median_ratio(result, "explain_probe", "forward", batch),
        "pytorch-grad-cam / explain": median_ratio(result, "grad_cam_pkg", "explain", batch),
    }


def vit_markdown(result: ViTBenchResult) -> str:
    """The README's ViT table: ms per route and batch, the ratios of the same run, the agreement."""
    lines = [
        f"Device: **{result.device_name}** ({result.device}), float32, timm `{result.model}` (random weights) at "
        f"{result.image_size}×{result.image_size} px; median of {result.config['repeats']} run(s) after a warm-up, "
        "ms. Versions: " + ", ".join(f"{k} {v}" for k, v in result.versions.items()) + ".",
        "",
        "| batch | 1 forward | 2 explain | 2 explain + probe | 3 pytorch-grad-cam | 2÷1 | 2 probe÷1 | 3÷2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in result.config["batches"]:
        r = result.ratios[str(b)]
        cells = " | ".join(fmt_ms(result.median(k, b)) for k in ROUTES)
        lines.append(
            f"| {b} | {cells} | {fmt_ms(r['explain / forward'], '×')} "
            f"| {fmt_ms(r['explain with probe / forward'], '×')} | {fmt_ms(r['pytorch-grad-cam / explain'], '×')} |"
        )
    lines += ["", "| agreement | |", "|---|---|"]
    lines += [f"| {k} | {v:.1e} |" for k, v in result.agreement.items()]
    return "\n".join(lines) + "\n"
