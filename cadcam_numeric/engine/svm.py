"""Read fitted scikit-learn SVMs into decision blocks the generated kernel code evaluates.

Supported: ``SVC`` and ``NuSVC`` (linear, poly, rbf, sigmoid; binary, or multi-class
one-vs-one), the linear classifiers (``LinearSVC``, ``LogisticRegression``, ``RidgeClassifier``,
``SGDClassifier``, ``Perceptron``, ``LinearDiscriminantAnalysis``), ``OneVsRestClassifier`` and
``OneVsOneClassifier`` of those, each optionally inside a ``Pipeline`` after scalers
(``StandardScaler``, ``RobustScaler``, ``MinMaxScaler``, ``MaxAbsScaler``, ``Normalizer(norm="l2")``),
and a fitted ``GridSearchCV``/``RandomizedSearchCV`` of any of them (its ``best_estimator_``).
``CalibratedClassifierCV`` is read by :mod:`cadcam_numeric.engine.calibrated`; the one place
that dispatches between the two is :func:`cadcam_numeric.engine.classifiers.parse_svm`.

The score each map explains is the estimator's ``decision_function``, oriented toward the
explained class: the SVM decision for SVC/NuSVC/LinearSVC; for ``LogisticRegression`` the
log-odds (binary) or the class's multinomial logit (whose softmax is ``predict_proba``); the
linear score w·z + b for the other linear classifiers (for LDA, the log-posterior up to a term
common to all classes). Every estimator becomes one or more decision blocks
d_k(p) = Σ_i D_{ki} K(s_i, z) + g_k on the (scaled) PCA scores z, and an orientation matrix O
(classes × decisions) gives the class scores a_c = Σ_k O_{ck} d_k (derivations/NOTES.md §2, convention):

* binary: a_{classes_[1]} = d, a_{classes_[0]} = −d;
* one-vs-rest (``LinearSVC`` with > 2 classes, ``OneVsRestClassifier``): a_c = d_c;
* one-vs-one (multi-class ``SVC``, ``OneVsOneClassifier``): a_c = Σ_{j≠c} o_{cj}, each pairwise
  decision oriented to c (for ``OneVsOneClassifier`` this is scikit-learn's sum of confidences).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC, NuSVC
from torch import Tensor

from cadcam_numeric.catalogue_types import KernelCode
from cadcam_numeric.engine.moves import moved
from cadcam_numeric.engine.pca import PREPROCESSORS, preprocessing_steps
from cadcam_numeric.engine.profile_kernel import ProfileKernel
from cadcam_numeric.engine.sklearn_checks import require_fitted
from cadcam_numeric.engine.transform import AffineStep, L2NormalizeStep, pull_back_steps, step_inputs
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import KERNELS

__all__ = [
    "DecisionBlock",
    "PipelineParts",
    "SVMHead",
    "final_estimator",
    "parse_decision_classifier",
    "read_pipeline",
    "unwrapped_search",
]

#: How scikit-learn turns decisions into a label (see ``SVMHead``).
Scheme = Literal["binary", "ovr", "ovo"]


@dataclass(frozen=True)
class DecisionBlock:
    """K decision functions sharing one kernel: d(z) = D K(S, z) + g, D (K, I), S (I, B)."""

    kernel: KernelCode
    support_vectors: Tensor
    dual_coef: Tensor
    intercept: Tensor
    params: dict[str, float]

    def decision(self, z: Tensor) -> Tensor:
        """The block's K decision values Σ_i α_i c_i K(s_i, z) + g: (N, B) -> (N, K)."""
        return self.kernel.decision(z, self.support_vectors, self.dual_coef, self.intercept, **self.params)

    def to(self, like: Tensor) -> DecisionBlock:
        """This block with every tensor in ``like``'s dtype and device."""
        return moved(self, like)


