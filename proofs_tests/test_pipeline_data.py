"""Data sources made locally (digits, ImageFolder, MNIST-format idx files, MedMNIST npz) and backbones."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.backbones import build_backbone
from cadcam_numeric.pipeline.data import load_data, to_model_input


def make_folder(root: Path, classes=("cat", "dog"), per_class=6, size=20) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            arr = (rng.random((size, size, 3)) * 80 + 120 * c).astype(np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0803 if array.ndim == 3 else 0x0801
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        fh.write(array.astype(np.uint8).tobytes())


def make_mnist(root: Path, name: str = "MNIST", n_train: int = 40, n_test: int = 10) -> Path:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


def test_digits_default_split():
    d = load_data("digits", seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (1149, 288, 360)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape[1:] == (1, 8, 8)
    counts = np.bincount(d.test.labels.numpy(), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # stratified
    again = load_data("digits", seed=0)
    assert torch.equal(d.train.labels, again.train.labels)


def test_image_folder_with_and_without_splits(tmp_path):
    flat = load_data(f"folder:{make_folder(tmp_path / 'flat')}", image_size=16)
    assert flat.class_names == ["cat", "dog"]
    assert len(flat.train) + len(flat.val) + len(flat.test) == 12
    assert flat.train.images.shape[1:] == (3, 16, 16)
    root = tmp_path / "split"
    make_folder(root / "train")
    make_folder(root / "test", per_class=2)
    split = load_data(f"folder:{root}", image_size=16)
    assert len(split.test) == 4 and len(split.train) + len(split.val) == 12


@pytest.mark.parametrize(("source", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_mnist_formats_from_local_files(tmp_path, source, folder):
    d = load_data(f"{source}:{make_mnist(tmp_path, folder)}")
    assert len(d.test) == 10 and len(d.train) + len(d.val) == 40
    assert d.train.images.shape[1:] == (1, 28, 28)


def test_medmnist_npz(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {}
    for split, n in (("train", 20), ("val", 6), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28, 3)).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3).reshape(-1, 1)
    np.savez(tmp_path / "path.npz", **arrays)
    d = load_data(f"medmnist:{tmp_path / 'path.npz'}")
    assert (len(d.train), len(d.val), len(d.test)) == (20, 6, 6)
    assert d.train.images.shape[1:] == (3, 28, 28) and d.class_names == ["0", "1", "2"]


def test_bad_data_sources(tmp_path):
    with pytest.raises(CadcamInputError, match="unknown source 'imagenet'"):
        load_data("imagenet")
    with pytest.raises(CadcamInputError, match="mnist not found under"):
        load_data(f"mnist:{tmp_path}")
    with pytest.raises(CadcamInputError, match="missing arrays"):
        np.savez(tmp_path / "bad.npz", x=np.zeros(3))
        load_data(f"medmnist:{tmp_path / 'bad.npz'}")
    with pytest.raises(CadcamInputError, match="does not exist"):
        load_data(f"folder:{tmp_path / 'none'}")


def test_model_input_is_normalised_rgb():
    x = to_model_input(torch.full((2, 1, 8, 8), 255, dtype=torch.uint8), 16)
    assert x.shape == (2, 3, 16, 16)
    torch.testing.assert_close(
        x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    )


def test_backbones_shapes_and_weights(tmp_path):
    small = build_backbone("small_vgg")
    assert small.features(torch.zeros(1, 3, 32, 32)).shape == (1, 32, 8, 8)
    conv = build_backbone("small_vgg", "conv")
    assert conv.head_pooling and conv.features(torch.zeros(1, 3, 32, 32)).shape == (1, 32, 16, 16)
    with pytest.raises(CadcamInputError, match="no VGG16 ImageNet weights"):
        build_backbone("vgg16", weights=tmp_path / "missing.pth")
    vgg = build_backbone("vgg16", random_weights=True, input_size=64)
    assert vgg.feature_size == 2 and vgg.channels == 512 and "random" in vgg.weights_source
    assert all(not p.requires_grad for p in vgg.features.parameters())
    # a weights file in torchvision's state-dict layout is loaded and fingerprinted
    state = {f"features.{k}": v for k, v in vgg.features.state_dict().items()}
    torch.save(state, tmp_path / "vgg16.pth")
    loaded = build_backbone("vgg16", "conv", weights=tmp_path / "vgg16.pth", input_size=64)
    assert loaded.weights_sha256 and loaded.head_pooling and loaded.feature_size == 4
    # a file that would need code execution to unpickle is refused
    torch.save({"evil": object()}, tmp_path / "evil.pth", _use_new_zipfile_serialization=True)
    with pytest.raises(CadcamInputError, match="not a plain tensor state dict"):
        build_backbone("vgg16", weights=tmp_path / "evil.pth", input_size=64)
