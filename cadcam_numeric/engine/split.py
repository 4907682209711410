"""Split a torchvision classifier into (feature extractor, head) so that the head starts at the
target layer of every map: ``head(backbone(x))`` computes ``model(x)``.

Each family's ``forward`` is followed exactly, with what it does in functional form made a module
(DenseNet's ``F.relu`` before pooling becomes ``nn.ReLU`` at the end of the backbone;
``x.mean([2, 3])`` and ``adaptive_avg_pool2d(x, 1)`` become ``nn.AdaptiveAvgPool2d(1)``;
GoogLeNet's input transform becomes a module). The backbone and head share the model's modules
(no copies): the model's weights are the split's. Families are recognised by their torchvision
type, so a model built with other class counts or widths splits too, and every split is checked
against ``model(x)`` on a random image before it is returned.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from cadcam_numeric.engine.modes import eval_mode
from cadcam_numeric.engine.split_vit import split_vision_transformer, vision_transformer_kind
from cadcam_numeric.errors import CadcamInputError

__all__ = ["PROBE_SIZE", "SPLIT_FAMILIES", "reproduces", "split_classifier"]


class _GoogLeNetInput(nn.Module):
    """GoogLeNet's ``_transform_input`` (ImageNet normalisation re-done) as a module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.enabled = bool(getattr(model, "transform_input", False))
        self._transform = model._transform_input

    def forward(self, x: Tensor) -> Tensor:
        return self._transform(x) if self.enabled else x


def _sequential(*modules: nn.Module | None) -> nn.Sequential:
    return nn.Sequential(*(m for m in modules if m is not None))


def _classifier(module: nn.Module) -> list[nn.Module]:
    return list(module) if isinstance(module, nn.Sequential) else [module]


def _vgg_alexnet(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    return m.features, _sequential(m.avgpool, nn.Flatten(), *_classifier(m.classifier))


def _resnet(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    backbone = _sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4)
    return backbone, _sequential(m.avgpool, nn.Flatten(), m.fc)


def _densenet(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    # forward: relu(features(x)) -> adaptive_avg_pool2d(., 1) -> flatten -> classifier
    return _sequential(m.features, nn.ReLU()), _sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), m.classifier)


