"""A model-level entry point in the style of pytorch-grad-cam: a context-managed object called on images.

    with PCASVMGradCAM(model, target_layer=model.features, head=model.classifier,
                       pca=pca, pca_after=2, svm=svm) as cam:
        maps = cam(images)            # ImageMaps: upsampled to the images, normalised
        maps.raw                      # the CAMResult at feature resolution

The target layer's output is captured with a forward hook (removed on exit); ``head`` must be the
part of ``model`` after it. That is checked on every call: ``head(features)`` must reproduce
``model(images)``, otherwise the maps would explain a different network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import Tensor, nn

from cadcam_numeric.engine.explain import CAMResult, Method, explain, pca_layer_from_sklearn
from cadcam_numeric.engine.maps import normalise, normalise_pca_pair, upsample
from cadcam_numeric.engine.svm import SVMHead, parse_svm
from cadcam_numeric.errors import CadcamInputError

__all__ = ["ImageMaps", "PCASVMGradCAM"]


@dataclass(frozen=True)
class ImageMaps:
    """Maps at image resolution, in [0, 1]: Grad-CAM and SVM-Grad-CAM min–max per map, the PCA
    pairs on their shared ν_b scale (Eq. 12). ``raw`` keeps the unscaled feature-resolution result."""

    gradcam: Tensor
    pca_positive: Tensor | None
    pca_negative: Tensor | None
    svm: Tensor | None
    raw: CAMResult


class PCASVMGradCAM:
    """Grad-CAM, PCA-Grad-CAM and SVM-Grad-CAM for a whole model (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        target_layer: nn.Module,
        head: nn.Sequential,
        pca: object | None = None,
        pca_after: int | None = None,
        svm: object | None = None,
        *,
        method: Method = "grad-cam",
        channels_last: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not any(m is target_layer for m in model.modules()):
            raise CadcamInputError("target_layer: must be a submodule of model")
        self.model, self.target_layer, self.head = model, target_layer, head
        # read the fitted estimators into tensors once, not on every call (validated here too)
        like = torch.zeros((), dtype=torch.float64)
        self.pca = pca_layer_from_sklearn(pca, pca.components_.shape[1], like) if isinstance(pca, PCA) else pca
        self.svm = parse_svm(svm, like) if svm is not None and not isinstance(svm, SVMHead) else svm
        self.pca_after = pca_after
        self.method, self.channels_last, self.dtype = method, channels_last, dtype
        self._handle = None
        self._features: Tensor | None = None

    def __enter__(self) -> PCASVMGradCAM:
        self._handle = self.target_layer.register_forward_hook(self._capture)
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

    def __call__(self, input_tensor: Tensor, targets: Sequence[int] | Tensor | np.ndarray | None = None) -> ImageMaps:
        if not isinstance(input_tensor, Tensor) or input_tensor.dim() != 4:
            raise CadcamInputError("input_tensor: expected a (N, C, H, W) image tensor")
        owns_hook = self._handle is None
        if owns_hook:
            self.__enter__()
        try:
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                output = self.model(input_tensor)
                features = self._features
                if features is None:
                    raise CadcamInputError("target_layer: was not called during model(input_tensor)")
                reproduced = self.head(features)
            if was_training:
                self.model.train()
        finally:
            if owns_hook:
                self.release()
        if reproduced.shape != output.shape or not torch.allclose(reproduced, output, rtol=1e-4, atol=1e-5):
            raise CadcamInputError(
                "head: head(target_layer output) does not reproduce model(input_tensor); "
                "head must be exactly the part of the model after target_layer"
            )
        raw = explain(
            features,
            self.head,
            self.pca,
            self.pca_after,
            self.svm,
            targets,
            method=self.method,
            channels_last=self.channels_last,
            dtype=self.dtype,
        )
        size = tuple(input_tensor.shape[-2:])
        pos = neg = svm_map = None
        if raw.pca_positive is not None:
            pos, neg = normalise_pca_pair(upsample(raw.pca_positive, size), upsample(raw.pca_negative, size))
        if raw.svm is not None:
            svm_map = normalise(upsample(raw.svm, size))
        return ImageMaps(normalise(upsample(raw.gradcam, size)), pos, neg, svm_map, raw)
