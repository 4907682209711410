"""``ExplainingModel``: a feature extractor and a :class:`~cadcam_numeric.engine.closed_form.ClosedForm`
as one module, images in, logits and every map out, at feature resolution and at the image's
(scaled as :class:`~cadcam_numeric.engine.model_cam.ImageMaps` scales them). One graph: it exports
as ``ClosedForm`` does.
"""

from __future__ import annotations

from torch import Tensor, nn

from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.maps import normalise, normalise_pca_pair, upsample
from cadcam_numeric.errors import CadcamInputError

__all__ = ["ExplainingModel", "image_maps"]


def image_maps(maps: dict[str, Tensor], size: tuple[int, int]) -> dict[str, Tensor]:
    """The image-resolution maps of a closed form's outputs: ``image_gradcam``, ``image_pca_positive``,
    ``image_pca_negative`` and ``image_svm`` where their feature-resolution maps are in ``maps``.

    Args:
        maps: a :class:`ClosedForm`'s outputs (``gradcam`` (N, h, w), ``pca_*`` (N, B, h, w), ``svm`` (N, h, w)).
        size: (H, W) to upsample to (bilinear).

    Returns:
        The image maps, each (N, H, W) or (N, B, H, W) in [0, 1]: Grad-CAM and SVM-Grad-CAM min–max
        per map, each PCA pair on its shared ν_b (Eq. 12).
    """
    out: dict[str, Tensor] = {}
    if "gradcam" in maps:
        out["image_gradcam"] = normalise(upsample(maps["gradcam"], size))
    if "pca_positive" in maps:
        pair = normalise_pca_pair(upsample(maps["pca_positive"], size), upsample(maps["pca_negative"], size))
        out["image_pca_positive"], out["image_pca_negative"] = pair
    if "svm" in maps:
        out["image_svm"] = normalise(upsample(maps["svm"], size))
    return out


class ExplainingModel(nn.Module):
    """``images (N, C, H, W) -> dict``: ``closed_form(backbone(images))``'s keys plus ``image_gradcam``,
    ``image_pca_positive``, ``image_pca_negative`` and ``image_svm`` where they apply, upsampled
    bilinearly to (H, W); Grad-CAM and SVM-Grad-CAM min–max per map, each PCA pair on its shared
    ν_b (Eq. 12).

    >>> import torch
    >>> from torch import nn
    >>> backbone = nn.Conv2d(3, 4, 3, padding=1)
    >>> head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> with torch.no_grad():
    ...     out = ExplainingModel(backbone, ClosedForm(head))(torch.rand(2, 3, 8, 8))
    >>> tuple(out["image_gradcam"].shape), float(out["image_gradcam"].max()) <= 1.0
    ((2, 8, 8), True)
    """

    def __init__(self, backbone: nn.Module, closed_form: ClosedForm) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise CadcamInputError(f"backbone: expected a torch.nn.Module, got {type(backbone).__name__}")
        if not isinstance(closed_form, ClosedForm):
            raise CadcamInputError(f"closed_form: expected a ClosedForm, got {type(closed_form).__name__}")
        self.backbone, self.closed_form = backbone, closed_form

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """images (N, C, H, W) -> the closed form's outputs and every map upsampled to (H, W), in [0, 1]."""
        if images.dim() != 4:
            raise CadcamInputError(f"images: expected (N, C, H, W), got shape {tuple(images.shape)}")
        out = dict(self.closed_form(self.backbone(images)))  # cf's keys first, in cf's order
        return {**out, **image_maps(out, (int(images.shape[-2]), int(images.shape[-1])))}