@dataclass(frozen=True)
class SVMHead:
    """A fitted SVM as class scores a_c(p), their gradients and its prediction rule.

    ``scheme`` is how scikit-learn predicts: ``binary`` (d > 0 → classes_[1]), ``ovr`` (argmax of
    the decisions) or ``ovo`` (votes of the pairwise decisions, ties to the lowest class index,
    as libsvm; with ``break_ties`` — ``SVC(break_ties=True)``, ``decision_function_shape="ovr"`` —
    the argmax of votes + a_c / (3(|a_c| + 1)), scikit-learn's tie-breaking decision function;
    ``OneVsOneClassifier`` always predicts so). ``steps`` are scalers/normalisers in front of the
    classifier other than one ``StandardScaler`` (which is ``scaler_mean``/``scaler_scale``).
    Holds no scikit-learn object, so it can be saved and loaded without pickle.
    """

    scheme: Scheme
    blocks: list[DecisionBlock]
    orientation: Tensor  # (C, K_total)
    classes: np.ndarray
    scaler_mean: Tensor | None
    scaler_scale: Tensor | None
    n_features: int
    zero_is_positive: bool = False  # binary: d == 0 -> classes_[1] (SVC, via libsvm) or classes_[0] (LinearSVC, OvR)
    break_ties: bool = False  # ovo only: SVC(break_ties=True) predicts by confidence-broken votes
    steps: tuple[AffineStep | L2NormalizeStep, ...] = ()

    def _inputs(self, p: Tensor) -> list[Tensor]:
        """The input of every step and, last, of the decision blocks."""
        z = p if self.scaler_mean is None else p - self.scaler_mean
        return step_inputs(self.steps, z if self.scaler_scale is None else z / self.scaler_scale)

    def _scaled(self, p: Tensor) -> Tensor:
        return self._inputs(p)[-1]

    def decisions(self, p: Tensor) -> Tensor:
        """Raw decision values d_k(p), (N, K_total)."""
        z = self._scaled(p)
        return torch.cat([b.decision(z) for b in self.blocks], dim=-1)

    def class_scores(self, p: Tensor) -> Tensor:
        """Oriented class scores a_c(p), (N, C)."""
        return self.decisions(p) @ self.orientation.T

    def class_score_gradients(self, p: Tensor) -> Tensor:
        """∂a_c/∂p for every class, (N, C, B): O · ∂d/∂z · diag(1/scale).

        The orientation is contracted with the dual coefficients first (a_c = Σ_i (O D)_ci K(s_i, z)
        + ..., linear in D), so the kernel gradient is formed for the C classes, not for every
        pairwise decision (45 of them for 10 classes one-vs-one).
        """
        inputs = self._inputs(p)
        z = inputs[-1]
        grad, offset = None, 0
        for block in self.blocks:
            k = block.dual_coef.shape[0]
            oriented = self.orientation[:, offset : offset + k] @ block.dual_coef  # (C, I)
            term = block.kernel.decision_gradient(z, block.support_vectors, oriented, **block.params)
            grad = term if grad is None else grad + term
            offset += k
        grad = pull_back_steps(self.steps, inputs, grad)
        if self.scaler_scale is not None:
            grad = grad / self.scaler_scale
        return grad

    def scores_index_gradients(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`class_scores`, :meth:`predicted_index` and :meth:`class_score_gradients`, the
        decisions evaluated once for the first two (tensor algebra only)."""
        d = self.decisions(p)
        return d @ self.orientation.T, self._index(d), self.class_score_gradients(p)

    def predict(self, p: Tensor) -> np.ndarray:
        """Predicted labels, by the same rule as the estimator's ``predict`` (see ``scheme``)."""
        return self._labels(self.decisions(p))

    def predicted_index(self, p: Tensor) -> Tensor:
        """The predicted class of every row of ``p`` as its position in ``classes`` (N,) int64, by the
        estimator's own rule; tensor algebra only (no NumPy), so it compiles and exports."""
        return self._index(self.decisions(p))

    def _labels(self, d: Tensor) -> np.ndarray:
        """The labels the decision values ``d`` (N, K_total) predict (see ``scheme``)."""
        return self.classes[self._index(d).cpu().numpy()]

    def _index(self, d: Tensor) -> Tensor:
        """Positions in ``classes`` that the decision values ``d`` (N, K_total) predict (see ``scheme``)."""
        if self.scheme == "binary":
            index = ((d[:, 0] >= 0) if self.zero_is_positive else (d[:, 0] > 0)).long()
        elif self.scheme == "ovr":
            index = d.argmax(dim=1)  # ties: the first maximum, as LinearSVC and OneVsRestClassifier
        elif not self.break_ties:
            # libsvm: pair (i, j) votes for i when its decision is > 0, otherwise for j
            index = self._votes(d, d > 0).argmax(dim=1)  # first maximum = lowest class index, as libsvm
        else:
            # scikit-learn's _ovr_decision_function: a vote for the class a positive decision favours
            # when the pair's estimator predicts it (d >= 0 for libsvm's SVC/NuSVC, d > 0 for linear
            # classifiers), and the oriented class scores, squashed into (-1/3, 1/3), added to
            # break ties without changing a vote
            a = d @ self.orientation.T
            positive = (d >= 0) if self.zero_is_positive else (d > 0)
            index = (self._votes(d, positive) + a / (3 * (a.abs() + 1))).argmax(dim=1)
        return index

    def _votes(self, d: Tensor, for_first: Tensor) -> Tensor:
        """One-vs-one votes (N, C): pair k votes for its first class where ``for_first``, else its second."""
        first = (self.orientation > 0).to(d.dtype)  # (C, K): class is the pair's first
        second = (self.orientation < 0).to(d.dtype)
        positive = for_first.to(d.dtype).unsqueeze(1)  # (N, 1, K)
        return (first * positive + second * (1 - positive)).sum(-1)

    def to(self, like: Tensor) -> SVMHead:
        """The same SVM with its tensors in ``like``'s dtype and device."""
        return moved(self, like)

    def class_index(self, labels: np.ndarray | list, argument: str) -> Tensor:
        """Positions of ``labels`` in ``classes_``; clear error for an unknown label."""
        lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(self.classes)}
        out = []
        for label in np.asarray(labels).tolist():
            if label not in lookup:
                raise CadcamInputError(f"{argument}: {label!r} is not one of the SVM's classes {list(lookup)}")
            out.append(lookup[label])
        return torch.tensor(out, dtype=torch.long)