def _efficientnet_mobilenet_v3(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    return m.features, _sequential(m.avgpool, nn.Flatten(), *_classifier(m.classifier))


def _mobilenet_v2(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    return m.features, _sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *_classifier(m.classifier))


def _regnet(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    return _sequential(m.stem, m.trunk_output), _sequential(m.avgpool, nn.Flatten(), m.fc)


def _googlenet(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    if m.training:
        raise CadcamInputError("model: GoogLeNet must be in eval mode (in training it returns auxiliary outputs)")
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3"]
    names += ["inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4"]
    names += ["inception5a", "inception5b"]
    backbone = _sequential(_GoogLeNetInput(m), *(getattr(m, n) for n in names))
    return backbone, _sequential(m.avgpool, nn.Flatten(), m.dropout, m.fc)


def _shufflenet(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    backbone = _sequential(m.conv1, m.maxpool, m.stage2, m.stage3, m.stage4, m.conv5)
    return backbone, _sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), m.fc)  # forward: x.mean([2, 3])


def _mnasnet(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    return m.layers, _sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *_classifier(m.classifier))


def _convnext(m: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    raise CadcamInputError(
        f"model: {type(m).__name__} (ConvNeXt) ends in LayerNorm2d -> Flatten -> Linear, and cadcam's "
        "closed form has no LayerNorm block yet; pass a feature extractor and a head of the accepted "
        "layers yourself (`cadcam accepted`)"
    )


def _is_torchvision(model: nn.Module, class_name: str) -> bool:
    """Whether ``model`` is an instance of ``torchvision.models``' class ``class_name`` (a subclass
    too), read from its type's MRO, so that the engine never imports torchvision."""
    return any(c.__name__ == class_name and c.__module__.startswith("torchvision.models") for c in type(model).__mro__)


#: (family, torchvision class name, splitter): a model is recognised by its type (a subclass too,
#: then checked on a probe input: its forward must still be the family's)
SPLIT_FAMILIES: tuple[tuple[str, str, Callable], ...] = (
    ("googlenet", "GoogLeNet", _googlenet),
    ("resnet / resnext / wide_resnet", "ResNet", _resnet),
    ("regnet", "RegNet", _regnet),
    ("shufflenet_v2", "ShuffleNetV2", _shufflenet),
    ("mnasnet", "MNASNet", _mnasnet),
    ("densenet", "DenseNet", _densenet),
    ("mobilenet_v2", "MobileNetV2", _mobilenet_v2),
    ("efficientnet", "EfficientNet", _efficientnet_mobilenet_v3),
    ("mobilenet_v3", "MobileNetV3", _efficientnet_mobilenet_v3),
    ("vgg", "VGG", _vgg_alexnet),
    ("alexnet", "AlexNet", _vgg_alexnet),
    ("convnext (refused: LayerNorm2d head)", "ConvNeXt", _convnext),
)

#: the side of the random image the split is checked on
PROBE_SIZE = 64


def reproduces(reproduced: Tensor, output: object, rtol: float = 1e-4) -> bool:
    """Whether ``reproduced`` equals ``output`` up to ``rtol`` of the output's own scale:
    ``max |reproduced - output| <= rtol * max |output|`` (plus the dtype's smallest normal number), so
    that heads are told apart also when the logits are tiny (an untrained efficientnet_b0's are near
    3e-14, below any fixed absolute tolerance).

    >>> reproduces(torch.tensor([1e-14, 2e-14]), torch.tensor([1e-14, 2e-14]))
    True
    >>> reproduces(torch.tensor([1e-14, 2e-14]), torch.tensor([1e-14, 3e-14]))
    False
    """
    if not isinstance(output, Tensor) or reproduced.shape != output.shape or not output.is_floating_point():
        return False
    scale = output.abs().max() if output.numel() else output.new_zeros(())
    error = (reproduced - output).abs().max() if output.numel() else output.new_zeros(())
    return bool(error <= rtol * scale + torch.finfo(output.dtype).tiny)


def _probe_size(model: nn.Module, kind: str) -> int:
    """A ViT takes images of its own size only (its position embedding fixes the grid)."""
    if kind == "timm":
        return int(model.patch_embed.img_size[0])
    return int(model.image_size)


def _check_on_probe(model: nn.Module, backbone: nn.Module, head: nn.Module, size: int = 0) -> None:
    """``head(backbone(x))`` must be ``model(x)`` on a random image (each module's mode kept)."""
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    device = parameter.device if parameter is not None else torch.device("cpu")
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    channels = conv.in_channels if conv is not None else 3  # a 1-channel conv1 (MNIST) gets 1 channel
    size = size or PROBE_SIZE
    x = torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    try:
        with eval_mode(model), torch.no_grad():
            expected = model(x)
            actual = head(backbone(x))
    except Exception as exc:  # whatever a user's forward raises on the probe: refused by name
        raise CadcamInputError(
            f"model: {type(model).__name__} could not be checked on a {size}x{size} image "
            f"({str(exc).splitlines()[0][:200]}); pass target_layer and head yourself"
        ) from exc
    if not reproduces(actual, expected):
        gap = (
            float((actual - expected).abs().max())
            if isinstance(expected, Tensor) and actual.shape == expected.shape
            else None
        )
        detail = f"max |difference| {gap:.3g}" if gap is not None else "another output shape or type"
        raise CadcamInputError(
            f"model: {type(model).__name__}'s forward is not its family's: head(backbone(x)) does not reproduce "
            f"model(x) ({detail}); pass target_layer and head yourself"
        )


def split_classifier(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """``(backbone, head)`` of a torchvision classifier, ``head(backbone(x)) == model(x)``.

    Families: vgg*, resnet*/resnext*/wide_resnet*, densenet*, efficientnet_b*, efficientnet_v2_*,
    mobilenet_v2, mobilenet_v3_*, regnet_*, alexnet, googlenet (eval), shufflenet_v2_*, mnasnet*,
    recognised by type (ConvNeXt is refused by name: its head holds a LayerNorm2d). The backbone's
    output is the target layer (the last convolutional block); the head is ``pooling → Flatten →
    classifier`` as the model's ``forward`` applies them. Before returning, the split is checked on
    a random image (:data:`PROBE_SIZE`): a subclass whose ``forward`` differs is refused.

    Vision transformers (timm and torchvision ``VisionTransformer``) split at their last block
    (:mod:`cadcam_numeric.engine.split_vit`): the backbone gives the tokens entering it (N, T, D), the
    head is a :class:`~cadcam_numeric.engine.split_vit.TransformerHead`.

    Examples:
        >>> import torchvision
        >>> backbone, head = split_classifier(torchvision.models.resnet18(num_classes=3))
        >>> [type(m).__name__ for m in head]
        ['AdaptiveAvgPool2d', 'Flatten', 'Linear']
    """
    if not isinstance(model, nn.Module):
        raise CadcamInputError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    kind = vision_transformer_kind(model)
    if kind is not None:
        backbone, head = split_vision_transformer(model, kind)
        _check_on_probe(model, backbone, head, _probe_size(model, kind))
        return backbone, head
    for _, type_name, split in SPLIT_FAMILIES:
        if _is_torchvision(model, type_name):
            backbone, head = split(model)
            _check_on_probe(model, backbone, head)
            return backbone, head
    families = ", ".join(name for name, _, _ in SPLIT_FAMILIES[:-1])
    raise CadcamInputError(
        f"model: {type(model).__name__} is not a torchvision classifier cadcam can split ({families}); "
        "pass the feature extractor and the head yourself"
    )
