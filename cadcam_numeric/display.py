"""Drawing a map over its image (matplotlib's colormaps; kept out of the engine, which needs no plotting)."""

from __future__ import annotations

import numpy as np

from cadcam_numeric.errors import CadcamInputError

__all__ = ["overlay"]


def overlay(image: np.ndarray, cam: np.ndarray, colormap: str = "jet", alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] map (H, W) over an RGB image (H, W, 3) in [0, 1]: (1 − α)·image + α·colormap(cam)."""
    import matplotlib  # imported on use: plotting is optional for the maps themselves

    image = np.asarray(image, dtype=np.float64)
    cam = np.asarray(cam, dtype=np.float64)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise CadcamInputError(f"image: expected (H, W, 3) or (H, W), got shape {image.shape}")
    if cam.shape != image.shape[:2]:
        raise CadcamInputError(f"cam: shape {cam.shape} must equal the image's (H, W) = {image.shape[:2]}")
    if image.min() < 0 or image.max() > 1 or cam.min() < 0 or cam.max() > 1:
        raise CadcamInputError("image and cam: expected values in [0, 1] (normalise the map first)")
    if not 0 <= alpha <= 1:
        raise CadcamInputError(f"alpha: expected a value in [0, 1], got {alpha}")
    colours = matplotlib.colormaps[colormap](cam)[..., :3]
    return (1 - alpha) * image + alpha * colours