def _tensor(a: np.ndarray, like: Tensor) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64)).to(dtype=like.dtype, device=like.device)


def _kernel_params(svc: SVC) -> tuple[KernelCode, dict[str, float]]:
    if isinstance(svc.kernel, ProfileKernel):
        return svc.kernel.code, dict(svc.kernel.parameters)
    if not isinstance(svc.kernel, str) or svc.kernel not in KERNELS:
        raise CadcamInputError(
            f"svm: kernel {svc.kernel!r} is not supported; expected one of {sorted(KERNELS)} "
            "or a spec's own kernel as ProfileKernel (precomputed kernels and other callables have no "
            "closed-form gradient here)"
        )
    code = KERNELS[svc.kernel]
    params = {}
    for name, info in code.parameters.items():
        value = getattr(svc, info.attribute)
        params[name] = int(value) if info.integer else float(value)
    return code, params


def _svc_blocks(svc: SVC, like: Tensor) -> tuple[list[DecisionBlock], np.ndarray]:
    """Blocks and orientation for one SVC (binary or one-vs-one)."""
    code, params = _kernel_params(svc)
    if callable(svc.kernel):
        # scikit-learn keeps no support_vectors_ for callable kernels: the training inputs and
        # the support indices are what it evaluates the kernel on at predict time.
        fitted = getattr(svc, "_BaseLibSVM__Xfit", None)
        if fitted is None:
            raise CadcamInputError("svm: this scikit-learn version keeps no training inputs for a callable kernel")
        sv = _tensor(np.asarray(fitted)[svc.support_], like)
    else:
        sv = _tensor(svc.support_vectors_, like)
    classes = svc.classes_
    if len(classes) == 2:
        block = DecisionBlock(code, sv, _tensor(svc.dual_coef_, like), _tensor(svc.intercept_, like), params)
        return [block], np.array([[-1.0], [1.0]])
    starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
    pairs = [(i, j) for i in range(len(classes)) for j in range(i + 1, len(classes))]
    dual = np.zeros((len(pairs), sv.shape[0]))
    orient = np.zeros((len(classes), len(pairs)))
    for k, (i, j) in enumerate(pairs):
        si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
        dual[k, si] = svc.dual_coef_[j - 1, si]
        dual[k, sj] = svc.dual_coef_[i, sj]
        orient[i, k], orient[j, k] = 1.0, -1.0  # a positive pairwise decision favours classes_[i]
    return [DecisionBlock(code, sv, _tensor(dual, like), _tensor(svc.intercept_, like), params)], orient


