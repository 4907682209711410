"""Image sources streamed one image at a time: what ``cadcam explain`` and ``cadcam evaluate`` read.

A source is a :class:`torch.utils.data.Dataset` of images with a stable id each; a DataLoader's
worker processes read and convert them (:meth:`ImageSource.__getitem__` returns the model-ready
image), so the main process only runs the model. Sources (``SOURCE``):

* image files and folders (every image file under a folder, sorted; id: the path);
* ``files:LIST.txt`` — one image path per line (relative paths are relative to the list's folder;
  empty lines and lines starting with ``#`` are skipped; id: the line);
* ``folder:PATH`` — every image file under PATH, sorted (id: the path relative to PATH; label: the
  class folder of an ImageFolder layout, ``PATH/CLASS/…`` or ``PATH/{train,val,test}/CLASS/…``);
* ``digits``, ``mnist:ROOT``, ``fashion-mnist:ROOT``, ``cifar10:ROOT``, ``medmnist:FILE.npz`` —
  the test split of :func:`~cadcam_numeric.pipeline.data.load_data` (id: ``test/000123``);
  with ``held_out`` (what ``evaluate`` asks for) ``folder:PATH`` is its test split too, as
  ``cadcam train`` holds it out, so that no training image is scored;
* ``localisation`` or ``localisation:N`` — the localisation set (N images, default 1,000; boxes;
  ``evaluate`` draws 10·n for n correctly classified images).

Files are read lazily and may be corrupt: such an image comes back as an error message, never as an
exception, so a run can skip it and list it. Nothing executes code (PIL; ``np.load`` without pickle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.data import IMAGE_SUFFIXES, image_files, load_data, read_image, to_model_input

__all__ = ["ARRAY_SOURCES", "ImageSource", "Item", "collate_items", "is_data_source", "open_source", "readable_name"]

#: sources held as arrays (the test split of a dataset, or generated)
ARRAY_SOURCES = ("digits", "mnist", "fashion-mnist", "cifar10", "medmnist", "localisation")
_PREFIXES = (*ARRAY_SOURCES, "folder", "files")
DEFAULT_LOCALISATION_IMAGES = 1000


@dataclass(frozen=True)
class Item:
    """One image of a source: its position, the model-ready image (None when unreadable) and why not."""

    index: int
    image: Tensor | None
    error: str


def collate_items(items: list[Item]) -> tuple[Tensor, Tensor, list[tuple[int, str]]]:
    """A DataLoader batch: the readable images stacked (B, 3, S, S), their positions (B,), and the
    unreadable ones as (position, message)."""
    good = [it for it in items if it.image is not None]
    bad = [(it.index, it.error) for it in items if it.image is None]
    images = torch.stack([it.image for it in good]) if good else torch.empty(0)
    return images, torch.tensor([it.index for it in good], dtype=torch.long), bad


class ImageSource(Dataset):
    """Images with an id and a label each (label ``""`` when the source has none), read on demand.

    ``files`` (paths) or ``arrays`` (uint8 (N, C, H, W)) hold the images; ``boxes`` (N, 4) the
    localisation set's ground-truth boxes in model-input pixels, else None.
    """

    def __init__(
        self,
        name: str,
        ids: list[str],
        labels: list[str],
        size: int,
        files: list[Path] | None = None,
        arrays: Tensor | None = None,
        boxes: Tensor | None = None,
        class_labels: list[int] | None = None,
        file_size: int | None = -1,
    ) -> None:
        ids, labels, name = [readable_name(i) for i in ids], [readable_name(x) for x in labels], readable_name(name)
        if len(ids) != len(labels) or len(set(ids)) != len(ids):
            raise CadcamInputError(f"source: {name}: every image needs one label and a unique id")
        self.name, self.ids, self.labels, self.size = name, ids, labels, size
        self.files, self.arrays, self.boxes, self.class_labels = files, arrays, boxes, class_labels
        #: the size image files are read at before the model's resize (None: as stored; default: ``size``)
        self.file_size = size if file_size == -1 else file_size

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Item:
        if self.arrays is not None:
            return Item(index, to_model_input(self.arrays[index : index + 1], self.size)[0], "")
        try:
            raw = read_image(self.files[index], self.file_size)
        except CadcamInputError as exc:
            return Item(index, None, readable_name(str(exc)))
        return Item(index, to_model_input(torch.from_numpy(np.array(raw))[None], self.size)[0], "")


def readable_name(text: str) -> str:
    """A file or folder name as valid UTF-8 text: bytes that are not UTF-8 (Python holds them as
    surrogate escapes) are shown as ``\\xNN``, so an id, label or digest never fails to encode.

    >>> readable_name(b"caf\\xe9.png".decode("utf-8", "surrogateescape"))
    'caf\\\\xe9.png'
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_data_source(text: str) -> bool:
    """Whether ``text`` names a data source (``folder:``, ``mnist:``, ``digits``, …), not a path."""
    kind, sep, _ = text.partition(":")
    return (kind in _PREFIXES and bool(sep)) or text in ("digits", "localisation")


