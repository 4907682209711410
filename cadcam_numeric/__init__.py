"""cadcam's numeric package: code generated from the SymPy derivations, and what runs on it.

Imports no SymPy. ``cadcam_numeric.generated`` holds the generated activations, kernels and
block Jacobians; :func:`explain` computes every map of a batch in closed form;
:class:`PCASVMGradCAM` wraps a whole model the way pytorch-grad-cam users expect.
"""

from cadcam_numeric.engine import CAMResult, explain
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import CATALOGUE_SHA256
from cadcam_numeric.maps import normalise, normalise_pca_pair, overlay, upsample
from cadcam_numeric.model_cam import ImageMaps, PCASVMGradCAM

__version__ = "0.1.0"

__all__ = [
    "CATALOGUE_SHA256",
    "CAMResult",
    "CadcamInputError",
    "ImageMaps",
    "PCASVMGradCAM",
    "__version__",
    "explain",
    "normalise",
    "normalise_pca_pair",
    "overlay",
    "upsample",
]