#: classifiers whose decision is w·z + b (``coef_``, ``intercept_``): predict d > 0 → classes_[1]
#: (binary) or argmax (more classes), as scikit-learn's LinearClassifierMixin does
LINEAR_CLASSIFIERS = (
    LinearSVC,
    LogisticRegression,
    RidgeClassifier,
    SGDClassifier,
    Perceptron,
    LinearDiscriminantAnalysis,
)
KERNEL_SVMS = (SVC, NuSVC)


def _linear_svc_block(svc: object, like: Tensor) -> DecisionBlock:
    """A linear classifier as the linear kernel with the weight rows as 'support vectors' and D = I."""
    coef = _tensor(np.atleast_2d(svc.coef_), like)  # RidgeClassifier keeps a binary coef_ 1-D
    eye = torch.eye(coef.shape[0], dtype=like.dtype, device=like.device)
    return DecisionBlock(KERNELS["linear"], coef, eye, _tensor(np.ravel(svc.intercept_), like), {})


def _binary_blocks(estimator: object, like: Tensor, wrapper: str) -> list[DecisionBlock]:
    if isinstance(estimator, KERNEL_SVMS):
        blocks, _ = _svc_blocks(estimator, like)
        if len(estimator.classes_) != 2:
            raise CadcamInputError(f"svm: {wrapper} estimators must be binary")
        return blocks
    if isinstance(estimator, LINEAR_CLASSIFIERS):
        return [_linear_svc_block(estimator, like)]
    raise CadcamInputError(f"svm: {wrapper} of {type(estimator).__name__} is not supported ({_accepted()})")


def _accepted() -> str:
    return ", ".join(c.__name__ for c in (*KERNEL_SVMS, *LINEAR_CLASSIFIERS))


def _one_vs_one(ovo: OneVsOneClassifier, like: Tensor) -> tuple[list[DecisionBlock], np.ndarray, bool]:
    """Pair k = (i, j), i < j, in scikit-learn's order; its estimator was fitted with class j as
    the positive label, so a positive decision favours j: O[i, k] = −1, O[j, k] = +1."""
    n_classes = len(ovo.classes_)
    blocks = [b for est in ovo.estimators_ for b in _binary_blocks(est, like, "OneVsOneClassifier")]
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    orient = np.zeros((n_classes, len(pairs)))
    for k, (i, j) in enumerate(pairs):
        orient[i, k], orient[j, k] = -1.0, 1.0
    return blocks, orient, all(isinstance(e, KERNEL_SVMS) for e in ovo.estimators_)


def unwrapped_search(wrapper: object) -> object:
    """A fitted search's ``best_estimator_``, or a ``FrozenEstimator``'s estimator."""
    if isinstance(wrapper, FrozenEstimator):
        return wrapper.estimator
    if not hasattr(wrapper, "best_estimator_"):
        raise CadcamInputError("svm: the search has no best_estimator_ (not fitted, or refit=False)")
    return wrapper.best_estimator_


def _pipeline_steps(pipeline: Pipeline) -> list[object]:
    steps = [s for _, s in pipeline.steps if s not in (None, "passthrough")]
    if not steps:
        raise CadcamInputError("svm: the Pipeline holds no estimator (every step is 'passthrough')")
    return steps


