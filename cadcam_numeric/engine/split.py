"""Split a torchvision classifier into (feature extractor, head) so that the head starts at the
target layer of every map: ``head(backbone(x))`` computes ``model(x)``.

Each family's ``forward`` is followed exactly, with what it does in functional form made a module
(DenseNet's ``F.relu`` before pooling becomes ``nn.ReLU`` at the end of the backbone;
``x.mean([2, 3])`` and ``adaptive_avg_pool2d(x, 1)`` become ``nn.AdaptiveAvgPool2d(1)``;
GoogLeNet's input transform becomes a module). The backbone and head share the model's modules
(no copies): the model's weights are the split's. Families are recognised by their modules, not
by their names, so a model built by torchvision with other class counts or widths splits too.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from cadcam_numeric.errors import CadcamInputError

__all__ = ["SPLIT_FAMILIES", "split_classifier"]


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


def _has(*names: str) -> Callable[[nn.Module], bool]:
    return lambda m: all(hasattr(m, n) for n in names)


#: (family, recogniser, splitter), tried in order
SPLIT_FAMILIES: tuple[tuple[str, Callable[[nn.Module], bool], Callable], ...] = (
    ("googlenet", _has("inception5b", "fc"), _googlenet),
    ("resnet / resnext / wide_resnet", _has("layer4", "fc", "conv1"), _resnet),
    ("regnet", _has("stem", "trunk_output", "fc"), _regnet),
    ("shufflenet_v2", _has("stage4", "conv5", "fc"), _shufflenet),
    ("mnasnet", _has("layers", "classifier"), _mnasnet),
    ("densenet", lambda m: hasattr(m, "features") and hasattr(m.features, "denseblock1"), _densenet),
    ("mobilenet_v2", lambda m: type(m).__name__ == "MobileNetV2", _mobilenet_v2),
    ("efficientnet / mobilenet_v3", _has("features", "avgpool", "classifier"), _efficientnet_mobilenet_v3),
    ("vgg / alexnet", _has("features", "avgpool", "classifier"), _vgg_alexnet),
)


def split_classifier(model: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    """``(backbone, head)`` of a torchvision classifier, ``head(backbone(x)) == model(x)``.

    Families: vgg*, resnet*/resnext*/wide_resnet*, densenet*, efficientnet_b*, efficientnet_v2_*,
    mobilenet_v2, mobilenet_v3_*, regnet_*, alexnet, googlenet (eval), shufflenet_v2_*, mnasnet*.
    The backbone's output is the target layer (the last convolutional block); the head is
    ``pooling → Flatten → classifier`` as the model's ``forward`` applies them.
    """
    if not isinstance(model, nn.Module):
        raise CadcamInputError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    for _, recognise, split in SPLIT_FAMILIES:
        if recognise(model):
            return split(model)
    families = ", ".join(name for name, _, _ in SPLIT_FAMILIES)
    raise CadcamInputError(
        f"model: {type(model).__name__} is not a torchvision classifier cadcam can split ({families}); "
        "pass the feature extractor and the head yourself"
    )
