"""A model-level entry point in the style of pytorch-grad-cam: a context-managed object called on images.

    with PCASVMGradCAM(model, target_layer=model.features, head=model.classifier,
                       pca=pca, pca_after=2, svm=svm) as cam:
        maps = cam(images)            # ImageMaps: upsampled to the images, normalised
        maps.raw                      # the CAMResult at feature resolution

The target layer's output is captured with a forward hook (removed on exit). ``head`` is the part
of ``model`` after it. When ``target_layer`` and ``head`` are both direct children of ``model``
with children between them (torchvision's VGG: ``features → avgpool → flatten → classifier``;
ResNet: ``layer4 → avgpool → flatten → fc``), the head explained is those children, a ``Flatten``
and ``head``, in registration order. Either way it is checked on every call: the head must
reproduce ``model(images)`` from the captured features, otherwise the maps would explain a
different network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.explain import CAMResult, Method, explain
from cadcam_numeric.engine.maps import normalise, normalise_pca_pair, upsample
from cadcam_numeric.engine.modes import eval_mode
from cadcam_numeric.engine.pca import pca_layer_from_sklearn
from cadcam_numeric.engine.split import reproduces, split_classifier
from cadcam_numeric.engine.split_vit import TransformerHead
from cadcam_numeric.engine.svm import SVMHead
from cadcam_numeric.errors import CadcamInputError

__all__ = ["ImageMaps", "PCASVMGradCAM", "SplitModel", "compose_head", "eval_mode"]


@dataclass(frozen=True)
class ImageMaps:
    """Maps at image resolution, in [0, 1]: Grad-CAM and SVM-Grad-CAM min–max per map, the PCA
    pairs on their shared ν_b scale (Eq. 12). ``raw`` keeps the unscaled feature-resolution result.
    ``gradcam`` is None for a head without a class output (no ``Linear``)."""

    gradcam: Tensor | None
    pca_positive: Tensor | None
    pca_negative: Tensor | None
    svm: Tensor | None
    raw: CAMResult


class SplitModel(nn.Module):
    """``head(backbone(x))``: a split classifier as one model (the same modules, no copies)."""

    def __init__(self, backbone: nn.Module, head: nn.Sequential) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: Tensor) -> Tensor:
        """head(backbone(x))."""
        return self.head(self.backbone(x))


def compose_head(model: nn.Module, target_layer: nn.Module, head: nn.Module) -> nn.Module:
    """The part of ``model`` after ``target_layer`` that ends in ``head`` (module docstring).

    Returns ``head`` itself unless both are direct children of ``model``, in that order, with
    children between them or a head that starts with a ``Linear`` (the model flattens in its
    ``forward``); then ``nn.Sequential(*between, nn.Flatten(), *head)``. The result is checked
    against the model on every call.
    """
    children = list(model.children())
    index = {id(c): i for i, c in enumerate(children)}
    if id(target_layer) not in index or id(head) not in index:
        return head
    first, last = index[id(target_layer)], index[id(head)]
    tail = list(head) if isinstance(head, nn.Sequential) else [head]
    between = children[first + 1 : last]
    needs_flatten = bool(tail) and isinstance(tail[0], nn.Linear)  # the model flattens in forward()
    if last <= first or not (between or needs_flatten):
        return head
    return nn.Sequential(*between, *([nn.Flatten()] if not isinstance(tail[0], nn.Flatten) else []), *tail)


def _target_in_model(model: nn.Module, backbone: nn.Module) -> tuple[nn.Module, nn.Module | None]:
    """The submodule of ``model`` whose output the split's ``backbone`` ends with, and the modules
    the split adds after it (None when none): DenseNet's backbone is ``features`` then a ReLU that
    its forward applies functionally."""
    own = {id(m) for m in model.modules()}
    if id(backbone) in own or not isinstance(backbone, nn.Sequential):
        return backbone, None
    last = max((i for i, m in enumerate(backbone) if id(m) in own), default=None)
    if last is None:
        raise CadcamInputError(f"model: the split of {type(model).__name__} shares no module with it")
    rest = list(backbone)[last + 1 :]
    return backbone[last], (nn.Sequential(*rest) if rest else None)


class PCASVMGradCAM:
    """Grad-CAM, PCA-Grad-CAM and SVM-Grad-CAM for a whole model (see the module docstring).

    Args:
        model: the CNN; put in eval mode for each call, every module's own mode restored after.
        target_layer: the submodule whose output are the feature maps F (N, T, M, N') — for a
            :class:`TransformerHead`, its last block or that block's norm1 (the block's input is captured).
        head: the part of ``model`` after ``target_layer`` (or its last child, see above), or the
            :class:`TransformerHead` of ``split_classifier(model)``.
        pca: as :func:`explain`.
        pca_after: as :func:`explain`.
        svm: as :func:`explain`.
        method: as :func:`explain`.
        channels_last: as :func:`explain`.
        dtype: as :func:`explain`.
        custom_activations: as :func:`explain`.
    """

    def __init__(
        self,
        model: nn.Module,
        target_layer: nn.Module,
        head: nn.Module,
        pca: object | None = None,
        pca_after: int | None = None,
        svm: object | None = None,
        *,
        method: Method = "grad-cam",
        channels_last: bool = False,
        dtype: torch.dtype | None = None,
        custom_activations: Mapping[str, ActivationCode] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise CadcamInputError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if not any(m is target_layer for m in model.modules()):
            raise CadcamInputError("target_layer: must be a submodule of model")
        if not isinstance(head, nn.Module):
            raise CadcamInputError(f"head: expected a torch.nn.Module, got {type(head).__name__}")
        self.model, self.target_layer = model, target_layer
        self.head = compose_head(model, target_layer, head)
        self._hooked = self._hook_point(self.head, target_layer)
        # read the fitted estimators into tensors once, not on every call (validated here too)
        like = torch.zeros((), dtype=torch.float64)
        self.pca = pca_layer_from_sklearn(pca, None, like) if pca is not None else None
        self.svm = parse_svm(svm, like) if svm is not None and not isinstance(svm, SVMHead) else svm
        self.pca_after = pca_after
        self.method, self.channels_last, self.dtype = method, channels_last, dtype
        self.custom_activations = custom_activations
        self._handle = None
        self._features: Tensor | None = None
        self._after_target: nn.Module | None = None  # modules the split puts after target_layer (DenseNet's ReLU)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        pca: object | None = None,
        pca_after: int | None = None,
        svm: object | None = None,
        **options: object,
    ) -> PCASVMGradCAM:
        """For a torchvision classifier: split it with :func:`split_classifier` (backbone = the last
        convolutional block, head = pooling → Flatten → classifier, sharing the model's weights)
        so that no head is rewritten by hand; for a timm or torchvision ViT, the target layer is the
        last block's norm1 (the tokens entering that block are captured). ``options``: the keyword
        arguments of the constructor. The maps explain ``model`` itself: its forward runs on every
        call and the head must reproduce its output (a subclass whose ``forward`` is not its
        family's is refused)."""
        backbone, head = split_classifier(model)  # checked against model(x) on a probe image
        if isinstance(head, TransformerHead):
            return cls(model, head.parts.norm1, head, pca, pca_after, svm, **options)
        target_layer, after_target = _target_in_model(model, backbone)
        cam = cls(model, target_layer, head, pca, pca_after, svm, **options)
        cam._after_target = after_target  # the user's model runs; its every call is checked again
        return cam

    @staticmethod
    def _hook_point(head: nn.Module, target_layer: nn.Module) -> nn.Module | None:
        """None: capture ``target_layer``'s output. For a :class:`TransformerHead`, the module whose
        *input* is captured — the tokens entering the last block, which ``head`` reads — given as that
        block or its ``norm1`` (the class maps' target layer)."""
        if not isinstance(head, TransformerHead):
            return None
        if target_layer is not head.block and target_layer is not head.parts.norm1:
            raise CadcamInputError(
                "target_layer: with a TransformerHead, expected its last block or that block's norm1 "
                "(timm blocks[-1].norm1, torchvision encoder.layers[-1].ln_1)"
            )
        return head.block

    def __enter__(self) -> PCASVMGradCAM:
        if self._hooked is None:
            self._handle = self.target_layer.register_forward_hook(self._capture)
        else:
            self._handle = self._hooked.register_forward_pre_hook(self._capture_input)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Remove the forward hook (done automatically when used as a context manager)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _capture(self, module: nn.Module, inputs: object, output: Tensor) -> None:
        self._features = output.detach()

    def _capture_input(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        self._features = inputs[0].detach()

    def _features_and_check(self, input_tensor: Tensor) -> Tensor:
        """Run the model, capture the target layer's output and check the head reproduces the model."""
        self._features = None
        with torch.no_grad():
            output = self.model(input_tensor)
            features = self._features
            if features is None:
                raise CadcamInputError("target_layer: was not called during model(input_tensor)")
            if self._after_target is not None:
                features = self._after_target(features)
            try:
                reproduced = self.head(features)
            except RuntimeError as exc:
                raise CadcamInputError(
                    f"head: does not fit the target layer's output of shape {tuple(features.shape)} "
                    f"({str(exc).splitlines()[0]}); head must be the part of the model after target_layer"
                ) from exc
        if not reproduces(reproduced, output):  # relative to the logits' own scale, also when they are tiny
            raise CadcamInputError(
                "head: head(target_layer output) does not reproduce model(input_tensor); "
                "head must be exactly the part of the model after target_layer"
            )
        return features

    def __call__(self, input_tensor: Tensor, targets: object = None, svm_targets: object = None) -> ImageMaps:
        """Maps for a batch of images (N, C, H, W); ``targets``/``svm_targets`` as :func:`explain`."""
        if not isinstance(input_tensor, Tensor) or input_tensor.dim() != 4:
            raise CadcamInputError("input_tensor: expected a (N, C, H, W) image tensor")
        owns_hook = self._handle is None
        if owns_hook:
            self.__enter__()
        try:
            with eval_mode(self.model), eval_mode(self.head):
                features = self._features_and_check(input_tensor)
                raw = explain(
                    features,
                    self.head,
                    self.pca,
                    self.pca_after,
                    self.svm,
                    targets,
                    svm_targets,
                    method=self.method,
                    channels_last=self.channels_last,
                    dtype=self.dtype,
                    custom_activations=self.custom_activations,
                )
        finally:
            if owns_hook:
                self.release()
        size = tuple(input_tensor.shape[-2:])
        pos = neg = svm_map = None
        if raw.pca_positive is not None:
            pos, neg = normalise_pca_pair(upsample(raw.pca_positive, size), upsample(raw.pca_negative, size))
        if raw.svm is not None:
            svm_map = normalise(upsample(raw.svm, size))
        gradcam = None if raw.gradcam is None else normalise(upsample(raw.gradcam, size))
        return ImageMaps(gradcam, pos, neg, svm_map, raw)
