"""The closed-form engine: every map of a batch from the generated blocks, no autograd.

Imports only torch, scikit-learn, :mod:`cadcam_numeric.generated`, :mod:`cadcam_numeric.errors` and
:mod:`cadcam_numeric.catalogue_types` (``proofs_tests/test_import_rules.py`` enforces it).
"""

from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.explain import (
    CAMResult,
    PositionGradients,
    TargetScores,
    explain,
    position_gradients,
    target_scores,
)
from cadcam_numeric.engine.explaining_model import ExplainingModel
from cadcam_numeric.engine.maps import normalise, normalise_pca_pair, upsample
from cadcam_numeric.engine.model_cam import ImageMaps, PCASVMGradCAM
from cadcam_numeric.engine.split import split_classifier

__all__ = [
    "CAMResult",
    "ClosedForm",
    "ExplainingModel",
    "ImageMaps",
    "PCASVMGradCAM",
    "PositionGradients",
    "TargetScores",
    "explain",
    "normalise",
    "normalise_pca_pair",
    "position_gradients",
    "split_classifier",
    "target_scores",
    "upsample",
]
