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
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from cadcam_numeric.engine.explain import METHOD_LABELS, explain, position_gradients, target_scores
from cadcam_numeric.engine.maps import normalise, upsample
from cadcam_numeric.engine.targets import SVMClassTarget, resolve_targets
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.methods.decom import decom_cam, gaussian_blur
from cadcam_numeric.methods.eigen import eigen_cam, eigen_grad_cam
from cadcam_numeric.metrics import deletion_insertion, localisation_hits, pointing_game, stratified_by_accuracy
from cadcam_numeric.pipeline.bundle import load_bundle
from cadcam_numeric.pipeline.data import load_data, to_model_input
from cadcam_numeric.pipeline.localisation import make_localisation_set, scale_boxes
from cadcam_numeric.pipeline.run import labels_as_numpy, rows_to_csv, rows_to_markdown

__all__ = ["run_evaluation"]


@dataclass
class _Method:
    name: str
    family: str
    maps: Tensor  # (N, H, W) in [0, 1]
    score: Callable[[Tensor, Tensor], Tensor]


def run_evaluation(
    bundle_dir: Path,
    out_dir: Path,
    data: str = "localisation",
    n: int = 100,
    steps: int = 16,
    svm: str | None = None,
    seed: int = 0,
    device: str | None = None,
    weights: str | None = None,
    correct_only: bool = True,
    derived: str | Path | None = None,
    targets: object = None,
    svm_targets: object = None,
) -> dict[str, object]:
    """Evaluate on ``n`` images; with ``correct_only`` (Decom-CAM's protocol) only images the CNN
    classifies correctly are kept (candidates are drawn until ``n`` are found or 10·n were tried).

    ``targets`` / ``svm_targets``: what every map explains, one target for all images, as in
    :func:`~cadcam_numeric.engine.explain.explain` (an integer or :class:`ClassTarget` of the CNN,
    an :class:`SVMClassTarget`; default: each image's predictions). The scores the deletion and
    insertion curves follow are those of the explained targets.
    """
    for name, value in (("targets", targets), ("svm_targets", svm_targets)):
        if isinstance(value, list | tuple | np.ndarray | Tensor):
            raise CadcamInputError(f"{name}: evaluate takes one target for all images, got a sequence")
    t0 = time.perf_counter()
    dev = select_device(device)
    bundle = load_bundle(bundle_dir, weights=weights, device=dev, derived=derived)
    size = bundle.backbone.input_size
    svm_name = svm or bundle.default_svm
    if svm_name not in bundle.svms:
        raise CadcamInputError(f"svm: {svm_name!r} is not in the bundle; it has {sorted(bundle.svms)}")
    svm_head = bundle.svms[svm_name]
    boxes = None
    candidates = 10 * n if correct_only else n
    if data == "localisation":
        loc = make_localisation_set(candidates, canvas=40, scales=(4,), seed=seed)
        raw, labels = loc.images.images, loc.images.labels
        boxes = scale_boxes(loc.boxes, loc.canvas, size)
    else:
        split = load_data(data, seed).test
        raw, labels = split.images[:candidates], split.labels[:candidates]
    model, head, pca, layer = bundle.model, bundle.model.head, bundle.pca, bundle.pca_after
    images = to_model_input(raw, size).to(dev)
    with torch.no_grad():
        predicted = torch.cat([model(images[i : i + 256]).argmax(1).cpu() for i in range(0, len(images), 256)])
    accuracy = float((predicted == labels).float().mean())
    keep = torch.nonzero(predicted == labels).flatten()[:n] if correct_only else torch.arange(min(n, len(labels)))
    if len(keep) == 0:
        raise CadcamInputError("data: the model classifies none of the images correctly; nothing to evaluate")
    images, labels = images[keep.to(dev)], labels[keep]
    boxes = boxes[keep] if boxes is not None else None
    with torch.no_grad():
        features = model.backbone(images)
    sigma = max(1.0, size / 16)
    baseline = gaussian_blur(images, sigma)

    def scores_of(x: Tensor) -> object:
        with torch.no_grad():
            return target_scores(model.backbone(x), head, pca, layer, svm_head)

    if isinstance(svm_targets, SVMClassTarget):
        svm_targets = SVMClassTarget(_svm_label(svm_targets.label, svm_head.classes))
    chosen = resolve_targets(targets, svm_targets, len(images), len(bundle.class_names), svm_head.classes)
    targets, svm_targets = chosen.cnn, chosen.svm
    methods: list[_Method] = []
    per_method = {
        m: explain(features, head, pca, layer, svm_head, targets=targets, svm_targets=svm_targets, method=m)
        for m in METHOD_LABELS
    }
    r = per_method["grad-cam"]
    cls, svm_idx = r.cnn_target, svm_head.class_index(labels_as_numpy(r.svm_target), "svm").to(dev)

    def class_prob(x: Tensor, i: Tensor) -> Tensor:
        return torch.softmax(scores_of(x).logits, 1)[torch.arange(len(i)), cls[i]]

    def svm_score(x: Tensor, i: Tensor) -> Tensor:
        return scores_of(x).svm_scores[torch.arange(len(i)), svm_idx[i]]

    def pca_score(b: int, sign: float) -> Callable[[Tensor, Tensor], Tensor]:
        return lambda x, i: sign * scores_of(x).pca_scores[:, b]

    def prep(m: Tensor) -> Tensor:
        return normalise(upsample(m, (size, size)))

    for mname, res in per_method.items():
        label = METHOD_LABELS[mname]
        methods.append(_Method(f"{label} (class)", "class", prep(res.gradcam), class_prob))
        methods.append(_Method(f"SVM-{label}", "svm", prep(res.svm), svm_score))
        for b in range(res.pca_positive.shape[1]):
            methods.append(_Method(f"PCA-{label} P{b + 1}+", "pca", prep(res.pca_positive[:, b]), pca_score(b, 1.0)))
            methods.append(_Method(f"PCA-{label} P{b + 1}-", "pca", prep(res.pca_negative[:, b]), pca_score(b, -1.0)))
    methods.append(_Method("Eigen-CAM", "class", prep(eigen_cam(features)), class_prob))
    grads = position_gradients(features, head, pca, layer, svm_head, targets=targets, svm_targets=svm_targets)
    methods.append(
        _Method("Eigen-Grad-CAM (class)", "class", prep(eigen_grad_cam(features, grads.gradcam)), class_prob)
    )
    decom = decom_cam(
        images, model.backbone, head, pca, layer, None, target="class", targets=cls, p=10, blur_sigma=sigma
    )
    methods.append(_Method("Decom-CAM (class)", "class", decom.saliency, class_prob))

    rows, curves = [], {}
    for m in tqdm(methods, desc="metrics", leave=False):
        c = deletion_insertion(m.score, images, m.maps.to(images), baseline, steps)
        row = {
            "method": m.name,
            "deletion_auc": round(float(c.deletion_auc.mean()), 4),
            "insertion_auc": round(float(c.insertion_auc.mean()), 4),
            "insertion_minus_deletion": round(float((c.insertion_auc - c.deletion_auc).mean()), 4),
        }
        if not correct_only and m.family == "class":
            right = (r.cnn_prediction.cpu() == labels).numpy()
            try:  # Decom-CAM's stratified protocol (needs right and wrong predictions)
                _, _, auc = stratified_by_accuracy(
                    (c.insertion_auc - c.deletion_auc).cpu().numpy(), right, 50, 10, seed
                )
                row["stratified_auc"] = round(auc, 4)
            except CadcamInputError:
                row["stratified_auc"] = "n/a"
        if boxes is not None:
            ious, hits = localisation_hits(m.maps, boxes, 0.15)
            row.update(
                pointing_game=round(float(pointing_game(m.maps, boxes.to(dev)).float().mean()), 4),
                mean_iou=round(float(ious.mean()), 4),
                iou_at_least_0_5=round(float(hits.mean()), 4),
            )
        rows.append(row)
        curves[m.name] = (
            m.family,
            c.fractions.cpu().numpy(),
            c.deletion.mean(0).cpu().numpy(),
            c.insertion.mean(0).cpu().numpy(),
        )
    predicted_svm = labels_as_numpy(r.svm_prediction)
    truth = labels.numpy() if predicted_svm.dtype.kind in "iu" else np.asarray(bundle.class_names)[labels.numpy()]
    svm_accuracy = float(np.mean(predicted_svm.astype(str) == truth.astype(str))) if len(truth) else 0.0
    out_dir = Path(out_dir)
    files = {
        "csv": atomic_write_text(out_dir / "evaluation.csv", rows_to_csv(rows)),
        "md": atomic_write_text(out_dir / "evaluation.md", rows_to_markdown(rows)),
        "curves": _plot(curves, out_dir / "evaluation_curves.png", data),
    }
    summary = {
        "data": data,
        "images": len(labels),
        "candidates": len(predicted),
        "steps": steps,
        "svm": svm_name,
        "targets": "predicted classes" if targets is None else f"CNN class {int(cls[0])}",
        "svm_targets": "predicted labels" if svm_targets is None else f"SVM label {svm_targets[0].item()!r}",
        "correct_only": correct_only,
        "cnn_accuracy": round(accuracy, 4),
        "svm_accuracy_on_kept": round(svm_accuracy, 4),
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "files": {k: str(v) for k, v in files.items()},
    }
    atomic_write_text(out_dir / "evaluation.json", json.dumps(summary, indent=2))
    return summary


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