def _same_fitted(a: object, b: object) -> bool:
    """Two fitted preprocessors of one type with equal fitted attributes (``mean_``, ``scale_``, …)."""
    if type(a) is not type(b) or a.get_params() != b.get_params():
        return False
    fitted = [k for k in vars(a) if k.endswith("_") and not k.startswith("_")]
    return all(k in vars(b) and np.array_equal(np.asarray(vars(a)[k]), np.asarray(vars(b)[k])) for k in fitted)


def _lift_shared_scalers(ovr: OneVsRestClassifier) -> Pipeline:
    """``OneVsRestClassifier(make_pipeline(scalers…, clf))`` as ``make_pipeline(scalers…,
    OneVsRestClassifier(clf))``: every binary problem of one-vs-rest is fitted on the same inputs,
    so each estimator's scalers are the same fitted transform, checked here attribute by attribute
    (refused by name where they differ)."""
    import copy

    chains = [_pipeline_steps(e) for e in ovr.estimators_]
    first = chains[0][:-1]
    if any(len(c) != len(chains[0]) or not all(map(_same_fitted, first, c[:-1])) for c in chains[1:]):
        raise CadcamInputError(
            "svm: the OneVsRestClassifier's pipelines do not share one fitted scaler; put the scalers before "
            "the OneVsRestClassifier (make_pipeline(StandardScaler(), OneVsRestClassifier(...)))"
        )
    bare = copy.copy(ovr)
    bare.estimators_ = [c[-1] for c in chains]
    return Pipeline([*((f"step{i}", step) for i, step in enumerate(first)), ("classifier", bare)])


@dataclass(frozen=True)
class PipelineParts:
    """A classifier with what stands before it: the final ``estimator``, one ``StandardScaler`` read as
    ``scaler_mean``/``scaler_scale`` (when folded), or every scaler as ``steps``."""

    estimator: object
    scaler_mean: Tensor | None = None
    scaler_scale: Tensor | None = None
    steps: tuple[AffineStep | L2NormalizeStep, ...] = ()


def _pipeline_chain(svm: Pipeline) -> tuple[list[object], object]:
    """(the steps before the classifier, the classifier) of a ``Pipeline``: a search at its end is
    unwrapped, and a ``Pipeline`` that search holds joins its steps."""
    *pre, estimator = _pipeline_steps(svm)
    if isinstance(estimator, GridSearchCV | RandomizedSearchCV | FrozenEstimator):  # scalers, then a search
        estimator = unwrapped_search(estimator)
        if isinstance(estimator, Pipeline):
            *inner, estimator = _pipeline_steps(estimator)
            pre = [*pre, *inner]
    return pre, estimator


def final_estimator(svm: object) -> object:
    """The classifier at the end of ``svm``: itself, or a ``Pipeline``'s (:func:`_pipeline_chain`),
    without reading any scaler."""
    return _pipeline_chain(svm)[1] if isinstance(svm, Pipeline) else svm


def read_pipeline(svm: object, like: Tensor, fold_standard_scaler: bool = True) -> PipelineParts:
    """``svm`` as :class:`PipelineParts`: the scalers of a ``Pipeline`` validated and read (one
    ``StandardScaler`` folded into mean and scale when ``fold_standard_scaler``), in ``like``'s dtype."""
    if not isinstance(svm, Pipeline):
        return PipelineParts(svm)
    pre, estimator = _pipeline_chain(svm)
    if not all(isinstance(s, PREPROCESSORS) for s in pre):
        raise CadcamInputError(
            "svm: a Pipeline must be scalers (" + ", ".join(c.__name__ for c in PREPROCESSORS) + ") then a "
            "classifier; got " + ", ".join(type(s).__name__ for s in [*pre, estimator])
        )
    if fold_standard_scaler and len(pre) == 1 and isinstance(pre[0], StandardScaler):
        scaler = pre[0]
        require_fitted(scaler, "svm (its StandardScaler)")
        # scikit-learn fills mean_ even when with_mean=False, but transform() does not use it
        mean = _tensor(scaler.mean_, like) if scaler.with_mean and scaler.mean_ is not None else None
        scale = _tensor(scaler.scale_, like) if scaler.with_std and scaler.scale_ is not None else None
        return PipelineParts(estimator, mean, scale)
    if not pre:
        return PipelineParts(estimator)
    width = int(pre[0].n_features_in_) if hasattr(pre[0], "n_features_in_") else 0
    exact = torch.zeros((), dtype=torch.float64, device=like.device)
    return PipelineParts(
        estimator, steps=tuple(step.to(like) for step in preprocessing_steps(pre, width, "svm", exact))
    )


