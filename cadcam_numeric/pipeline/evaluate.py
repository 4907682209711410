"""``cadcam evaluate``: every map the project makes × the seed papers' metrics, on a bundle's model.

Methods: Grad-CAM, XGrad-CAM and HiRes-CAM of the CNN class, of every PCA component and sign
(P_b⊕, P_b⊖) and of the SVM decision; Eigen-CAM and Eigen-Grad-CAM; Decom-CAM of the CNN class.
Images: by default the localisation set (digits ×4 in 40×40 cluttered canvases, exact boxes),
only those the CNN classifies correctly (the Decom-CAM paper's protocol; ``correct_only``).
Metrics: deletion and insertion AUC (blurred baseline; each map scored by the quantity it
explains — the class probability, +p_b or −p_b, the SVM's oriented class score; Eigen-CAM by the
predicted class's probability), insertion − deletion, and with boxes the pointing game, the mean
IoU of the threshold box (15 % of the maximum) and the share with IoU ≥ 0.5.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from cadcam_numeric.atomic import atomic_write, atomic_write_text
from cadcam_numeric.devices import select_device
from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.explain import METHOD_LABELS, METHODS, target_scores
from cadcam_numeric.engine.maps import normalise, upsample
from cadcam_numeric.engine.targets import PREDICTED, SVMClassTarget, resolve_targets
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.methods.decom import decom_cam, gaussian_blur
from cadcam_numeric.methods.eigen import eigen_cam, eigen_grad_cam
from cadcam_numeric.metrics import (
    confidence_changes,
    deletion_insertion,
    localisation_hits,
    pointing_game,
    road,
    stratified_by_accuracy,
)
from cadcam_numeric.pipeline.batches import shard_batches, shard_count
from cadcam_numeric.pipeline.bundle import load_bundle
from cadcam_numeric.pipeline.chance import chance_warning
from cadcam_numeric.pipeline.distributed import Processes, start_processes
from cadcam_numeric.pipeline.evaluation_statistics import (
    centre_gaussian_maps,
    image_seed,
    random_maps,
    statistics_rows,
)
from cadcam_numeric.pipeline.run import labels_as_numpy, rows_to_csv, rows_to_markdown
from cadcam_numeric.pipeline.sources import ImageSource, is_data_source, open_source

__all__ = ["METRICS", "parse_metrics", "run_evaluation"]

#: what ``--metrics`` takes; pointing and localisation need boxes in the source
METRICS = ("deletion", "insertion", "road", "drop-increase", "pointing", "localisation")
#: the default: every metric but ROAD, whose imputation (a sparse system of 9 masks per order, image
#: and map) makes an evaluation many times longer; ``--metrics`` asks for it
DEFAULT_METRICS = tuple(m for m in METRICS if m != "road")


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """``"road,deletion"`` -> the metrics in :data:`METRICS` order; None or empty: :data:`DEFAULT_METRICS`.

    >>> parse_metrics("road, deletion")
    ('deletion', 'road')
    """
    if not text:
        return DEFAULT_METRICS
    asked = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in asked if m not in METRICS]
    if unknown or not asked:
        raise CadcamInputError(f"metrics: expected a comma-separated subset of {', '.join(METRICS)}, got {text!r}")
    return tuple(m for m in METRICS if m in asked)


@dataclass
class _Method:
    name: str
    family: str
    maps: Tensor  # (N, H, W) in [0, 1]
    score: Callable[[Tensor, Tensor], Tensor]


@dataclass
class _Context:
    """One evaluation: the model, what is explained, the source, and how it is streamed."""

    bundle: object
    svm_head: object
    svm_name: str
    targets: object
    svm_targets: object
    steps: int
    sigma: float
    size: int
    source: ImageSource
    classes: np.ndarray  # each image's class index in the bundle
    data: str
    n: int | None
    correct_only: bool
    seed: int
    batch_size: int
    shard_size: int
    workers: int | None
    metrics: tuple[str, ...] = DEFAULT_METRICS


def _class_indices(source: ImageSource, class_names: list[str]) -> np.ndarray:
    """Each image's class as the bundle's class index, matched by class name (−1 where the source
    has no label, or one the bundle does not know)."""
    lookup = {name: i for i, name in enumerate(class_names)}
    return np.array([lookup.get(label, -1) for label in source.labels], dtype=np.int64)


def _methods(ctx: _Context, images: Tensor, positions: np.ndarray) -> tuple[list[_Method], object]:
    """Every method's maps for one batch of images, with the score each is judged by, and the
    baselines (a random map and a centre prior, judged by the class and by the SVM score)."""
    bundle, svm_head, size = ctx.bundle, ctx.svm_head, ctx.size
    model, head, pca, layer = bundle.model, bundle.model.head, bundle.pca, bundle.pca_after
    with torch.no_grad():
        features = model.backbone(images)

    def scores_of(x: Tensor) -> object:
        with torch.no_grad():
            return target_scores(model.backbone(x), head, pca, layer, svm_head)

    chosen = resolve_targets(ctx.targets, ctx.svm_targets, len(images), len(bundle.class_names), svm_head.classes)
    targets, svm_targets = chosen.cnn, (PREDICTED if chosen.svm is None else chosen.svm)  # resolved once, here
    shape = tuple(features.shape[1:])
    cf = ClosedForm(head, pca, layer, svm_head, dtype=features.dtype, feature_shape=shape, copy=False)
    cf = cf.to(features.device)
    rows = cf.closed_form_pass(features, targets, svm_targets)  # one pass for every method of the batch
    gradients = cache(rows.row_gradients)  # formed once, for XGrad-, HiRes- and Eigen-Grad-CAM
    per_method = rows.results(METHODS, gradients)
    r = per_method["grad-cam"]
    cls = r.cnn_target
    svm_idx = svm_head.class_index(labels_as_numpy(r.svm_target), "svm").to(images.device)

    def class_prob(x: Tensor, i: Tensor) -> Tensor:
        return torch.softmax(scores_of(x).logits, 1)[torch.arange(len(i)), cls[i]]

    def svm_score(x: Tensor, i: Tensor) -> Tensor:
        return scores_of(x).svm_scores[torch.arange(len(i)), svm_idx[i]]

    def pca_score(b: int, sign: float) -> Callable[[Tensor, Tensor], Tensor]:
        return lambda x, i: sign * scores_of(x).pca_scores[:, b]

    def prep(m: Tensor) -> Tensor:
        return normalise(upsample(m, (size, size)))

    methods: list[_Method] = []
    for mname, res in per_method.items():
        label = METHOD_LABELS[mname]
        methods.append(_Method(f"{label} (class)", "class", prep(res.gradcam), class_prob))
        methods.append(_Method(f"SVM-{label}", "svm", prep(res.svm), svm_score))
        for b in range(res.pca_positive.shape[1]):
            methods.append(_Method(f"PCA-{label} P{b + 1}+", "pca", prep(res.pca_positive[:, b]), pca_score(b, 1.0)))
            methods.append(_Method(f"PCA-{label} P{b + 1}-", "pca", prep(res.pca_negative[:, b]), pca_score(b, -1.0)))
    methods.append(_Method("Eigen-CAM", "class", prep(eigen_cam(features)), class_prob))
    grads = rows.position_gradients(gradients)
    methods.append(
        _Method("Eigen-Grad-CAM (class)", "class", prep(eigen_grad_cam(features, grads.gradcam)), class_prob)
    )
    decom = decom_cam(
        images, model.backbone, head, pca, layer, None, target="class", targets=cls, p=10, blur_sigma=ctx.sigma
    )
    methods.append(_Method("Decom-CAM (class)", "class", decom.saliency, class_prob))
    noise = random_maps(positions, tuple(features.shape[-2:]), size, ctx.seed).to(images.device)
    centre = centre_gaussian_maps(len(images), size).to(images.device)
    for family, label, score in (("class", "class", class_prob), ("svm", "SVM", svm_score)):
        methods.append(_Method(f"Random map ({label})", family, noise, score))
        methods.append(_Method(f"Centre Gaussian ({label})", family, centre, score))
    return methods, r


def _road_per_image(ctx: _Context, m: _Method, images: Tensor, positions: np.ndarray) -> dict[str, np.ndarray]:
    """ROAD's mean score over pytorch-grad-cam's percentiles, most and least relevant first, and
    (LeRF − MoRF)/2 (its ``ROADCombined``); each image's noise drawn from the seed and its position."""
    maps = m.maps.to(images)
    found = {}
    for k, order in enumerate(("morf", "lerf")):
        generators = [torch.Generator().manual_seed(image_seed(ctx.seed, 1 + k, int(p))) for p in positions]
        found[order] = road(m.score, images, maps, order=order, generator=generators).mean(1).cpu().numpy()
    return {
        "road_morf": found["morf"],
        "road_lerf": found["lerf"],
        "road_combined": (found["lerf"] - found["morf"]) / 2,
    }