def _plot(curves: dict, path: Path, data: str) -> Path:
    """One row per family (their scores have different scales), deletion left, insertion right."""
    families = [f for f in FAMILY_TITLES if any(v[0] == f for v in curves.values())]
    fig, axes = plt.subplots(len(families), 2, figsize=(11, 3.2 * len(families)), layout="constrained", squeeze=False)
    cmap = plt.get_cmap("tab10")
    for row, family in enumerate(families):
        members = [(k, v) for k, v in curves.items() if v[0] == family]
        for j, (name, (_, x, d, ins)) in enumerate(members):
            axes[row, 0].plot(x, d, color=cmap(j % 10), label=name, lw=1.3)
            axes[row, 1].plot(x, ins, color=cmap(j % 10), lw=1.3)
        axes[row, 0].set(title=f"Deletion (lower is better): {FAMILY_TITLES[family]}", ylabel="mean score")
        axes[row, 1].set(title=f"Insertion (higher is better): {FAMILY_TITLES[family]}")
        axes[row, 0].legend(fontsize=7, loc="best")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.title.set_fontsize(8)
    axes[-1, 0].set_xlabel("fraction of pixels removed")
    axes[-1, 1].set_xlabel("fraction of pixels inserted")
    fig.suptitle(f"Deletion / insertion curves on {data} (blurred baseline)", fontsize=9)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
