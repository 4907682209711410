"""Train → fit PCA and SVMs → bundle → Table 3 and figures: what ``cadcam demo`` / ``cadcam train`` run."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from cadcam_numeric.atomic import atomic_directory, atomic_write, atomic_write_text, check_replaceable
from cadcam_numeric.devices import select_device
from cadcam_numeric.engine.explain import explain
from cadcam_numeric.engine.maps import normalise, upsample
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.backbones import CNN, build_backbone
from cadcam_numeric.pipeline.bundle import Bundle, load_bundle, save_bundle
from cadcam_numeric.pipeline.chance import chance_warning
from cadcam_numeric.pipeline.data import from_model_input, load_data, to_model_input
from cadcam_numeric.pipeline.figures import (
    fig5_validation_accuracy,
    fig6_contribution_ratios,
    fig7_pca_scatter,
    fig8_map_grid,
)
from cadcam_numeric.pipeline.fitting import fit_pca_and_svms, layer_outputs, svm_label, table3
from cadcam_numeric.pipeline.training import extract_features, make_head, train_model
from cadcam_numeric.spec.architecture import LoadedArchitecture

__all__ = ["FIG8_ROWS_PER_PAGE", "PipelineConfig", "explain_images", "labels_as_numpy", "run_pipeline"]

#: Fig. 8 grids of more rows are also written in pages of this many rows (``fig8_maps_part<k>.png``)
FIG8_ROWS_PER_PAGE = 5


@dataclass
class PipelineConfig:
    data: str = "digits"
    backbone: str = "small_vgg"
    feature_layer: str = "pool"
    weights: str | None = None
    random_weights: bool = False
    input_size: int | None = None
    image_size: int = 64  # folder images are loaded at this size
    epochs: int = 40
    batch_size: int = 32
    lr: float | None = None  # default: 1e-3 (vgg16, the paper's) or 0.02 (small_vgg)
    momentum: float | None = None  # default: 0 (vgg16) or 0.9 (small_vgg)
    activation: str = "relu"
    widths: tuple[int, ...] = (40, 30, 20)
    pca_after: int = 2  # 0: PCA on the pooled, flattened features x (the usual CNN-SVM recipe)
    n_components: int = 3
    whiten: bool = False
    scale_before_pca: bool = False  # StandardScaler -> PCA (folded into the PCA layer exactly)
    pca_kind: str = "pca"  # pca | incremental_pca | truncated_svd
    classifiers: tuple[str, ...] = ()  # CLASSIFIER_KINDS fitted beside the paper's four SVMs
    channels_last: bool = False
    svm_c: float = 1.0
    svm_gamma: float = 1.0
    default_svm: str = "rbf-std"
    n_images: int | None = None  # Fig. 8 rows: one test image per class (None: every class)
    seed: int = 0
    device: str | None = None
    download: bool = False
    extra: dict = field(default_factory=dict)


def rows_to_markdown(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def labels_as_numpy(values: object) -> np.ndarray:
    """Labels as NumPy: a tensor (integer labels) or already an array (string labels)."""
    return values.cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def explain_images(
    bundle: Bundle,
    images: torch.Tensor,
    out_dir: Path,
    row_titles: list[str],
    svm: str | None = None,
    method: str = "grad-cam",
    stem: str = "fig8_maps",
    labels: np.ndarray | None = None,
) -> dict[str, Path]:
    """Maps for model-ready images (N, 3, S, S): a Fig. 8-style grid PNG and an ``.npz`` of every map."""
    svm_name, _ = bundle.svm_named(svm)
    device = next(bundle.model.head.parameters()).device
    with torch.no_grad():
        features = bundle.model.backbone(images.to(device))
    result = explain(features, bundle.model.head, bundle.pca, bundle.pca_after, bundle.svms[svm_name], method=method)
    for name in ("gradcam", "svm", "pca_positive", "pca_negative", "class_weights", "pca_weights", "svm_weights"):
        if not bool(torch.isfinite(getattr(result, name)).all()):
            raise CadcamInputError(
                f"bundle: the {name} of these images is not finite (NaN or Inf): the bundle's weights overflow "
                f"{features.dtype} on them; nothing was written"
            )
    size = tuple(images.shape[-2:])
    grad = normalise(upsample(result.gradcam, size)).cpu().numpy()
    svm_map = normalise(upsample(result.svm, size)).cpu().numpy()
    pos = upsample(result.pca_positive, size).cpu().numpy()
    neg = upsample(result.pca_negative, size).cpu().numpy()
    names = bundle.class_names

    def label_text(label: object) -> str:  # an integer label names a class only where it is one
        return names[int(label)] if str(label).isdigit() and int(label) < len(names) else str(label)

    titles = [
        f"{t}\nCNN {names[int(c)]}, SVM {label_text(s)}"
        for t, c, s in zip(row_titles, result.cnn_prediction.cpu(), labels_as_numpy(result.svm_prediction))
    ]
    # ν_b of Eq. 12: the largest value of the pair's raw maps (feature resolution), per image
    nu = torch.maximum(result.pca_positive.amax(dim=(-2, -1)), result.pca_negative.amax(dim=(-2, -1))).cpu().numpy()
    label = svm_label(
        svm_name, bundle.svms[svm_name].blocks[0].kernel.name, bundle.svms[svm_name].scaler_scale is not None
    )
    shown = from_model_input(images)

    def grid(rows: slice, path: Path) -> Path:
        return fig8_map_grid(
            shown[rows], grad[rows], svm_map[rows], pos[rows], neg[rows], titles[rows], path, label, method, nu[rows]
        )

    png = grid(slice(None), out_dir / f"{stem}.png")
    parts = []
    if len(titles) > FIG8_ROWS_PER_PAGE:  # pages of the same grid, for reading at print size (the report)
        for k, start in enumerate(range(0, len(titles), FIG8_ROWS_PER_PAGE), start=1):
            parts.append(grid(slice(start, start + FIG8_ROWS_PER_PAGE), out_dir / f"{stem}_part{k}.png"))
    arrays = {
        "gradcam_raw": result.gradcam.cpu().numpy(),
        "svm_raw": result.svm.cpu().numpy(),
        "pca_positive_raw": result.pca_positive.cpu().numpy(),
        "pca_negative_raw": result.pca_negative.cpu().numpy(),
        "class_weights": result.class_weights.cpu().numpy(),
        "pca_weights": result.pca_weights.cpu().numpy(),
        "svm_weights": result.svm_weights.cpu().numpy(),
        "gradcam": grad,
        "svm": svm_map,
        "pca_positive": pos,
        "pca_negative": neg,
        "cnn_prediction": result.cnn_prediction.cpu().numpy(),
        "svm_prediction": labels_as_numpy(result.svm_prediction),
    }
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    npz = atomic_write(out_dir / f"{stem}.npz", lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))
    return {"grid": png, "maps": npz, "parts": parts}


def _write_test_images(images: torch.Tensor, chosen: list[int], data, folder: Path) -> Path:
    """The Fig. 8 test images as PNG files (``true<label>_test<index>.png``), to try ``cadcam explain`` on."""
    from PIL import Image

    with atomic_directory(folder) as tmp:
        for image, index in zip(images, chosen):
            array = image.numpy().transpose(1, 2, 0)
            name = f"true{data.class_names[int(data.test.labels[index])]}_test{index}.png"
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(tmp / name)
    return folder


def _check_settings(config: PipelineConfig, n_classes: int, architecture: LoadedArchitecture | None) -> None:
    if architecture is not None and architecture.spec.classes != n_classes:
        raise CadcamInputError(
            f"head.classes: the spec has {architecture.spec.classes} classes but {config.data} has {n_classes}"
        )
    if not 0 <= config.pca_after <= len(config.widths):
        raise CadcamInputError(
            f"pca_after: expected 0 (the pooled features) to {len(config.widths)} (the dense layers), "
            f"got {config.pca_after}"
        )


def _cached_features(model: CNN, backbone, data, device: torch.device, log) -> dict[str, torch.Tensor]:
    """A frozen backbone's features, one pass over each split, reused everywhere (none when it trains)."""
    if backbone.trainable:
        return {}
    t = time.perf_counter()
    model.to(device)
    cached = {
        split: extract_features(model.backbone, getattr(data, split), backbone.input_size, device, f"{split} features")
        for split in ("train", "val", "test")
    }
    log(f"backbone features computed once per split in {time.perf_counter() - t:.0f} s")
    return cached