def _evaluate_batch(
    ctx: _Context, images: Tensor, boxes: Tensor | None, positions: np.ndarray
) -> tuple[dict[str, dict], object]:
    """Per-image results of every method on one batch, for the metrics ``ctx`` asks: AUCs and
    curves, ROAD, the drop and increase in confidence (class maps: their score is a probability),
    and with boxes the pointing-game hit and the IoU."""
    methods, r = _methods(ctx, images, positions)
    baseline = gaussian_blur(images, ctx.sigma)
    asked = set(ctx.metrics)
    out: dict[str, dict] = {}
    for m in methods:
        record: dict[str, object] = {"family": m.family}
        if asked & {"deletion", "insertion"}:
            c = deletion_insertion(m.score, images, m.maps.to(images), baseline, ctx.steps)
            record.update(
                fractions=c.fractions.cpu().numpy(),
                deletion_auc=c.deletion_auc.cpu().numpy(),
                insertion_auc=c.insertion_auc.cpu().numpy(),
                deletion=c.deletion.cpu().numpy(),
                insertion=c.insertion.cpu().numpy(),
            )
        if "road" in asked:
            record.update(_road_per_image(ctx, m, images, positions))
        if "drop-increase" in asked and m.family == "class":
            drop, increased = confidence_changes(m.score, images, m.maps.to(images))
            record.update(average_drop=drop.cpu().numpy(), increase=increased.cpu().numpy())
        if boxes is not None and "localisation" in asked:
            record["iou"], _ = localisation_hits(m.maps, boxes, 0.15)
        if boxes is not None and "pointing" in asked:
            record["pointing"] = pointing_game(m.maps, boxes.to(images.device)).cpu().numpy()
        out[m.name] = record
    return out, r


