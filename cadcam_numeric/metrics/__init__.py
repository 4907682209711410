"""Evaluation metrics of saliency maps, each on a batch of maps with a ``score(x, index)`` callable:

* :mod:`~cadcam_numeric.metrics.curves` — deletion/insertion AUC, pointing game, box localisation,
  the stratified protocol (the seed papers' evaluations);
* :mod:`~cadcam_numeric.metrics.road` — ROAD, remove and debias (noisy linear imputation);
* :mod:`~cadcam_numeric.metrics.confidence` — Average Drop and Increase in Confidence;
* :mod:`~cadcam_numeric.metrics.similarity` — Spearman rank correlation and SSIM between maps.
"""

from cadcam_numeric.metrics.confidence import average_drop_increase, confidence_changes
from cadcam_numeric.metrics.curves import (
    Curves,
    box_from_map,
    deletion_insertion,
    iou,
    localisation_hits,
    pointing_game,
    stratified_by_accuracy,
)
from cadcam_numeric.metrics.road import road, road_impute
from cadcam_numeric.metrics.similarity import rank_similarity, ssim

__all__ = [
    "Curves",
    "average_drop_increase",
    "box_from_map",
    "confidence_changes",
    "deletion_insertion",
    "iou",
    "localisation_hits",
    "pointing_game",
    "rank_similarity",
    "road",
    "road_impute",
    "ssim",
    "stratified_by_accuracy",
]