def _fit_estimators(config: PipelineConfig, model: CNN, data, size: int, device, cached, architecture):
    """q_l on train and test, PCA and the classifiers fitted on train, and Table 3."""
    train_out = layer_outputs(model, data.train, size, config.pca_after, device, cached.get("train"))
    test_out = layer_outputs(model, data.test, size, config.pca_after, device, cached.get("test"))
    extra = {"spec": architecture.svm_estimator()} if architecture is not None else None
    pca, svms = fit_pca_and_svms(
        train_out,
        config.n_components,
        config.svm_c,
        config.svm_gamma,
        config.seed,
        config.whiten,
        extra,
        config.scale_before_pca,
        tuple(config.classifiers),
        config.pca_kind,
    )
    return pca, svms, train_out, test_out, table3(pca, svms, train_out, test_out)


def _figures(out_dir: Path, history, pca, config: PipelineConfig, train_out, test_out, class_names) -> dict:
    """Table 3 aside, the pipeline's figures: Fig. 5 (validation accuracy), 6 (contribution ratios), 7."""
    projection = pca.steps[-1][1] if hasattr(pca, "steps") else pca
    return {
        "fig5": fig5_validation_accuracy(
            history.val_accuracy, history.best_epoch, out_dir / "fig5_validation_accuracy.png"
        ),
        "fig6": fig6_contribution_ratios(
            projection.explained_variance_ratio_,
            config.pca_after,
            train_out.q.shape[1],
            out_dir / "fig6_contribution_ratios.png",
        ),
        "fig7": fig7_pca_scatter(
            pca.transform(test_out.q), test_out.labels, class_names, out_dir / "fig7_pca_scatter.png"
        ),
    }