def _evaluate_shard(ctx: _Context, k: int, device: torch.device, need: int | None) -> dict:
    """Shard k: every candidate's prediction, and the per-image results of those kept; it stops
    after the batch in which ``need`` kept images were found (None: the whole shard). Each batch's
    results depend on that batch alone, so stopping early changes nothing that is kept."""
    source, classes = ctx.source, ctx.classes
    positions, right, kept, results, unreadable = [], [], [], [], []
    found = 0
    batches = shard_batches(source, [k], ctx.shard_size, ctx.batch_size, device, ctx.workers)
    for batch in batches:
        unreadable += batch.unreadable  # skipped and listed, as explain does
        if not len(batch.positions):
            continue
        with torch.no_grad():
            predicted = ctx.bundle.model(batch.images).argmax(1).cpu().numpy()
        truth = classes[batch.positions.numpy()]
        ok = predicted == truth
        keep = np.flatnonzero(ok) if ctx.correct_only else np.arange(len(ok))
        if need is not None:  # one process: only the images still needed (each image's results are its own)
            keep = keep[: need - found]
        positions.append(batch.positions.numpy())
        right.append(ok)
        if len(keep):
            boxes = source.boxes[batch.positions[keep]] if source.boxes is not None else None
            per_method, r = _evaluate_batch(
                ctx, batch.images[torch.as_tensor(keep, device=device)], boxes, batch.positions.numpy()[keep]
            )
            svm_pred = labels_as_numpy(r.svm_prediction)
            kept.append({"positions": batch.positions.numpy()[keep], "right": ok[keep], "svm_prediction": svm_pred})
            results.append(per_method)
            found += len(keep)
        if need is not None and found >= need:
            batches.close()
            break
    return {"positions": positions, "right": right, "kept": kept, "results": results, "unreadable": unreadable}


