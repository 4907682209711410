"""``cadcam explain``: a figure for a few image files, a map store for more — chosen here, on a source
opened once.

Up to :data:`MAX_IMAGES_PER_FIGURE` plain files (or a small folder) give ``maps.png`` and ``maps.npz``;
a data source, ``--store``, ``--distributed`` or more images give a store
(:func:`~cadcam_numeric.pipeline.explain_store.explain_to_store`). In both, an unreadable image is skipped
and listed (``strict``: the first stops the run), so one corrupt PNG does not cost the others their maps.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cadcam_numeric.devices import select_device
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.bundle import Bundle, load_bundle, read_bundle_document
from cadcam_numeric.pipeline.bundle_document import InputsSection
from cadcam_numeric.pipeline.data import open_regular_file
from cadcam_numeric.pipeline.explain_store import StoreRun, explain_to_store
from cadcam_numeric.pipeline.run import explain_images
from cadcam_numeric.pipeline.sources import ImageSource, is_data_source, open_source, readable_name
from cadcam_numeric.spec.architecture import load_architecture_file

__all__ = ["MAX_IMAGES_PER_FIGURE", "FigureRun", "explain_figures", "explain_sources", "input_notice"]

MAX_IMAGES_PER_FIGURE = 12


@dataclass(frozen=True)
class FigureRun:
    """What figure mode wrote (name -> path) and the images it skipped, as (id, reason)."""

    files: dict[str, Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _readable(src: ImageSource, strict: bool) -> tuple[list[int], torch.Tensor | None, list[tuple[str, str]]]:
    """The positions and model inputs of the readable images, and (id, reason) for the others."""
    kept, images, skipped = [], [], []
    for index in range(len(src)):
        item = src[index]
        if item.image is None:
            if strict:
                raise CadcamInputError(f"images: {src.ids[index]}: {item.error} (--strict stops at the first)")
            skipped.append((src.ids[index], item.error))
            continue
        kept.append(index)
        images.append(item.image)
    return kept, (torch.stack(images) if images else None), skipped


def explain_figures(
    bundle: Bundle, src: ImageSource, out_dir: Path, *, svm: str | None, method: str, strict: bool = False
) -> FigureRun:
    """One grid PNG and one .npz per group of up to 12 readable images of ``src``."""
    kept, images, skipped = _readable(src, strict)
    if images is None:
        what = "the image" if len(skipped) == 1 else f"none of the {len(skipped)} images"
        raise CadcamInputError(f"images: {what} could not be read; the first: {skipped[0][1]}")
    written: dict[str, Path] = {}
    for start in range(0, len(kept), MAX_IMAGES_PER_FIGURE):
        group = slice(start, start + MAX_IMAGES_PER_FIGURE)
        names = [readable_name(src.files[i].name) if src.files else src.ids[i] for i in kept[group]]
        stem = "maps" if len(kept) <= MAX_IMAGES_PER_FIGURE else f"maps_{start // MAX_IMAGES_PER_FIGURE + 1:03d}"
        out = explain_images(bundle, images[group], out_dir, names, svm, method, stem)
        written[f"{stem}.png"], written[f"{stem}.npz"] = out["grid"], out["maps"]
    return FigureRun(written, skipped)


#: image files whose headers are read to compare them with the training images
NOTICE_SAMPLE = 200


def _shapes_of(src: ImageSource) -> list[tuple[int, int, int]]:
    """(C, H, W) of the source's images as stored (file headers, the first :data:`NOTICE_SAMPLE`)."""
    from PIL import Image

    if src.arrays is not None:
        return [tuple(src.arrays.shape[1:])]
    shapes = []
    for path in (src.files or [])[:NOTICE_SAMPLE]:
        try:
            with open_regular_file(path) as handle, Image.open(handle) as img:  # a FIFO is never opened
                shapes.append((_channels(img.mode), img.height, img.width))
        except (OSError, ValueError, SyntaxError, CadcamInputError):
            continue  # unreadable: skipped and listed when the images are read
    return shapes


