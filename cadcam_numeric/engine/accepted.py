"""What ``explain`` accepts, as one table built from the tuples the engine's readers test against.

The README's table of accepted estimators and layers is :func:`accepted_table` (``cadcam accepted``
prints it; a test holds the README equal to it), so it cannot drift from what the code accepts.
Each row states what the map of that estimator explains.
"""

from __future__ import annotations

from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.pipeline import Pipeline

from cadcam_numeric.engine.activation_modules import supported_activation_modules
from cadcam_numeric.engine.pca import KERNEL_PCA_KERNELS, LINEAR_PROJECTIONS, PREPROCESSORS, PROJECTIONS
from cadcam_numeric.engine.pooling import POOLING_TYPES
from cadcam_numeric.engine.svm import KERNEL_SVMS, LINEAR_CLASSIFIERS
from cadcam_numeric.generated import KERNELS

__all__ = ["accepted_rows", "accepted_table"]

_LINEAR_SCORE = {
    "LogisticRegression": "log-odds (binary) / the class's logit (multinomial, one-vs-rest)",
    "LinearDiscriminantAnalysis": "log-posterior up to a term shared by all classes",
}
_PREPROCESSOR_NOTES = {
    "Normalizer": "norm='l2': x/‖x‖",
    "MinMaxScaler": "clip=False",
}


def accepted_rows() -> list[tuple[str, str, str]]:
    """(argument, accepted, what the map explains / how it is read) for every accepted kind."""
    rows: list[tuple[str, str, str]] = []
    pooling = ", ".join(f"`{t.__name__}`" for t in POOLING_TYPES)
    rows.append(("head", f"optional {pooling}, `Flatten`, eval `Dropout`", "the layout of x"))
    rows.append(
        (
            "head",
            "`Linear` (+ eval `BatchNorm1d`, folded) with one of: "
            + ", ".join(f"`{m.rsplit('.', 1)[-1]}`" for m in supported_activation_modules()),
            "class output y_c (Grad-CAM)",
        )
    )
    rows.append(("head", "final `Softmax` / `LogSoftmax`", "that output: probability / log-probability"))
    rows.append(("head", "no `Linear` at all (with `pca_after=0`)", "no class map (`gradcam` is None)"))
    for cls in LINEAR_PROJECTIONS:
        rows.append(("pca", f"`{cls.__name__}`", "each score p_b = (Vᵀ(x − u))_b, ± (PCA-Grad-CAM)"))
    kernel_pca = [c for c in PROJECTIONS if c not in LINEAR_PROJECTIONS]
    for cls in kernel_pca:
        kernels = ", ".join(KERNEL_PCA_KERNELS)
        rows.append(("pca", f"`{cls.__name__}` (kernel {kernels})", "each kernel-PCA score, ±"))
    pre = ", ".join(
        f"`{c.__name__}`" + (f" ({_PREPROCESSOR_NOTES[c.__name__]})" if c.__name__ in _PREPROCESSOR_NOTES else "")
        for c in PREPROCESSORS
    )
    rows.append(("pca", f"`{Pipeline.__name__}` of {pre}, then one of the above", "the same scores"))
    kernels = ", ".join(sorted(KERNELS))
    for cls in KERNEL_SVMS:
        rows.append(("svm", f"`{cls.__name__}` (kernel {kernels})", "decision function, oriented to the class"))
    for cls in LINEAR_CLASSIFIERS:
        score = _LINEAR_SCORE.get(cls.__name__, "decision function w·z + b, oriented to the class")
        rows.append(("svm", f"`{cls.__name__}`", score))
    ovr = f"`{OneVsRestClassifier.__name__}` of those (or of a `{Pipeline.__name__}` of scalers then one of those"
    ovr += ": the scalers, equal in every estimator, are read once)"
    rows.append(("svm", ovr, "the class's own decision function"))
    rows.append(("svm", f"`{OneVsOneClassifier.__name__}` of those", "sum of pairwise decisions oriented to the class"))
    rows.append(
        (
            "svm",
            f"`{CalibratedClassifierCV.__name__}` (sigmoid, isotonic; its base binary, one-vs-rest or linear)",
            "log predict_proba of the class (isotonic: slope of its segment, 0 where flat)",
        )
    )
    rows.append(("svm", f"`{Pipeline.__name__}` of the scalers above, then one of those", "the same score"))
    searches = f"`{GridSearchCV.__name__}` / `{RandomizedSearchCV.__name__}`"
    rows.append(("svm", f"fitted {searches} of any of those", "its `best_estimator_`'s score"))
    rows.append(("pca, svm", f"`{FrozenEstimator.__name__}` of any of the above", "the wrapped estimator's"))
    return rows


def accepted_table() -> str:
    """The rows as a Markdown table."""
    lines = ["| argument | accepted | the map explains |", "|---|---|---|"]
    lines += [f"| `{arg}` | {what} | {explains} |" for arg, what, explains in accepted_rows()]
    return "\n".join(lines) + "\n"