def run_evaluation(
    bundle_dir: Path,
    out_dir: Path,
    data: str = "localisation",
    n: int | None = 100,
    steps: int = 16,
    svm: str | None = None,
    seed: int = 0,
    device: str | None = None,
    weights: str | None = None,
    correct_only: bool = True,
    derived: str | Path | None = None,
    targets: object = None,
    svm_targets: object = None,
    *,
    batch_size: int = 128,
    shard_size: int = 256,
    workers: int | None = 0,
    distributed: bool = False,
    progress: bool = True,
    metrics: tuple[str, ...] | str | None = None,
) -> dict[str, object]:
    """Evaluate on ``n`` images (None: every image of the source), streamed shard by shard.

    With ``correct_only`` (Decom-CAM's protocol) only images the CNN classifies correctly are kept:
    the first ``n`` of the source, in its order (the localisation set draws 10·n candidates for
    them). Each batch is explained, perturbed and scored on its own (deletion and insertion: one
    forward per chunk of perturbed images), so memory does not grow with the source; the results
    are the same in one process and in ``distributed`` torchrun ranks (rank r takes shards r, r+K, …).

    ``targets`` / ``svm_targets``: what every map explains, one target for all images, as in
    :func:`~cadcam_numeric.engine.explain.explain` (an integer or :class:`ClassTarget` of the CNN,
    an :class:`SVMClassTarget`; default: each image's predictions). The scores the deletion and
    insertion curves follow are those of the explained targets.
    """
    for name, value in (("targets", targets), ("svm_targets", svm_targets)):
        if isinstance(value, list | tuple | np.ndarray | Tensor):
            raise CadcamInputError(f"{name}: evaluate takes one target for all images, got a sequence")
    if n is not None and n < 1:
        raise CadcamInputError(f"n: expected a positive number of images or None (all), got {n}")
    asked_metrics = metrics
    metrics = parse_metrics(metrics if isinstance(metrics, str) or metrics is None else ",".join(metrics))
    t0 = time.perf_counter()
    procs = start_processes(select_device(device), distributed)
    try:
        bundle = load_bundle(bundle_dir, weights=weights, device=procs.device, derived=derived)
        size = bundle.backbone.input_size
        svm_name, svm_head = bundle.svm_named(svm)
        if data == "localisation":
            data_source = f"localisation:{(10 * n if correct_only else n) if n is not None else 1000}"
        else:
            data_source = data
        source = open_source(data_source, size, seed, held_out=True)
        wanted_boxes = [m for m in ("pointing", "localisation") if m in metrics]
        if asked_metrics is not None and wanted_boxes and source.boxes is None:
            raise CadcamInputError(
                f"metrics: {' and '.join(wanted_boxes)} need boxes, and {data} has none (the localisation set has them)"
            )
        classes = _class_indices(source, bundle.class_names)
        if (classes < 0).any():
            missing = source.ids[int(np.flatnonzero(classes < 0)[0])]
            hint = "" if is_data_source(data) else f"; for an ImageFolder layout write --data folder:{data}"
            raise CadcamInputError(
                f"data: {missing} has no class of the bundle ({bundle.class_names}); evaluate needs labelled "
                f"images{hint}"
            )
        if isinstance(svm_targets, SVMClassTarget):
            svm_targets = SVMClassTarget(_svm_label(svm_targets.label, svm_head.classes))
        resolve_targets(targets, svm_targets, 1, len(bundle.class_names), svm_head.classes)  # bad ones: before work
        ctx = _Context(
            bundle, svm_head, svm_name, targets, svm_targets, steps, max(1.0, size / 16), size, source, classes,
            data, n, correct_only, seed, batch_size, shard_size, workers, metrics,
        )  # fmt: skip
        shards = _stream(procs, ctx, progress)
        return _summarise(procs, ctx, shards, Path(out_dir), t0)
    finally:
        procs.close()