def _channels(mode: str) -> int:
    """The channels an image of PIL ``mode`` holds as a person sees it (a palette image is colour)."""
    if mode in ("1", "L", "I", "F") or mode.startswith("I;"):
        return 1
    return {"LA": 2, "La": 2, "RGBA": 4, "RGBa": 4}.get(mode, 3)


def input_notice(inputs: InputsSection | None, input_size: int, src: ImageSource) -> str | None:
    """One line when the images differ from the bundle's training images in channels or size (they are
    converted and resized as those were, so the maps may show little); None when they match or the
    bundle does not record its training images.

    >>> from cadcam_numeric.pipeline.bundle_document import InputsSection
    >>> src = ImageSource("x", ["a"], [""], 32, arrays=torch.zeros(1, 3, 64, 48, dtype=torch.uint8))
    >>> input_notice(InputsSection(1, 8, 8), 32, src).startswith("notice: 1 of 1 images differ from the training")
    True
    >>> input_notice(InputsSection(3, 64, 48), 32, src) is None
    True
    """
    if inputs is None:
        return None
    trained = (inputs.channels, inputs.height, inputs.width)
    shapes = _shapes_of(src)
    differ = [s for s in shapes if (min(s[0], 3), s[1], s[2]) != (min(trained[0], 3), trained[1], trained[2])]
    if not differ:
        return None
    kind = {1: "grey", 2: "grey + alpha", 3: "colour", 4: "colour + alpha"}
    c, h, w = differ[0]
    return (
        f"notice: {len(differ)} of {len(shapes)} images differ from the training images ({kind[trained[0]]} "
        f"{trained[2]}x{trained[1]}; e.g. {kind.get(c, f'{c}-channel')} {w}x{h}): they are converted to RGB and "
        f"resized to the model's {input_size}x{input_size} input as those were, so their maps may show little"
    )


def _file_size(document) -> int | None:
    """The size image files are read at so that they go through the training images' own conversion: a
    folder-trained bundle's images were read at its ``image_size``; an array source's were not resized
    before the model's bilinear resize."""
    if str(document.config.get("data", "")).startswith("folder:"):
        return int(document.config.get("image_size", document.backbone.input_size))
    return None


def wants_store(sources: list[str], src: ImageSource, force_store: bool, distributed: bool) -> bool:
    """A store for a data source, ``--store``, ``--distributed`` or more than 12 images; else a figure."""
    return force_store or distributed or any(map(is_data_source, sources)) or len(src) > MAX_IMAGES_PER_FIGURE


def explain_sources(
    bundle_dir: Path,
    sources: list[str],
    out_dir: Path,
    *,
    force_store: bool = False,
    store: dict | None = None,
    svm: str | None = None,
    method: str = "grad-cam",
    weights: str | None = None,
    device: str | None = None,
    derived: str | Path | None = None,
    spec: str | Path | None = None,
) -> FigureRun | StoreRun:
    """Maps for ``sources`` (files, folders or one data source) from the bundle in ``bundle_dir``.

    Args:
        store: the store's settings (shard_size, batch_size, workers, float16, strict, distributed, seed).
    Returns:
        a :class:`FigureRun`, or the store's :class:`~cadcam_numeric.pipeline.explain_store.StoreRun`.
    """
    store = dict(store or {})
    document = read_bundle_document(bundle_dir)  # validated; no network built
    size = document.backbone.input_size
    src = open_source(
        sources if len(sources) > 1 else sources[0], size, store.get("seed", 0), file_size=_file_size(document)
    )
    notice = input_notice(document.inputs, size, src)
    if notice:
        print(notice, file=sys.stderr)
    common = {"svm": svm, "method": method, "weights": weights, "device": device, "derived": derived, "spec": spec}
    if wants_store(sources, src, force_store, store.get("distributed", False)):
        return explain_to_store(bundle_dir, src, out_dir, **common, **store)
    architecture = load_architecture_file(spec, derived) if spec is not None else None
    dev = select_device(device)
    bundle = load_bundle(bundle_dir, weights=weights, device=dev, derived=derived, architecture=architecture)
    return explain_figures(bundle, src, out_dir, svm=svm, method=method, strict=store.get("strict", False))
