"""cadcam's numeric package: code generated from the SymPy derivations, and what runs on it.

Imports no SymPy. Layout (one direction of data):

* ``generated/`` — printed by ``python -m derivations generate``; never edited by hand;
* ``engine/`` — :func:`explain` (every map of a batch in closed form), :class:`PCASVMGradCAM`
  (a whole model, the way pytorch-grad-cam users expect), the map helpers;
* ``methods/`` — :func:`eigen_cam`, :func:`eigen_grad_cam`, :func:`decom_cam`;
* ``verification/``, ``spec/``, ``pipeline/``, ``bench/`` and the CLI build on those.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cadcam_numeric.version import __version__

#: public name -> the module that defines it. Imported on first use (PEP 562), so that
#: ``import cadcam_numeric`` — and ``cadcam --help`` — load no torch until a name that needs it is used.
_EXPORTS = {
    "overlay": "cadcam_numeric.display",
    **dict.fromkeys(
        (
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
        ),
        "cadcam_numeric.engine",
    ),
    "CadcamInputError": "cadcam_numeric.errors",
    "Bundle": "cadcam_numeric.pipeline.bundle",
    "load_bundle": "cadcam_numeric.pipeline.bundle",
    "CATALOGUE_SHA256": "cadcam_numeric.generated",
    **dict.fromkeys(("DecomCAMResult", "decom_cam", "eigen_cam", "eigen_grad_cam"), "cadcam_numeric.methods"),
}

if TYPE_CHECKING:  # for type checkers and documentation tools: the same names, imported eagerly
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
    from cadcam_numeric.pipeline.bundle import Bundle, load_bundle


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cadcam_numeric' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "CATALOGUE_SHA256",
    "Bundle",
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
    "load_bundle",
    "normalise",
    "normalise_pca_pair",
    "overlay",
    "position_gradients",
    "split_classifier",
    "target_scores",
    "upsample",
]