def _stream(procs: Processes, ctx: _Context, progress: bool) -> list[dict]:
    """Shards in rounds of one per rank, every rank's results gathered after each round, until the
    first ``n`` kept images (in source order) are in; every rank ends with the same list."""
    n, source = ctx.n, ctx.source
    n_shards = shard_count(len(source), ctx.shard_size)
    shards: list[dict] = []
    kept_total = 0
    bar = tqdm(total=n or len(source), unit="img", desc="evaluate", disable=not progress or not procs.is_main)
    for first in range(0, n_shards, procs.world):
        k = first + procs.rank
        # one process knows how many images it still needs; ranks of a round do not, and compute whole shards
        need = n - kept_total if n is not None and procs.world == 1 else None
        for done in procs.gather(_evaluate_shard(ctx, k, procs.device, need) if k < n_shards else None):
            if done is not None:
                shards.append(done)
                found = sum(len(b["positions"]) for b in done["kept"])
                kept_total += found
                bar.update(found if n is not None else sum(len(p) for p in done["positions"]))
        if n is not None and kept_total >= n:
            break
    bar.close()
    if kept_total == 0:
        raise CadcamInputError("data: the model classifies none of the images correctly; nothing to evaluate")
    return shards


def _per_image_figures(name: str, joined, record: dict) -> dict[str, np.ndarray]:
    """The per-image arrays of one method that the table averages."""
    figures = {}
    if "deletion_auc" in record:
        figures["insertion_minus_deletion"] = joined(name, "insertion_auc") - joined(name, "deletion_auc")
    for key in ("road_combined", "average_drop"):
        if key in record:
            figures[key] = joined(name, key)
    return figures


def _method_row(name: str, joined, record: dict, right: np.ndarray, ctx: _Context) -> dict[str, object]:
    """One method's row of the table: deletion/insertion AUC, Decom-CAM's stratified AUC, ROAD, the
    drop and increase in confidence and localisation — those asked for ("n/a" where a metric does
    not apply: a drop in confidence needs a probability)."""
    family = record["family"]
    row: dict[str, object] = {"method": name}
    if "deletion_auc" in record:
        deletion_auc, insertion_auc = joined(name, "deletion_auc"), joined(name, "insertion_auc")
        row.update(
            deletion_auc=round(float(deletion_auc.mean()), 4),
            insertion_auc=round(float(insertion_auc.mean()), 4),
            insertion_minus_deletion=round(float((insertion_auc - deletion_auc).mean()), 4),
        )
        if not ctx.correct_only:
            row["stratified_auc"] = "n/a"
        if not ctx.correct_only and family == "class":
            try:  # Decom-CAM's stratified protocol (needs right and wrong predictions)
                _, _, auc = stratified_by_accuracy(insertion_auc - deletion_auc, right, 50, 10, ctx.seed)
                row["stratified_auc"] = round(auc, 4)
            except CadcamInputError:
                pass
    if "road_morf" in record:
        for key in ("road_morf", "road_lerf", "road_combined"):
            row[key] = round(float(joined(name, key).mean()), 4)
    if "drop-increase" in ctx.metrics:
        has = "average_drop" in record
        row["average_drop"] = round(float(joined(name, "average_drop").mean()), 4) if has else "n/a"
        row["increase_in_confidence"] = round(float(joined(name, "increase").mean() * 100), 4) if has else "n/a"
    if "pointing" in record:
        row["pointing_game"] = round(float(joined(name, "pointing").astype(np.float64).mean()), 4)
    if "iou" in record:
        ious = joined(name, "iou")
        row.update(mean_iou=round(float(ious.mean()), 4), iou_at_least_0_5=round(float((ious >= 0.5).mean()), 4))
    return row


def _svm_accuracy(batches: list, take: int, positions: np.ndarray, ctx: _Context) -> float:
    """The classifier's accuracy on the kept images (its labels compared with the true class, as text)."""
    predicted = np.concatenate([b["svm_prediction"] for b, _ in batches])[:take]
    truth_index = ctx.classes[positions]
    truth = truth_index if predicted.dtype.kind in "iu" else np.asarray(ctx.bundle.class_names)[truth_index]
    return float(np.mean(predicted.astype(str) == truth.astype(str))) if len(truth) else 0.0


