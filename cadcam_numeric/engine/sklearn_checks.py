"""Validation shared by every reader of a fitted scikit-learn estimator."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from cadcam_numeric.errors import CadcamInputError

__all__ = ["require_fitted"]


def require_fitted(estimator: object, argument: str) -> None:
    """Raise :class:`CadcamInputError` naming ``argument`` unless ``estimator`` is a fitted estimator."""
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise CadcamInputError(f"{argument}: {type(estimator).__name__} is not fitted; call .fit(...) first") from exc
    except TypeError as exc:
        raise CadcamInputError(f"{argument}: {type(estimator).__name__} is not a scikit-learn estimator") from exc
