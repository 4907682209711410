"""cadcam's numeric package: code generated from the SymPy derivations, and what runs on it.

Imports no SymPy. Layout (one direction of data):

* ``generated/`` — printed by ``python -m derivations generate``; never edited by hand;
* ``engine/`` — :func:`explain` (every map of a batch in closed form), :class:`PCASVMGradCAM`
  (a whole model, the way pytorch-grad-cam users expect), the map helpers;
* ``methods/`` — :func:`eigen_cam`, :func:`eigen_grad_cam`, :func:`decom_cam`;
* ``verification/``, ``spec/``, ``pipeline/``, ``bench/`` and the CLI build on those.
"""

from cadcam_numeric.display import overlay
from cadcam_numeric.engine import (
    CAMResult,
    ClosedForm,
    ExplainingModel,
    ImageMaps,
    PCASVMGradCAM,
    PositionGradients,
    TargetScores,
    explain,
    normalise,
    normalise_pca_pair,
    position_gradients,
    split_classifier,
    target_scores,
    upsample,
)
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import CATALOGUE_SHA256
from cadcam_numeric.methods import DecomCAMResult, decom_cam, eigen_cam, eigen_grad_cam

__version__ = "0.1.0"

__all__ = [
    "CATALOGUE_SHA256",
    "CAMResult",
    "CadcamInputError",
    "ClosedForm",
    "DecomCAMResult",
    "ExplainingModel",
    "ImageMaps",
    "PCASVMGradCAM",
    "PositionGradients",
    "TargetScores",
    "__version__",
    "decom_cam",
    "eigen_cam",
    "eigen_grad_cam",
    "explain",
    "normalise",
    "normalise_pca_pair",
    "overlay",
    "position_gradients",
    "split_classifier",
    "target_scores",
    "upsample",
]