def _write_results(summary: dict, rows: list, statistics: list, curves: dict, out_dir: Path, data: str) -> None:
    files = {
        "csv": atomic_write_text(out_dir / "evaluation.csv", rows_to_csv(rows)),
        "md": atomic_write_text(out_dir / "evaluation.md", rows_to_markdown(rows)),
    }
    if statistics:
        files["statistics_csv"] = atomic_write_text(out_dir / "evaluation_statistics.csv", rows_to_csv(statistics))
        files["statistics_md"] = atomic_write_text(out_dir / "evaluation_statistics.md", rows_to_markdown(statistics))
    if curves:
        files["curves"] = _plot(curves, out_dir / "evaluation_curves.png", data)
    summary["files"] = {k: str(v) for k, v in files.items()} | {"json": str(out_dir / "evaluation.json")}


def _targets_text(ctx: _Context) -> tuple[str, str]:
    targets, svm_targets = ctx.targets, ctx.svm_targets
    cnn = "predicted classes" if targets is None else f"CNN class {_class_of(targets)}"
    svm = "predicted labels" if svm_targets is None or svm_targets is PREDICTED else f"SVM label {svm_targets.label!r}"
    return cnn, svm


def _summarise(procs: Processes, ctx: _Context, shards: list[dict], out_dir: Path, t0: float) -> dict[str, object]:
    """The first ``n`` kept images' results, in source order: rows, curves, files (rank 0 writes)."""
    n = ctx.n
    # the candidates examined: every batch up to the one holding the last image kept (ranks that
    # computed further, or a one-process run that stopped there, give the same set)
    examined = [(p, r) for s in shards for p, r in zip(s["positions"], s["right"], strict=True)]
    batches = [(b, res) for s in shards for b, res in zip(s["kept"], s["results"], strict=True)]
    take = n if n is not None else sum(len(b["positions"]) for b, _ in batches)

    def joined(name: str, key: str) -> np.ndarray:
        return np.concatenate([res[name][key] for _, res in batches])[:take]

    right = np.concatenate([b["right"] for b, _ in batches])[:take]
    positions = np.concatenate([b["positions"] for b, _ in batches])[:take]
    candidates = np.concatenate([p for p, _ in examined])
    right_all = np.concatenate([r for _, r in examined])
    # the candidates: every readable image up to the n-th kept one, or every image when fewer were kept
    last = int(positions[-1]) if n is not None and len(positions) == n else int(candidates.max())
    right_all, candidates = right_all[candidates <= last], candidates[candidates <= last]
    skipped = sorted((int(i), m) for s in shards for i, m in s["unreadable"] if i <= last)
    rows, curves, per_image, families = [], {}, {}, {}
    for name, result in batches[0][1].items():
        rows.append(_method_row(name, joined, result, right, ctx))
        per_image[name], families[name] = _per_image_figures(name, joined, result), result["family"]
        if "deletion" in result:
            curves[name] = (
                result["family"],
                result["fractions"],
                joined(name, "deletion").mean(0),
                joined(name, "insertion").mean(0),
            )
    statistics = statistics_rows(per_image, families, ctx.seed)
    cnn_accuracy = float(right_all.mean())
    warning = chance_warning("the CNN's accuracy on the evaluated images", cnn_accuracy, len(ctx.bundle.class_names))
    targets, svm_targets = _targets_text(ctx)
    summary = {
        "data": ctx.data,
        "images": len(positions),
        "asked": n if n is not None else "all",
        "candidates": len(candidates),
        "steps": ctx.steps,
        "svm": ctx.svm_name,
        "targets": targets,
        "svm_targets": svm_targets,
        "correct_only": ctx.correct_only,
        "cnn_accuracy": round(cnn_accuracy, 4),
        "warnings": [warning] if warning else [],
        "skipped": [{"id": ctx.source.ids[i], "reason": m} for i, m in skipped],
        "svm_accuracy_on_kept": round(_svm_accuracy(batches, take, positions, ctx), 4),
        "processes": procs.world,
        "metrics": list(ctx.metrics),
        "rows": rows,
        "statistics": statistics,
    }
    if procs.is_main:
        _write_results(summary, rows, statistics, curves, out_dir, ctx.data)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    if procs.is_main:
        atomic_write_text(out_dir / "evaluation.json", json.dumps(summary, indent=2))
    return summary


