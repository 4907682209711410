"""Image data: the embedded default (scikit-learn's digits) and local datasets, split as the paper.

Sources (``--data``):

* ``digits`` — scikit-learn's 1,797 real 8×8 handwritten digits, 10 classes; ships with the
  package, needs no download. Held out: 20 % test (stratified), then 20 % of the rest for validation.
* ``folder:PATH`` — a torchvision ``ImageFolder`` layout (one sub-folder per class); if PATH has
  ``train/`` and ``test/`` sub-folders they are the splits, otherwise 20 % is held out for test.
* ``mnist:ROOT``, ``fashion-mnist:ROOT``, ``cifar10:ROOT`` — torchvision's datasets from a local
  root (their official train/test splits); downloaded only when ``download=True``. Caveat: the
  official CIFAR-10 files are Python pickles, which torchvision unpickles; use files you trust.
* ``medmnist:FILE.npz`` — a MedMNIST file (``train_images``, ``train_labels``, ``val_*``, ``test_*``).

Everything is loaded as uint8 images (N, C, H, W) plus integer labels; nothing executes code
(``np.load(allow_pickle=False)``, PIL for image files). Splits are seeded and stratified; the
validation set is 20 % of the training data (paper §5), except where MedMNIST provides one.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = ["DataSplits", "ImageSet", "image_files", "load_data", "open_regular_file", "to_model_input"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class ImageSet:
    """uint8 images (N, C, H, W), C ∈ {1, 3}, and int64 labels (N,)."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray) -> ImageSet:
        idx = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx])

    def batches(self, batch_size: int, input_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Model-ready float batches (B, 3, S, S), normalised, with their labels."""
        for start in range(0, len(self), batch_size):
            sl = slice(start, start + batch_size)
            yield to_model_input(self.images[sl], input_size), self.labels[sl]


@dataclass(frozen=True)
class DataSplits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    class_names: list[str]
    source: str


def to_model_input(images: Tensor, input_size: int) -> Tensor:
    """uint8 (N, C, H, W) -> float (N, 3, S, S): [0, 1], grey repeated to RGB, bilinear resize,
    ImageNet mean/std normalisation (what torchvision's VGG16 weights expect)."""
    x = images.float() / 255.0
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if x.shape[-2:] != (input_size, input_size):
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def from_model_input(x: Tensor) -> np.ndarray:
    """Undo :func:`to_model_input`'s normalisation for display: (N, H, W, 3) in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x.cpu() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def _holdout(index: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded 80/20 split, stratified whenever every class can appear on both sides."""
    counts = np.bincount(labels[index])
    counts = counts[counts > 0]
    n_out = int(np.ceil(0.2 * len(index)))
    stratify = labels[index] if counts.min() >= 2 and len(counts) <= min(n_out, len(index) - n_out) else None
    return train_test_split(index, test_size=0.2, random_state=seed, stratify=stratify)


def _split(full: ImageSet, seed: int, test: bool) -> tuple[ImageSet, ImageSet, ImageSet | None]:
    labels = full.labels.numpy()
    index = np.arange(len(full))
    test_set = None
    if test:
        index, test_idx = _holdout(index, labels, seed)
        test_set = full.subset(test_idx)
    train_idx, val_idx = _holdout(index, labels, seed + 1)
    return full.subset(train_idx), full.subset(val_idx), test_set


def _digits() -> tuple[ImageSet, list[str]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return ImageSet(torch.from_numpy(images), torch.from_numpy(digits.target.astype(np.int64))), [
        str(i) for i in range(10)
    ]


#: the most pixels an image file may hold (PIL's own bomb limit is a warning below 2x this)
MAX_IMAGE_PIXELS = 64_000_000
#: the most bytes the arrays of a MedMNIST ``.npz`` may unpack to
MAX_NPZ_BYTES = 4 << 30
#: the most classes a dataset may hold
MAX_CLASSES = 10_000


def _to_8bit_rgb(img) -> object:
    """The image as 8-bit RGB, scaled from its real bit depth: 16-bit images from 0..65535 (other
    32-bit integers are refused), float images from [0, 1]; palette, grey, CMYK and alpha by PIL."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit images (PIL opens some as mode I): scaled from 0..65535; other 32-bit integers refused
        array = np.asarray(img).astype(np.float64)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError("a 32-bit integer image must hold 16-bit values (0..65535)")
        return Image.fromarray(np.round(array * (255.0 / 65535.0)).astype(np.uint8)).convert("RGB")
    if img.mode == "F":
        array = np.asarray(img, dtype=np.float64)
        if not np.isfinite(array).all() or array.min(initial=0) < 0 or array.max(initial=0) > 1:
            raise ValueError("a float image must hold finite values in [0, 1]")
        return Image.fromarray(np.round(array * 255.0).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, checked on the open descriptor: opened
    with ``O_NONBLOCK``, so a FIFO or device (also one swapped in after the listing) is refused at
    once instead of blocking the reader for ever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise CadcamInputError(f"image: cannot open {path} ({exc.strerror or exc})") from exc
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise CadcamInputError(
            f"image: {path} is not a regular file (a FIFO, device or folder); expected an image file"
        )
    return handle


def read_image(path: Path, size: int | None) -> np.ndarray:
    """One image file as uint8 (3, H, W), resized to ``size`` when given; any file PIL cannot read
    as an image, larger than :data:`MAX_IMAGE_PIXELS`, or that is not a regular file (a FIFO named
    x.png), is refused by name."""
    import warnings

    from PIL import Image

    with open_regular_file(path) as handle:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(handle) as img:
                    if img.width * img.height > MAX_IMAGE_PIXELS:
                        raise ValueError(f"{img.width}x{img.height} px is more than {MAX_IMAGE_PIXELS:,} pixels")
                    img = _to_8bit_rgb(img)
                    if size is not None:
                        img = img.resize((size, size), Image.BILINEAR)
                    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            reason = re.sub(r"\s*<_io\.\w+ name=[^>]*>", "", str(exc))  # PIL names the handle, not the file
            raise CadcamInputError(f"image: cannot read {path} as an image ({type(exc).__name__}: {reason})") from exc


def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder``, sorted; regular files only (a FIFO or device named
    x.png would block the reader forever)."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _folder(path: Path, size: int, classes: list[str] | None = None) -> tuple[ImageSet, list[str]]:
    if not path.is_dir():
        raise CadcamInputError(f"data: folder {path} does not exist")
    found = sorted(p.name for p in path.iterdir() if p.is_dir())
    classes = classes or found
    if len(classes) < 2:
        raise CadcamInputError(f"data: {path} needs one sub-folder per class (ImageFolder layout), found {found}")
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in image_files(path / name) if (path / name).is_dir() else []:
            images.append(read_image(file, size))
            labels.append(label)
    if not images:
        raise CadcamInputError(f"data: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {path}")
    return ImageSet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long)), classes


def _torchvision(name: str, root: Path, download: bool) -> tuple[ImageSet, ImageSet, list[str]]:
    import torchvision

    cls = {
        "mnist": torchvision.datasets.MNIST,
        "fashion-mnist": torchvision.datasets.FashionMNIST,
        "cifar10": torchvision.datasets.CIFAR10,
    }[name]
    sets = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=download)
        except RuntimeError as exc:
            raise CadcamInputError(
                f"data: {name} not found under {root} ({exc}). Put torchvision's files there, or pass "
                "`cadcam train ... --download` to fetch them (needs network)."
            ) from exc
        data = torch.as_tensor(np.asarray(ds.data))
        data = data.permute(0, 3, 1, 2) if data.dim() == 4 else data.unsqueeze(1)
        sets.append(
            ImageSet(data.to(torch.uint8).contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long))
        )
    return sets[0], sets[1], list(ds.classes)


def _npz_headers(file: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of an ``.npz``, read from the .npy headers (nothing is unpacked)."""
    headers = {}
    try:
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(fh)
                headers[info.filename.removesuffix(".npy")] = (tuple(shape), np.dtype(dtype))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CadcamInputError(f"data: {file} is not a readable .npz file ({exc})") from exc
    return headers


def _medmnist(file: Path) -> tuple[ImageSet, ImageSet, ImageSet, list[str]]:
    if not file.is_file():
        raise CadcamInputError(f"data: MedMNIST file {file} does not exist")
    headers = _npz_headers(file)
    missing = {f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")} - set(headers)
    if missing:
        raise CadcamInputError(f"data: {file} is not a MedMNIST file; missing arrays {sorted(missing)}")
    total = sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in headers.values())
    if total > MAX_NPZ_BYTES:
        raise CadcamInputError(f"data: {file} unpacks to {total / 2**30:.1f} GiB, more than {MAX_NPZ_BYTES >> 30} GiB")
    for split in ("train", "val", "test"):
        (ishape, idtype), (lshape, ldtype) = headers[f"{split}_images"], headers[f"{split}_labels"]
        if idtype != np.uint8 or len(ishape) not in (3, 4) or (len(ishape) == 4 and ishape[-1] not in (1, 3)):
            raise CadcamInputError(
                f"data: {file}: {split}_images must be uint8 (N, H, W) or (N, H, W, 1|3), got {idtype} {ishape}"
            )
        if ldtype.kind not in "iu" or int(np.prod(lshape)) != ishape[0]:
            raise CadcamInputError(
                f"data: {file}: {split}_labels must hold one integer per image ({ishape[0]}), got {ldtype} {lshape}"
            )
    try:
        with np.load(file, allow_pickle=False) as npz:
            sets = []
            for split in ("train", "val", "test"):
                images = np.asarray(npz[f"{split}_images"])
                images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
                labels = np.asarray(npz[f"{split}_labels"]).reshape(-1).astype(np.int64)
                if len(labels) == 0:
                    raise CadcamInputError(f"data: {file}: {split} holds no images")
                if labels.min() < 0 or labels.max() >= MAX_CLASSES:
                    raise CadcamInputError(f"data: {file}: {split}_labels must lie in 0..{MAX_CLASSES - 1}")
                sets.append(ImageSet(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise CadcamInputError(f"data: {file}: an array cannot be read ({type(exc).__name__}: {exc})") from exc
    n_classes = int(max(int(s.labels.max()) for s in sets)) + 1
    return sets[0], sets[1], sets[2], [str(i) for i in range(n_classes)]


def load_data(source: str = "digits", seed: int = 0, image_size: int = 64, download: bool = False) -> DataSplits:
    """Load and split a data source (see the module docstring). ``image_size`` applies to folders."""
    kind, _, arg = source.partition(":")
    if kind == "digits":
        full, names = _digits()
        train, val, test = _split(full, seed, test=True)
    elif kind == "folder":
        root = Path(arg)
        if (root / "train").is_dir() and (root / "test").is_dir():
            full, names = _folder(root / "train", image_size)
            test, _ = _folder(root / "test", image_size, names)
            train, val, _ = _split(full, seed, test=False)
        else:
            full, names = _folder(root, image_size)
            train, val, test = _split(full, seed, test=True)
    elif kind in ("mnist", "fashion-mnist", "cifar10"):
        if not arg:
            raise CadcamInputError(f"data: {kind} needs a local root, e.g. {kind}:/data/{kind}")
        full, test, names = _torchvision(kind, Path(arg), download)
        train, val, _ = _split(full, seed, test=False)
    elif kind == "medmnist":
        train, val, test, names = _medmnist(Path(arg))
    else:
        raise CadcamInputError(
            f"data: unknown source {source!r}; expected digits, folder:PATH, mnist:ROOT, fashion-mnist:ROOT, "
            "cifar10:ROOT or medmnist:FILE.npz"
        )
    return DataSplits(train, val, test, names, source)