def parse_decision_classifier(svm: object, like: Tensor) -> SVMHead:
    """Validate a fitted scikit-learn classifier of decision blocks (module docstring; every kind
    but ``CalibratedClassifierCV``, which :func:`cadcam_numeric.engine.classifiers.parse_svm`
    dispatches to :mod:`cadcam_numeric.engine.calibrated`) and read its blocks.

    An ``SVMHead`` (e.g. loaded from a bundle) is accepted as is, cast to ``like``.
    """
    if isinstance(svm, SVMHead):
        return svm.to(like)
    if isinstance(svm, GridSearchCV | RandomizedSearchCV | FrozenEstimator):
        return parse_decision_classifier(unwrapped_search(svm), like)
    fitted = getattr(svm, "estimators_", None) if isinstance(svm, OneVsRestClassifier) else None
    if fitted and all(isinstance(e, Pipeline) for e in fitted):
        return parse_decision_classifier(_lift_shared_scalers(svm), like)
    parts = read_pipeline(svm, like)
    estimator, scaler_mean, scaler_scale, steps = parts.estimator, parts.scaler_mean, parts.scaler_scale, parts.steps
    require_fitted(estimator, "svm")
    zero_is_positive = isinstance(estimator, KERNEL_SVMS)
    break_ties = False
    if isinstance(estimator, KERNEL_SVMS):
        blocks, orient = _svc_blocks(estimator, like)
        classes = estimator.classes_
        break_ties = bool(estimator.break_ties) and estimator.decision_function_shape == "ovr"
    elif isinstance(estimator, LINEAR_CLASSIFIERS):
        blocks = [_linear_svc_block(estimator, like)]
        classes = estimator.classes_
        orient = np.array([[-1.0], [1.0]]) if len(classes) == 2 else np.eye(len(classes))
    elif isinstance(estimator, OneVsRestClassifier):
        blocks = [b for est in estimator.estimators_ for b in _binary_blocks(est, like, "OneVsRestClassifier")]
        classes = estimator.classes_
        orient = np.array([[-1.0], [1.0]]) if len(classes) == 2 else np.eye(len(classes))
    elif isinstance(estimator, OneVsOneClassifier):
        blocks, orient, zero_is_positive = _one_vs_one(estimator, like)
        classes = estimator.classes_
        break_ties = True  # OneVsOneClassifier predicts by votes + squashed confidences, always
    else:
        raise CadcamInputError(
            f"svm: expected a fitted {_accepted()}, a OneVsRestClassifier/OneVsOneClassifier of those, "
            "CalibratedClassifierCV, a Pipeline of scalers then one of those, "
            f"or a fitted GridSearchCV/RandomizedSearchCV of them; got {type(estimator).__name__}"
        )
    n_features = int(getattr(svm, "n_features_in_", blocks[0].support_vectors.shape[1]))
    if len(classes) == 2:
        scheme = "binary"
    elif isinstance(estimator, (*KERNEL_SVMS, OneVsOneClassifier)):
        scheme = "ovo"
    else:
        scheme = "ovr"
    return SVMHead(
        scheme,
        blocks,
        _tensor(orient, like),
        np.asarray(classes),
        scaler_mean,
        scaler_scale,
        n_features,
        zero_is_positive=zero_is_positive,
        break_ties=scheme == "ovo" and break_ties,
        steps=tuple(steps),
    )
