"""The one place that reads a fitted classifier for the maps: :func:`parse_svm` dispatches
``CalibratedClassifierCV`` to :mod:`cadcam_numeric.engine.calibrated` and every other kind to
:mod:`cadcam_numeric.engine.svm`, so neither of those imports the other.

Both readers give a :class:`ClassifierHead`: class scores a_c(p) (N, C), their gradients ∂a_c/∂p
(N, C, B), the predicted labels by the estimator's own ``predict`` rule (also as positions in
``classes``, in tensor algebra only), and the positions of labels in ``classes``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from torch import Tensor

from cadcam_numeric.engine.calibrated import CalibratedHead, parse_calibrated
from cadcam_numeric.engine.svm import (
    SVMHead,
    final_estimator,
    parse_decision_classifier,
    read_pipeline,
    unwrapped_search,
)

__all__ = ["ClassifierHead", "parse_svm"]


class ClassifierHead(Protocol):
    """What the engine asks of a classifier read from scikit-learn (``SVMHead``, ``CalibratedHead``)."""

    classes: np.ndarray
    n_features: int

    def class_scores(self, p: Tensor) -> Tensor:
        """The class scores a_c(p) the classifier predicts by: (N, B) -> (N, C)."""

    def class_score_gradients(self, p: Tensor) -> Tensor:
        """∂a_c/∂p for every class: (N, B) -> (N, C, B)."""

    def predict(self, p: Tensor) -> np.ndarray:
        """The predicted labels (scikit-learn's ``predict``): (N, B) -> (N,) labels."""

    def predicted_index(self, p: Tensor) -> Tensor:
        """The predicted class as an index into ``classes``: (N, B) -> (N,) int64."""

    def scores_index_gradients(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Scores (N, C), predicted index (N,) and gradients (N, C, B) in one pass."""

    def class_index(self, labels: np.ndarray | list, argument: str) -> Tensor:
        """Labels -> indices into ``classes``; a label it does not have is refused, naming ``argument``."""


def parse_svm(svm: object, like: Tensor) -> SVMHead | CalibratedHead:
    """Validate a fitted scikit-learn classifier on the PCA scores and read it, in ``like``'s dtype
    and device: a ``CalibratedClassifierCV`` (also after scalers in a ``Pipeline``, or inside a
    search) as a :class:`CalibratedHead`, every other accepted kind as an :class:`SVMHead`. A head
    already read (e.g. loaded from a bundle) is cast to ``like``.
    """
    if isinstance(svm, SVMHead | CalibratedHead):
        return svm.to(like)
    if isinstance(svm, GridSearchCV | RandomizedSearchCV | FrozenEstimator):
        return parse_svm(unwrapped_search(svm), like)
    if isinstance(final_estimator(svm), CalibratedClassifierCV):
        parts = read_pipeline(svm, like, fold_standard_scaler=False)
        calibrated = parse_calibrated(parts.estimator, like)
        width = int(getattr(svm, "n_features_in_", calibrated.n_features))
        return replace(calibrated, steps=parts.steps, n_features=width)
    return parse_decision_classifier(svm, like)
