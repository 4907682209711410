"""What a map explains: a class of the CNN, a PCA component with its sign, a class of the SVM.

``explain``, ``position_gradients`` and ``decom_cam`` accept these objects; plain values keep working:

* ``targets=`` — CNN classes, one per image or one for all: integers, :class:`ClassTarget`, or any
  object with an integer ``category`` (pytorch-grad-cam's ``ClassifierOutputTarget``, so a ported
  call works).
* ``svm_targets=`` — SVM labels (any type the classifier was fitted on, strings included) or
  :class:`SVMClassTarget`, or :data:`PREDICTED`: the SVM's own ``predict()``, which is also the
  default (but for the integer guess below).

Two older guesses still work, with a ``FutureWarning`` naming the argument to use instead (one
meaning per argument, as pytorch-grad-cam has it): an :class:`SVMClassTarget` or a non-integer label
(``'dog'``) in ``targets=`` is taken as a class of the SVM (the CNN then explains its own
prediction), and integer ``targets`` with an SVM whose labels are integers choose the SVM's class
too, when ``svm_targets`` is not given.
* :class:`ComponentTarget` picks one PCA component and its sign (P_b⊕ for +1, P_b⊖ for −1, Eq. 11)
  where one map is made for one quantity (Decom-CAM); ``explain`` forms every component's pair.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from cadcam_numeric.errors import CadcamInputError

__all__ = ["PREDICTED", "ClassTarget", "ComponentTarget", "ResolvedTargets", "SVMClassTarget", "resolve_targets"]


@dataclass(frozen=True)
class ClassTarget:
    """Class ``index`` of the CNN's output y (Grad-CAM, Eq. 8–9)."""

    index: int


@dataclass(frozen=True)
class ComponentTarget:
    """PCA component ``component`` (0-based b) with ``sign`` +1 (explains +p_b) or −1 (−p_b)."""

    component: int
    sign: int = 1

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise CadcamInputError(f"ComponentTarget.sign: expected +1 or -1, got {self.sign!r}")
        if not isinstance(self.component, int | np.integer) or self.component < 0:
            raise CadcamInputError(f"ComponentTarget.component: expected an index >= 0, got {self.component!r}")


@dataclass(frozen=True)
class SVMClassTarget:
    """A label of the SVM (an element of its ``classes_``: any type, strings included), Eq. 14."""

    label: object


class _Predicted:
    """The type of :data:`PREDICTED`."""

    def __repr__(self) -> str:
        return "PREDICTED"


#: ``svm_targets=PREDICTED``: the SVM explains its own prediction for every image, said explicitly
#: (no guess from integer ``targets``)
PREDICTED = _Predicted()

Target = int | ClassTarget | SVMClassTarget | object


@dataclass(frozen=True)
class ResolvedTargets:
    """Per image: the CNN class index to explain (None: its prediction) and the SVM label (None: its prediction)."""

    cnn: Tensor | None
    svm: np.ndarray | None


def _as_list(targets: object, argument: str) -> list[object]:
    if isinstance(targets, Tensor):
        return targets.reshape(-1).tolist()
    if isinstance(targets, np.ndarray):
        return targets.reshape(-1).tolist()
    if isinstance(targets, str | bytes) or not isinstance(targets, Sequence):
        return [targets]
    return list(targets)


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _cnn_index(item: object) -> int | None:
    if isinstance(item, ClassTarget):
        return int(item.index)
    category = getattr(item, "category", None)
    if category is not None and not isinstance(item, SVMClassTarget) and _is_integer(category):
        return int(category)  # pytorch-grad-cam's ClassifierOutputTarget, duck-typed
    if _is_integer(item):
        return int(item)
    return None


def _broadcast(values: list[object], n: int, argument: str) -> list[object]:
    if len(values) == 1 and n > 1:
        return values * n
    if len(values) != n:
        raise CadcamInputError(f"{argument}: expected {n} labels (one per image) or one for all, got {len(values)}")
    return values


def _deprecated(message: str) -> None:
    """A ``FutureWarning`` attributed to the first caller outside cadcam (whichever entry point it used)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("cadcam_numeric."):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, FutureWarning, stacklevel=level)


SVM_LABELS_IN_TARGETS = (
    "targets: SVM labels in targets= are taken as the SVM's class, as before, but targets= will name CNN "
    "classes only; pass them as svm_targets="
)
INTEGERS_FOR_BOTH = (
    "targets: integer targets also choose the SVM's class (its labels are integers), as before, but "
    "targets= will name CNN classes only; pass svm_targets= too to keep this"
)


def resolve_targets(
    targets: object, svm_targets: object, n: int, classes: int, svm_labels: Sequence | None
) -> ResolvedTargets:
    """Split ``targets``/``svm_targets`` (module docstring) into CNN class indices and SVM labels.

    ``classes == 0`` is a head without a class output (PCA on the pooled features): every target
    is then a label of the SVM."""
    cnn: list[int] | None = None
    svm: list[object] | None = None
    if targets is not None and classes == 0:
        if svm_labels is None:
            raise CadcamInputError("targets: the head has no class output (no Linear layer) and there is no svm")
        items = _broadcast(_as_list(targets, "targets"), n, "targets")
        svm = [i.label if isinstance(i, SVMClassTarget) else i for i in items]
        _deprecated(SVM_LABELS_IN_TARGETS)
    elif targets is not None:
        items = _broadcast(_as_list(targets, "targets"), n, "targets")
        if any(isinstance(i, float | bool | np.floating | np.bool_) for i in items):
            raise CadcamInputError(f"targets: expected integer class indices for the CNN, got {items[:3]}")
        if all(isinstance(i, SVMClassTarget) for i in items):
            if svm_labels is None:
                raise CadcamInputError("targets: SVMClassTarget given without an svm")
            svm = [i.label for i in items]
            _deprecated(SVM_LABELS_IN_TARGETS)
        else:
            indices = [_cnn_index(i) for i in items]
            if all(i is None for i in indices) and svm_labels is not None:
                svm = items  # labels of the SVM ('dog'): the CNN explains its own prediction
                _deprecated(SVM_LABELS_IN_TARGETS)
            elif any(i is None for i in indices):
                bad = next(item for item, i in zip(items, indices) if i is None)
                raise CadcamInputError(
                    f"targets: {bad!r} is not a class index of the CNN (expected integers in [0, {classes}), "
                    "ClassTarget, or an object with an integer .category; SVM labels go in svm_targets)"
                )
            else:
                cnn = [int(i) for i in indices]
                bad_index = [i for i in cnn if not 0 <= i < classes]
                if bad_index:
                    raise CadcamInputError(f"targets: class indices must lie in [0, {classes}), got {bad_index}")
    if svm_targets is PREDICTED:
        if svm_labels is None:
            raise CadcamInputError("svm_targets: given without an svm")
        svm = None
    elif svm_targets is not None:
        if svm_labels is None:
            raise CadcamInputError("svm_targets: given without an svm")
        items = _broadcast(_as_list(svm_targets, "svm_targets"), n, "svm_targets")
        svm = [i.label if isinstance(i, SVMClassTarget) else i for i in items]
    elif svm is None and cnn is not None and svm_labels is not None:
        if all(_is_integer(c) for c in svm_labels):
            svm = list(cnn)  # integer labels explain both (the paper's setting: SVM classes = CNN classes)
            _deprecated(INTEGERS_FOR_BOTH)
    cnn_tensor = None if cnn is None else torch.tensor(cnn, dtype=torch.long)
    return ResolvedTargets(cnn_tensor, None if svm is None else np.asarray(svm))
