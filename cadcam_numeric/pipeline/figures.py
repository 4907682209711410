"""The figures a person looks at: the paper's Fig. 5 (validation accuracy), Fig. 6 (contribution
ratios), Fig. 7 (3-D PCA scatter) and Fig. 8 (map grids). PNGs, written atomically; no figure
number is drawn into an image (the report numbers its figures; the file names carry the paper's)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from cadcam_numeric.atomic import atomic_write

__all__ = [
    "fig5_validation_accuracy",
    "fig6_contribution_ratios",
    "fig7_pca_scatter",
    "fig8_map_grid",
    "mark_if_all_zero",
]


def _save(fig: plt.Figure, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def fig5_validation_accuracy(val_accuracy: list[float], best_epoch: int, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    epochs = np.arange(1, len(val_accuracy) + 1)
    ax.plot(epochs, val_accuracy, marker="o", ms=3)
    ax.axvline(best_epoch, color="tab:red", ls="--", label=f"best epoch {best_epoch} (kept)")
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy per epoch", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def fig6_contribution_ratios(ratios: np.ndarray, layer: int, width: int, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    percent = 100 * np.asarray(ratios)
    bars = ax.bar([f"PC{b + 1}" for b in range(len(percent))], percent, color="tab:blue")
    ax.bar_label(bars, labels=[f"{p:.1f}%" for p in percent])
    ax.set(
        ylabel="contribution ratio (%)",
        ylim=(0, max(percent) * 1.25),
        title=f"PCA on dense layer {layer} ($D_{{{layer}}}$ = {width})"
        if layer
        else f"PCA on the pooled features $\\mathbf{{x}}$ ($D_0$ = {width})",
    )
    return _save(fig, path)


def literal_text(text: str) -> str:
    """``text`` drawn as written where matplotlib would read mathtext (a legend label): every ``$``
    escaped, so a class name like ``$\\undefinedcmd{x}$`` is shown, not parsed.

    >>> literal_text("cost in $")
    'cost in \\\\$'
    """
    return text.replace("$", r"\$")


def fig7_pca_scatter(scores: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path) -> Path:
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(class_names):
        sel = labels == c
        z = scores[sel, 2] if scores.shape[1] > 2 else np.zeros(sel.sum())
        ax.scatter(scores[sel, 0], scores[sel, 1], z, s=8, color=cmap(c % 10), label=literal_text(name))
    ax.set(xlabel="$p_1$", ylabel="$p_2$", zlabel="$p_3$", title="test PCA scores by class")
    ax.legend(loc="upper left", fontsize=7, ncol=2, markerscale=2)
    return _save(fig, path)


def mark_if_all_zero(ax: plt.Axes, values: np.ndarray) -> bool:
    """Write "all zero" across a map panel whose map is zero everywhere (ReLU removed all of it): an empty
    overlay must not read as "nothing to see here" by accident. Returns whether it marked the panel."""
    if np.any(np.asarray(values) != 0):
        return False
    ax.text(
        0.5, 0.5, "all zero", transform=ax.transAxes, ha="center", va="center", fontsize=8,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.5", "alpha": 0.85},
    )  # fmt: skip
    return True


def fig8_map_grid(
    images: np.ndarray,
    gradcam: np.ndarray,
    svm: np.ndarray,
    pca_pos: np.ndarray,
    pca_neg: np.ndarray,
    row_titles: list[str],
    path: Path,
    svm_name: str,
    method: str = "grad-cam",
    nu: np.ndarray | None = None,
) -> Path:
    """One row per image: the image, Grad-CAM, SVM-Grad-CAM, then P_b⊕ / P_b⊖ for each component.

    ``gradcam``/``svm`` are [0, 1] maps at image size; ``pca_pos``/``pca_neg`` (N, B, H, W) the
    (ReLU'd) maps upsampled to image size; ``nu`` (N, B) the ν_b of Eq. 12, the largest value of the
    pair's *raw* maps at feature resolution (default: of the maps given). Each pair is drawn on
    [0, ν_b] with one opaque colour bar per pair whose top is ν_b.
    """
    from matplotlib import cm
    from matplotlib.colors import Normalize

    n, b = pca_pos.shape[:2]
    cols = 3 + 2 * b
    # 1.9 in above the rows: the figure's title (two lines) and a column title of up to four lines
    fig, axes = plt.subplots(n, cols, figsize=(1.2 * cols + 1.0, 1.2 * n + 1.9), squeeze=False, layout="constrained")
    import textwrap

    wrapped = "\n".join(textwrap.wrap(f"({svm_name})", 16))  # a long classifier name must not run into its neighbour
    titles = ["image", "Grad-CAM\n(CNN class)", f"SVM-Grad-CAM\n{wrapped}"]
    for k in range(b):
        titles += [f"$P_{k + 1}^{{\\oplus}}$", f"$P_{k + 1}^{{\\ominus}}$"]
    grey = images.mean(-1) if images.ndim == 4 else images
    for i in range(n):
        axes[i, 0].imshow(images[i] if images.ndim == 4 else grey[i], cmap=None if images.ndim == 4 else "grey")
        axes[i, 0].set_ylabel(row_titles[i], fontsize=9, parse_math=False)  # a file or class name, never mathtext
        for j, cam in ((1, gradcam[i]), (2, svm[i])):
            axes[i, j].imshow(grey[i], cmap="gray")
            axes[i, j].imshow(cam, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            mark_if_all_zero(axes[i, j], cam)
        if i == n - 1:  # opaque bars: a mappable without the overlay's alpha
            bar = cm.ScalarMappable(norm=Normalize(0, 1), cmap="jet")
            cb = fig.colorbar(
                bar, ax=axes[:, 1:3].ravel().tolist(), orientation="horizontal", fraction=0.03, pad=0.01, aspect=30
            )
            cb.set_label("Grad-CAM, SVM-Grad-CAM: [0, 1] per map", fontsize=9)
            cb.ax.tick_params(labelsize=8)
        for k in range(b):
            top = float(nu[i, k]) if nu is not None else max(float(pca_pos[i, k].max()), float(pca_neg[i, k].max()))
            top = max(top, 1e-300)
            for s, maps in enumerate((pca_pos, pca_neg)):
                ax = axes[i, 3 + 2 * k + s]
                ax.imshow(grey[i], cmap="gray")
                ax.imshow(maps[i, k], cmap="jet", alpha=0.5, vmin=0, vmax=top)
                mark_if_all_zero(ax, maps[i, k])
            bar = cm.ScalarMappable(norm=Normalize(0, top), cmap="jet")
            cb = fig.colorbar(bar, ax=axes[i, 3 + 2 * k : 5 + 2 * k].tolist(), fraction=0.06, pad=0.01, aspect=12)
            cb.ax.tick_params(labelsize=8, length=2, pad=1)
            cb.set_ticks([0, top])
            cb.set_ticklabels(["0", f"{top:.2g}"])
    for j, title in enumerate(titles):
        axes[0, j].set_title(title, fontsize=10, parse_math=j != 2)  # column 2 names the user's classifier
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"Maps ({method}). Each PCA pair $P_b^\\oplus$, $P_b^\\ominus$ is drawn on one scale [0, $\\nu_b$] (Eq. 12),\n"
        "$\\nu_b$ the largest value of the pair's raw maps; its colour bar's top is $\\nu_b$.",
        fontsize=10,
    )
    return _save(fig, path)