def _example_maps(bundle: Bundle, data, test_out, config: PipelineConfig, out_dir: Path) -> dict[str, Path]:
    """Fig. 8: one test image of every class (``n_images`` at most), its maps, and the images as PNG."""
    chosen = []
    for c in range(len(data.class_names)):
        hits = np.flatnonzero(test_out.labels == c)
        if len(hits):
            chosen.append(int(hits[0]))
        if config.n_images is not None and len(chosen) == config.n_images:
            break
    files = {"test_images": _write_test_images(data.test.images[chosen], chosen, data, out_dir / "test_images")}
    images = to_model_input(data.test.images[chosen], bundle.backbone.input_size)
    titles = [f"test #{i}: true {data.class_names[int(data.test.labels[i])]}" for i in chosen]
    maps = explain_images(bundle, images, out_dir, titles, labels=data.test.labels[chosen].numpy())
    files["fig8"], files["maps"] = maps["grid"], maps["maps"]
    files |= {f"fig8_part{k}": part for k, part in enumerate(maps["parts"], start=1)}
    return files


def _stored_input_shape(config: PipelineConfig, data) -> tuple[int, int, int] | None:
    """(C, H, W) of the training images as stored, for explain's notice; None for a folder, whose files
    were converted and resized when loaded (their stored shapes are many, and unknown here)."""
    return None if config.data.startswith("folder:") else tuple(data.train.images.shape[1:])


