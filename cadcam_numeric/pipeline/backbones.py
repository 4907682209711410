"""Backbones: torchvision's VGG16 (frozen, the paper's) and a small VGG-style CNN (trained end to end).

Feature layers (``feature_layer``):

* ``pool`` — the last pooling output (VGG16 at 200 px: 512×6×6, the paper's maps);
* ``conv`` — the last convolution's ReLU output (VGG16: conv5_3, 512×12×12); the last pooling
  moves into the head as ``MaxPool2d(2)``, which the engine differentiates in closed form.

VGG16 weights come from ``weights=FILE`` (a torchvision state dict as ``.pth``, read with
``torch.load(weights_only=True)``, or ``.safetensors``) or torchvision's own cache
(``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``). Nothing is downloaded: when no weights are
found the loader says so and stops, unless random weights were asked for explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cadcam_numeric.atomic import file_sha256
from cadcam_numeric.engine.model_cam import SplitModel
from cadcam_numeric.errors import CadcamInputError

__all__ = ["CNN", "Backbone", "build_backbone", "feature_shape", "small_vgg", "vgg16_features"]

VGG16_FILE = "vgg16-397923af.pth"


@dataclass
class Backbone:
    """Feature extractor plus what the head needs to know about its output."""

    name: str
    features: nn.Sequential
    channels: int
    feature_size: int  # M = N' of the feature maps
    head_pooling: bool  # whether the head starts with MaxPool2d(2)
    input_size: int
    trainable: bool
    weights_source: str
    weights_sha256: str | None = None


#: ``head(backbone(x))``: the backbone's output is the target layer of every map (the engine's
#: split model; the pipeline's CNNs are built split).
CNN = SplitModel


def small_vgg(feature_layer: str = "pool", input_size: int = 32) -> Backbone:
    """Two VGG blocks (3→16→16, pool, 16→32→32, pool): 32×(S/4)×(S/4) features, trained end to end."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
    ]
    if input_size % 4:
        raise CadcamInputError(f"input_size: the small backbone needs a multiple of 4, got {input_size}")
    size = feature_shape("small_vgg", feature_layer, input_size)[1]
    if feature_layer == "pool":
        layers.append(nn.MaxPool2d(2))
    return Backbone(
        "small_vgg", nn.Sequential(*layers), 32, size, feature_layer == "conv", input_size, True, "trained end to end"
    )


def feature_shape(name: str, feature_layer: str, input_size: int) -> tuple[int, int, int]:
    """(T, M, N′) of the feature maps, by arithmetic on the architecture (nothing is built):
    each 2×2 max-pool floors the side to half; 3×3 convolutions with padding 1 keep it."""
    if feature_layer not in ("pool", "conv"):
        raise CadcamInputError(f"feature_layer: expected 'pool' or 'conv', got {feature_layer!r}")
    pools = {"small_vgg": 2, "vgg16": 5}.get(name)
    if pools is None:
        raise CadcamInputError(f"backbone: expected 'small_vgg' or 'vgg16', got {name!r}")
    side = input_size
    for _ in range(pools - (feature_layer == "conv")):
        side //= 2
    if side < 1:
        raise CadcamInputError(f"input_size: {input_size} px is too small for {name}'s {pools} poolings")
    return (32 if name == "small_vgg" else 512, side, side)


def _torch_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: never runs code
    except Exception as exc:  # UnpicklingError for anything but tensors, RuntimeError for non-torch files
        raise CadcamInputError(f"weights: {path} is not a plain tensor state dict ({type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise CadcamInputError(f"weights: {path} does not hold a state dict")
    return state


def vgg16_features(
    feature_layer: str = "pool",
    weights: str | Path | None = None,
    random_weights: bool = False,
    input_size: int = 200,
    seed: int = 0,
) -> Backbone:
    """torchvision's VGG16 convolutional layers, frozen, up to the chosen feature layer."""
    import torchvision

    if feature_layer not in ("pool", "conv"):
        raise CadcamInputError(f"feature_layer: expected 'pool' or 'conv', got {feature_layer!r}")
    torch.manual_seed(seed)
    model = torchvision.models.vgg16(weights=None)
    sha = None
    if random_weights:
        source = f"random (seed {seed}), asked for explicitly"
    else:
        path = Path(weights) if weights is not None else _torch_cache_file()
        if not path.is_file():
            raise CadcamInputError(
                f"weights: no VGG16 ImageNet weights at {path}. Put torchvision's {VGG16_FILE} in "
                f"{_torch_cache_file().parent} (torchvision's cache), pass --weights FILE, or pass "
                "--random-weights to run with untrained convolutions (maps will not be meaningful)."
            )
        state = _read_state_dict(path)
        feats = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        try:
            model.features.load_state_dict(feats)
        except RuntimeError as exc:
            raise CadcamInputError(f"weights: {path} is not a VGG16 state dict: {exc}") from exc
        source, sha = str(path), file_sha256(path)
    layers = list(model.features)
    if feature_layer == "conv":
        layers = layers[:-1]  # drop pool5; the head gets MaxPool2d(2)
    features = nn.Sequential(*layers).eval()
    for p in features.parameters():
        p.requires_grad_(False)
    size = feature_shape("vgg16", feature_layer, input_size)[1]
    return Backbone("vgg16", features, 512, size, feature_layer == "conv", input_size, False, source, sha)


def build_backbone(
    name: str,
    feature_layer: str = "pool",
    weights: str | Path | None = None,
    random_weights: bool = False,
    input_size: int | None = None,
    seed: int = 0,
) -> Backbone:
    """``small_vgg`` (default input 32 px) or ``vgg16`` (default input 200 px, the paper's)."""
    if name == "small_vgg":
        torch.manual_seed(seed)
        return small_vgg(feature_layer, input_size or 32)
    if name == "vgg16":
        return vgg16_features(feature_layer, weights, random_weights, input_size or 200, seed)
    raise CadcamInputError(f"backbone: expected 'small_vgg' or 'vgg16', got {name!r}")