def _paths_source(paths: list[str], size: int, file_size: int | None = -1) -> ImageSource:
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files += image_files(path)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise CadcamInputError(f"images: {path} is not an image ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files.append(path)
        elif path.exists():
            raise CadcamInputError(f"images: {path} is not a regular file or a folder")
        elif re.match(r"^[A-Za-z][\w-]*:", text) and not re.match(r"^[A-Za-z]:[\\/]", text):
            raise CadcamInputError(
                f"source: {text.split(':', 1)[0]!r} is not a source kind, and {text} is not a path; expected "
                "image files or folders, or one of folder:PATH, files:LIST.txt, digits, mnist:ROOT, "
                "fashion-mnist:ROOT, cifar10:ROOT, medmnist:FILE.npz, localisation[:N]"
            )
        else:
            raise CadcamInputError(f"images: {path} does not exist")
    if not files:
        raise CadcamInputError("images: no image files found")
    if len(set(files)) != len(files):
        raise CadcamInputError("images: an image is named twice (a file and a folder holding it?)")
    return ImageSource(
        " ".join(paths), [str(f) for f in files], [""] * len(files), size, files=files, file_size=file_size
    )


def _class_folder(parts: tuple[str, ...]) -> str:
    """The class of an image at ``parts`` under an ImageFolder root: CLASS/… or SPLIT/CLASS/…."""
    if len(parts) > 2 and parts[0] in ("train", "val", "test"):
        return parts[1]
    return parts[0] if len(parts) > 1 else ""


def _folder_source(root: Path, size: int, file_size: int | None = -1) -> ImageSource:
    if not root.is_dir():
        raise CadcamInputError(f"source: folder {root} does not exist")
    files = image_files(root)
    if not files:
        raise CadcamInputError(f"source: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    relative = [f.relative_to(root) for f in files]
    ids, labels = [r.as_posix() for r in relative], [_class_folder(r.parts) for r in relative]
    return ImageSource(f"folder:{root}", ids, labels, size, files=files, file_size=file_size)


def _list_source(listing: Path, size: int, file_size: int | None = -1) -> ImageSource:
    if not listing.is_file():
        raise CadcamInputError(f"source: file list {listing} does not exist")
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CadcamInputError(f"source: cannot read the file list {listing} ({exc})") from exc
    ids = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise CadcamInputError(f"source: the file list {listing} names no images")
    if len(set(ids)) != len(ids):
        raise CadcamInputError(f"source: the file list {listing} names an image twice")
    files = [p if (p := Path(i)).is_absolute() else listing.parent / p for i in ids]
    return ImageSource(f"files:{listing}", ids, [""] * len(ids), size, files=files, file_size=file_size)


def _array_source(source: str, size: int, seed: int) -> ImageSource:
    kind, _, arg = source.partition(":")
    if kind == "localisation":
        from cadcam_numeric.pipeline.localisation import make_localisation_set, scale_boxes

        try:
            n = int(arg) if arg else DEFAULT_LOCALISATION_IMAGES
        except ValueError:
            n = 0
        if n < 1:
            raise CadcamInputError(f"source: localisation:N needs a positive number of images, got {arg!r}")
        loc = make_localisation_set(n, canvas=40, scales=(4,), seed=seed)
        labels = loc.images.labels.tolist()
        return ImageSource(
            source,
            [f"loc/{i:06d}" for i in range(n)],
            [str(v) for v in labels],
            size,
            arrays=loc.images.images,
            boxes=scale_boxes(loc.boxes, loc.canvas, size),
            class_labels=labels,
        )
    splits = load_data(source, seed)
    test = splits.test
    labels = test.labels.tolist()
    return ImageSource(
        source,
        [f"test/{i:06d}" for i in range(len(test))],
        [splits.class_names[v] for v in labels],
        size,
        arrays=test.images,
        class_labels=labels,
    )


def open_source(
    source: str | list[str], size: int, seed: int = 0, held_out: bool = False, file_size: int | None = -1
) -> ImageSource:
    """The :class:`ImageSource` that ``source`` names (module docstring); ``size`` is the model's
    input size. A list is image files and folders; a string may also name a data source. ``file_size``:
    the size image files are read at before the model's own (bilinear, float) resize to ``size`` —
    None keeps them as stored, as a bundle trained on arrays saw its images; default ``size``."""
    items = [source] if isinstance(source, str) else list(source)
    for item in items:
        if item in ("digits", "localisation") and Path(item).exists():
            raise CadcamInputError(
                f"source: {item!r} is both a data source and a path here; write ./{item} for the path"
            )
    if len(items) == 1 and is_data_source(items[0]):
        kind, _, arg = items[0].partition(":")
        if kind in ("folder", "files", "mnist", "fashion-mnist", "cifar10", "medmnist") and not arg.strip():
            raise CadcamInputError(f"source: {kind}: needs a path, e.g. {kind}:/data/{kind}")
        if kind == "folder" and not held_out:
            return _folder_source(Path(arg), size, file_size)
        if kind == "files":
            return _list_source(Path(arg), size, file_size)
        return _array_source(items[0], size, seed)
    if any(is_data_source(i) for i in items):
        raise CadcamInputError("source: a data source (folder:, mnist:, …) must be the only SOURCE given")
    return _paths_source(items, size, file_size)