def _trained_model(config: PipelineConfig, backbone, data, device, architecture, log, timings: dict):
    """The CNN with its head, trained (the best-validation epoch kept), its history and settings; the
    seconds of the feature pass and of training go into ``timings``."""
    torch.manual_seed(config.seed)
    head = make_head(
        backbone,
        len(data.class_names),
        config.widths,
        config.activation,
        architecture.activation_modules() if architecture is not None else None,
        config.channels_last,
    )
    model = CNN(backbone.features, head)
    lr = config.lr if config.lr is not None else (0.02 if backbone.trainable else 1e-3)
    momentum = config.momentum if config.momentum is not None else (0.9 if backbone.trainable else 0.0)
    t = time.perf_counter()
    cached = _cached_features(model, backbone, data, device, log)
    timings["features"] = time.perf_counter() - t
    t = time.perf_counter()
    history = train_model(
        model, backbone, data, config.epochs, device, lr, momentum, config.batch_size, config.seed, cached
    )
    timings["train"] = time.perf_counter() - t
    log(
        f"trained {config.epochs} epochs in {timings['train']:.0f} s ({torch.get_num_threads()} CPU "
        f"threads); best validation accuracy {max(history.val_accuracy):.3f} at epoch {history.best_epoch}"
    )
    return model, history, cached, {"lr": lr, "momentum": momentum}


def run_pipeline(
    config: PipelineConfig, out_dir: Path, log=print, architecture: LoadedArchitecture | None = None
) -> dict[str, object]:
    """Run the whole pipeline into ``out_dir``; return a summary (also written as summary.json).

    ``architecture``: a loaded spec (``--spec``); its head, PCA and SVM are used (``config`` should
    carry :func:`~cadcam_numeric.spec.architecture.pipeline_overrides`), the spec's SVM is
    fitted as ``"spec"`` beside the paper's four, and the bundle embeds the spec.
    """
    out_dir = Path(out_dir)
    for folder in ("bundle", "test_images"):  # refuse before training, not after
        check_replaceable(out_dir / folder, "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    data = load_data(config.data, config.seed, config.image_size, config.download)
    backbone = build_backbone(
        config.backbone, config.feature_layer, config.weights, config.random_weights, config.input_size, config.seed
    )
    log(
        f"data {config.data}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
        f"{len(data.class_names)} classes; backbone {backbone.name} ({backbone.weights_source}), "
        f"features {backbone.channels}x{backbone.feature_size}x{backbone.feature_size}, device {device}"
    )
    _check_settings(config, len(data.class_names), architecture)
    timings = {"load": time.perf_counter() - t0}
    model, history, cached, optimiser = _trained_model(config, backbone, data, device, architecture, log, timings)
    t = time.perf_counter()
    size = backbone.input_size
    pca, svms, train_out, test_out, rows = _fit_estimators(config, model, data, size, device, cached, architecture)
    timings["fit"] = time.perf_counter() - t
    warning = chance_warning("the CNN's test macro-F1", rows[0]["test_macro_f1"], len(data.class_names))
    if warning:
        log(warning)
    settings = {
        **{k: v for k, v in asdict(config).items() if k != "extra"},
        **optimiser,
        "widths": list(config.widths),
        "classifiers": list(config.classifiers),
    }
    bundle_dir = save_bundle(
        out_dir / "bundle", model, backbone, settings, pca, config.pca_after, svms, config.default_svm,
        data.class_names, architecture, _stored_input_shape(config, data),
    )  # fmt: skip
    files = {"bundle": bundle_dir}
    files["table3_csv"] = atomic_write_text(out_dir / "table3.csv", rows_to_csv(rows))
    files["table3_md"] = atomic_write_text(out_dir / "table3.md", rows_to_markdown(rows))
    files |= _figures(out_dir, history, pca, config, train_out, test_out, data.class_names)
    t = time.perf_counter()
    # explain from the saved bundle (a spec's generated module is re-checked on load)
    bundle = load_bundle(bundle_dir, weights=config.weights, device=device, architecture=architecture)
    files |= _example_maps(bundle, data, test_out, config, out_dir)
    timings["explain"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    summary = {
        "config": settings,
        "table3": rows,
        "warnings": [warning] if warning else [],
        "history": history.to_json(),
        "timings_s": timings,
        "device": str(device),
        "files": {k: str(v) for k, v in files.items()},
    }
    files["summary"] = atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    summary["files"]["summary"] = str(files["summary"])
    return summary