def _class_of(targets: object) -> int:
    return int(getattr(targets, "index", targets))


def _svm_label(label: object, classes: np.ndarray) -> object:
    """``label`` as the SVM has it: itself, or the class whose text it is (``"3"`` → 3, from the CLI)."""
    known = list(np.asarray(classes).tolist())
    if label in known:
        return label
    matches = [c for c in known if str(c) == str(label)]
    if not matches:
        raise CadcamInputError(f"svm_targets: {label!r} is not a label of the SVM; it has {known}")
    return matches[0]


FAMILY_TITLES = {
    "class": "CNN class maps (score: class probability)",
    "pca": "PCA-Grad-CAM (score: +p_b or -p_b)",
    "svm": "SVM-Grad-CAM (score: oriented SVM class score)",
}


_LINE_STYLES = ("-", "--", ":", "-.")


def curve_styles(names: list[str]) -> dict[str, tuple[int, str]]:
    """A (colour index, line style) per curve: a PCA map's component and sign (``P2-``) pick its colour
    and its method its line style, so 18 PCA curves need 6 colours and 3 styles; other names take the
    next colour, and a new style after every 10. Distinct up to 10 components × signs and 4 methods (40
    other curves); beyond that pairs repeat.

    >>> curve_styles(["PCA-Grad-CAM P1+", "PCA-XGrad-CAM P1+", "PCA-Grad-CAM P1-"])
    {'PCA-Grad-CAM P1+': (0, '-'), 'PCA-XGrad-CAM P1+': (0, '--'), 'PCA-Grad-CAM P1-': (1, '-')}
    """
    parts = [name.rsplit(" ", 1) if re.fullmatch(r".* P\d+[+-]", name) else [name, ""] for name in names]
    if all(part for _, part in parts):
        colours = list(dict.fromkeys(part for _, part in parts))
        methods = list(dict.fromkeys(method for method, _ in parts))
        return {
            name: (colours.index(part), _LINE_STYLES[methods.index(method) % len(_LINE_STYLES)])
            for name, (method, part) in zip(names, parts)
        }
    return {name: (j % 10, _LINE_STYLES[(j // 10) % len(_LINE_STYLES)]) for j, name in enumerate(names)}


def _plot(curves: dict, path: Path, data: str) -> Path:
    """One row per family (their scores have different scales), deletion left, insertion right; each
    row's legend beside it, outside the data."""
    families = [f for f in FAMILY_TITLES if any(v[0] == f for v in curves.values())]
    fig, axes = plt.subplots(len(families), 2, figsize=(13, 3.2 * len(families)), layout="constrained", squeeze=False)
    cmap = plt.get_cmap("tab10")
    for row, family in enumerate(families):
        members = [(k, v) for k, v in curves.items() if v[0] == family]
        styles = curve_styles([name for name, _ in members])
        for name, (_, x, d, ins) in members:
            colour, style = styles[name]
            axes[row, 0].plot(x, d, color=cmap(colour), ls=style, label=name, lw=1.3)
            axes[row, 1].plot(x, ins, color=cmap(colour), ls=style, label=name, lw=1.3)
        axes[row, 0].set(title=f"Deletion (lower is better): {FAMILY_TITLES[family]}", ylabel="mean score")
        axes[row, 1].set(title=f"Insertion (higher is better): {FAMILY_TITLES[family]}")
        axes[row, 1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.title.set_fontsize(8)
    axes[-1, 0].set_xlabel("fraction of pixels removed")
    axes[-1, 1].set_xlabel("fraction of pixels inserted")
    fig.suptitle(f"Deletion / insertion curves on {data} (blurred baseline)", fontsize=9, parse_math=False)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
