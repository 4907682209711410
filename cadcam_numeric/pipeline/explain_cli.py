"""``cadcam explain``: read image files (PNG, JPEG, …) or folders and write maps from a bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cadcam_numeric.devices import select_device
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.bundle import load_bundle
from cadcam_numeric.pipeline.data import read_image, to_model_input
from cadcam_numeric.pipeline.run import explain_images
from cadcam_numeric.pipeline.sources import open_source, readable_name
from cadcam_numeric.spec.architecture import load_architecture_file

__all__ = ["explain_paths"]

MAX_IMAGES_PER_FIGURE = 12


def explain_paths(
    bundle_dir: Path,
    paths: list[Path],
    out_dir: Path,
    svm: str | None = None,
    method: str = "grad-cam",
    weights: str | None = None,
    device: str | None = None,
    derived: str | Path | None = None,
    spec: str | Path | None = None,
) -> dict[str, Path]:
    """Maps for every image; one grid PNG and one .npz per group of up to 12 images.

    ``derived``: for a bundle made from a spec with its own activations/kernels, the directory
    ``cadcam derive SPEC --out DIR`` wrote; ``spec``: that spec's file, checked to be the one the
    bundle was made from.
    """
    dev = select_device(device)
    architecture = load_architecture_file(spec, derived) if spec is not None else None
    bundle = load_bundle(bundle_dir, weights=weights, device=dev, derived=derived, architecture=architecture)
    files = open_source([str(p) for p in paths], bundle.backbone.input_size).files
    size = bundle.backbone.input_size
    written: dict[str, Path] = {}
    for start in range(0, len(files), MAX_IMAGES_PER_FIGURE):
        group = files[start : start + MAX_IMAGES_PER_FIGURE]
        try:
            raw = torch.from_numpy(np.stack([read_image(f, size) for f in group]))
        except OSError as exc:
            raise CadcamInputError(f"images: cannot read an image in {[str(f) for f in group]}: {exc}") from exc
        stem = "maps" if len(files) <= MAX_IMAGES_PER_FIGURE else f"maps_{start // MAX_IMAGES_PER_FIGURE + 1:03d}"
        out = explain_images(
            bundle, to_model_input(raw, size), out_dir, [readable_name(f.name) for f in group], svm, method, stem
        )
        written[f"{stem}.png"], written[f"{stem}.npz"] = out["grid"], out["maps"]
    return written
