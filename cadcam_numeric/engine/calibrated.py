"""``CalibratedClassifierCV`` as class scores and closed-form gradients.

scikit-learn averages K calibrated copies of the base classifier (one per CV fold; one when
``ensemble=False``). Copy k maps the base decision values f_m(z) through one calibrator per class,

* ``method="sigmoid"`` (Platt): u_m = 1/(1 + exp(a_m f_m + b_m)) = σ(−a_m f_m − b_m), a 1×1 dense layer
  with the catalogue's sigmoid (``block/calibration/sigmoid``);
* ``method="isotonic"``: u_m = the isotonic fit's piecewise-linear interpolation of f_m, clipped to
  its thresholds; **its gradient is the slope of the segment f_m lies in** (right-continuous at a
  threshold, ``block/calibration/isotonic_slope``) **and 0 outside the thresholds**. An isotonic fit is
  mostly flat (a step function with short ramps), so its maps are often exactly zero: that is the
  gradient of what it computes, not a failure. Every calibration-set decision value is a threshold,
  where the derivative is one-sided: explaining those very points, float32 rounding of f can pick the
  neighbouring segment (explain them in float64, or explain other points);

then normalises: binary π_1 = u, π_0 = 1 − u; multi-class π = u/Σu (uniform where Σu = 0, gradient 0;
``block/calibration/normalize``). ``predict_proba`` is π̄ = (1/K) Σ_k π^(k) and ``predict`` its argmax.

**The score each map explains is the log-probability log π̄_c of the explained class**, with
gradient (1/π̄_c)(1/K) Σ_k ∂π_c^(k)/∂p. The base classifiers are read by
:func:`cadcam_numeric.engine.svm.parse_decision_classifier`; their decision values must be per class (binary, or
one-vs-rest / multinomial linear classifiers); a multi-class SVC's tie-broken votes are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from torch import Tensor

from cadcam_numeric.engine.chain import DenseLayer
from cadcam_numeric.engine.moves import moved
from cadcam_numeric.engine.sklearn_checks import require_fitted
from cadcam_numeric.engine.svm import SVMHead, parse_decision_classifier
from cadcam_numeric.engine.transform import AffineStep, L2NormalizeStep, pull_back_steps, step_inputs
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import ACTIVATIONS
from cadcam_numeric.generated.blocks import interpolation_slope, pullback_dense, pullback_sum_normalize

__all__ = ["CalibratedHead", "IsotonicCalibrator", "SigmoidCalibrator", "parse_calibrated"]


@dataclass(frozen=True)
class SigmoidCalibrator:
    """u = σ(−a f − b) for one class: a 1×1 dense layer with W = −a, β = −b."""

    a: float
    b: float

    def _layer(self, like: Tensor) -> DenseLayer:
        w = torch.full((1, 1), -self.a, dtype=like.dtype, device=like.device)
        return DenseLayer(w, torch.full((1,), -self.b, dtype=like.dtype, device=like.device), ACTIVATIONS["sigmoid"])

    def value(self, f: Tensor) -> Tensor:
        """σ(−a f − b) per decision value f (N,) -> (N,): Platt's sigmoid calibration."""
        layer = self._layer(f)
        return layer.activate(f.unsqueeze(-1) @ layer.weight.T + layer.bias).squeeze(-1)

    def slope(self, f: Tensor) -> Tensor:
        """dσ(−a f − b)/df per decision value f (N,) -> (N,)."""
        layer = self._layer(f)
        delta = f.unsqueeze(-1) @ layer.weight.T + layer.bias  # (N, 1)
        one = torch.ones(f.shape[0], 1, 1, dtype=f.dtype, device=f.device)
        return pullback_dense(one, layer.fprime(delta), layer.weight)[:, 0, 0]


@dataclass(frozen=True)
class IsotonicCalibrator:
    """u = interpolation through (x_j, y_j), clipped to [x_0, x_last] (``IsotonicRegression.predict``)."""

    x: Tensor
    y: Tensor

    def _segment(self, f: Tensor) -> Tensor:
        """j with x_j <= f < x_{j+1} (the last segment from x_{last-1} on), as NumPy's ``interp`` picks it.
        Counted as #{x_j <= f} (``searchsorted(right=True)``, in operators ONNX has)."""
        j = (self.x <= f.unsqueeze(-1)).sum(dim=-1) - 1
        return j.clamp(0, self.x.shape[0] - 2)

    def value(self, f: Tensor) -> Tensor:
        """As scikit-learn computes it for float64 thresholds: clip to [x_0, x_last], then NumPy's
        ``interp`` (through SciPy's ``interp1d``): slope_j·(f − x_j) + y_j on the segment with
        x_j <= f, y_last at x_last. ``tests`` hold the values equal to ``predict`` bit for bit."""
        if self.x.shape[0] == 1:
            return self.y.expand(f.shape[0]).clone()
        fc = torch.minimum(torch.maximum(f, self.x[0]), self.x[-1])
        j = self._segment(fc)
        x_lo, x_hi, y_lo, y_hi = self.x[j], self.x[j + 1], self.y[j], self.y[j + 1]
        inside = interpolation_slope(x_lo, x_hi, y_lo, y_hi) * (fc - x_lo) + y_lo
        return torch.where(fc == self.x[-1], self.y[-1], inside)

    def slope(self, f: Tensor) -> Tensor:
        """The right derivative: the slope of the segment with x_j <= f; 0 from x_last on and below x_0."""
        if self.x.shape[0] == 1:
            return torch.zeros_like(f)
        j = self._segment(f)
        slope = interpolation_slope(self.x[j], self.x[j + 1], self.y[j], self.y[j + 1])
        inside = (f >= self.x[0]) & (f < self.x[-1])
        return torch.where(inside, slope, torch.zeros_like(slope))

    def to(self, like: Tensor) -> IsotonicCalibrator:
        """This calibrator with its breakpoints in ``like``'s dtype and device."""
        return moved(self, like)


@dataclass(frozen=True)
class CalibratedCopy:
    """One calibrated classifier: its base decisions, which class each feeds, and their calibrators."""

    base: SVMHead
    columns: tuple[int, ...]  # decision column of the base for each calibrator
    class_indices: tuple[int, ...]  # the calibrated class (position in classes_) of each calibrator
    calibrators: tuple[SigmoidCalibrator | IsotonicCalibrator, ...]

    def to(self, like: Tensor) -> CalibratedCopy:
        """This copy with every tensor in ``like``'s dtype and device."""
        return moved(self, like)


def _decisions(base: SVMHead, p: Tensor) -> tuple[Tensor, Tensor]:
    """Per-class decision values f (N, M) of a base classifier and their gradients (N, M, B)."""
    scores, grads = base.class_scores(p), base.class_score_gradients(p)
    if base.scheme == "binary":  # the decision function is a_{classes_[1]} = d
        return scores[:, 1:], grads[:, 1:]
    return scores, grads


@dataclass(frozen=True)
class CalibratedHead:
    """``CalibratedClassifierCV``: log-probability scores, their gradients, ``predict`` (module docstring)."""

    copies: tuple[CalibratedCopy, ...]
    classes: np.ndarray
    n_features: int
    steps: tuple[AffineStep | L2NormalizeStep, ...] = ()  # scalers in front of it in a Pipeline

    def _probabilities(self, p: Tensor, with_gradients: bool) -> tuple[Tensor, Tensor | None]:
        inputs = step_inputs(self.steps, p)
        mean, grad = self._calibrated(inputs[-1], with_gradients)
        return mean, (None if grad is None else pull_back_steps(self.steps, inputs, grad))

    def _calibrated(self, p: Tensor, with_gradients: bool) -> tuple[Tensor, Tensor | None]:
        n, c = p.shape[0], len(self.classes)
        mean = torch.zeros(n, c, dtype=p.dtype, device=p.device)
        grad = torch.zeros(n, c, p.shape[1], dtype=p.dtype, device=p.device) if with_gradients else None
        for copy in self.copies:
            f, df = _decisions(copy.base, p)
            u = torch.zeros(n, c, dtype=p.dtype, device=p.device)
            du = torch.zeros(n, c, p.shape[1], dtype=p.dtype, device=p.device) if with_gradients else None
            for column, cls, cal in zip(copy.columns, copy.class_indices, copy.calibrators):
                u[:, cls] = cal.value(f[:, column])
                if with_gradients:
                    du[:, cls] = cal.slope(f[:, column]).unsqueeze(-1) * df[:, column]
            if c == 2:
                proba = torch.stack([1 - u[:, 1], u[:, 1]], dim=1)
                dproba = torch.stack([-du[:, 1], du[:, 1]], dim=1) if with_gradients else None
            else:
                total = u.sum(dim=1)
                safe = torch.where(total == 0, torch.ones_like(total), total)
                proba = torch.where((total == 0).unsqueeze(1), torch.full_like(u, 1.0 / c), u / safe.unsqueeze(1))
                dproba = None
                if with_gradients:
                    # rows e_c at π pulled back to u (generated block), then through ∂u/∂p
                    eye = torch.eye(c, dtype=p.dtype, device=p.device).expand(n, c, c)
                    at_u = pullback_sum_normalize(eye, proba, safe)
                    dproba = torch.where((total == 0)[:, None, None], torch.zeros_like(du), at_u @ du)
            mean = mean + proba
            if with_gradients:
                grad = grad + dproba
        k = len(self.copies)
        return mean / k, (None if grad is None else grad / k)

    def predict_proba(self, p: Tensor) -> Tensor:
        """π̄(p), (N, C): ``CalibratedClassifierCV.predict_proba``."""
        return self._probabilities(p, with_gradients=False)[0]

    def predict(self, p: Tensor) -> np.ndarray:
        """argmax of the mean calibrated probability (first maximum), as ``CalibratedClassifierCV.predict``."""
        proba, _ = self._probabilities(p, with_gradients=False)
        return self.classes[proba.argmax(dim=1).cpu().numpy()]

    def predicted_index(self, p: Tensor) -> Tensor:
        """Positions in ``classes`` of :meth:`predict`'s labels, (N,) int64 (tensor algebra only)."""
        return self._probabilities(p, with_gradients=False)[0].argmax(dim=1)

    def class_scores(self, p: Tensor) -> Tensor:
        """log π̄_c(p), (N, C): the log of ``predict_proba``."""
        proba, _ = self._probabilities(p, with_gradients=False)
        return torch.log(proba)

    def class_score_gradients(self, p: Tensor) -> Tensor:
        """∂ log π̄_c/∂p = (∂π̄_c/∂p)/π̄_c, (N, C, B); 0 where π̄_c = 0 (log π̄_c = −∞ there, flat)."""
        return self.scores_index_gradients(p)[2]

    def scores_index_gradients(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`class_scores`, :meth:`predicted_index` and :meth:`class_score_gradients` from one
        evaluation of the probabilities and their gradients (tensor algebra only)."""
        proba, grad = self._probabilities(p, with_gradients=True)
        return torch.log(proba), proba.argmax(dim=1), _log_gradient(proba, grad)

    def class_index(self, labels: np.ndarray | list, argument: str) -> Tensor:
        """Positions of ``labels`` in ``classes_`` (the lookup ``SVMHead`` uses)."""
        return SVMHead.class_index(self, labels, argument)

    def to(self, like: Tensor) -> CalibratedHead:
        """This head with every tensor in ``like``'s dtype and device."""
        return moved(self, like)


def parse_calibrated(cal: CalibratedClassifierCV, like: Tensor) -> CalibratedHead:
    """Read a fitted ``CalibratedClassifierCV`` (sigmoid or isotonic) into a :class:`CalibratedHead`."""
    require_fitted(cal, "svm")
    classes = np.asarray(cal.classes_)
    lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
    copies = []
    for calibrated in cal.calibrated_classifiers_:
        if calibrated.method not in ("sigmoid", "isotonic"):
            raise CadcamInputError(
                f"svm: CalibratedClassifierCV(method={calibrated.method!r}) is not supported; "
                "use 'sigmoid' or 'isotonic'"
            )
        base = parse_decision_classifier(calibrated.estimator, like)
        if base.scheme == "ovo":
            raise CadcamInputError(
                "svm: CalibratedClassifierCV of a multi-class one-vs-one classifier (SVC) is not supported: its "
                "decision function is tie-broken votes; use a one-vs-rest or linear classifier as the base"
            )
        base_classes = [c.item() if hasattr(c, "item") else c for c in base.classes]
        if len(classes) == 2:
            columns, indices = (0,), (1,)  # one calibrator, for classes_[1]
        else:
            columns = tuple(range(len(base_classes)))
            indices = tuple(lookup[c] for c in base_classes)
        calibrators = []
        for calibrator in calibrated.calibrators:
            if calibrated.method == "sigmoid":
                calibrators.append(SigmoidCalibrator(float(calibrator.a_), float(calibrator.b_)))
            else:
                x = torch.as_tensor(np.asarray(calibrator.X_thresholds_, dtype=np.float64)).to(like)
                y = torch.as_tensor(np.asarray(calibrator.y_thresholds_, dtype=np.float64)).to(like)
                if calibrator.out_of_bounds != "clip":
                    raise CadcamInputError(
                        "svm: an isotonic calibrator must clip out of its range (scikit-learn's default)"
                    )
                calibrators.append(IsotonicCalibrator(x, y))
        if len(classes) > 2 and len(base_classes) != len(classes):
            raise CadcamInputError(
                f"svm: a CalibratedClassifierCV fold's classifier saw {len(base_classes)} of the {len(classes)} "
                "classes; refit with folds that hold every class (e.g. a stratified cv)"
            )
        if len(calibrators) != len(columns):
            raise CadcamInputError("svm: CalibratedClassifierCV has a calibrator count that does not match its classes")
        copies.append(CalibratedCopy(base, columns, indices, tuple(calibrators)))
    return CalibratedHead(tuple(copies), classes, int(cal.n_features_in_))


def _log_gradient(proba: Tensor, grad: Tensor) -> Tensor:
    """∂ log π/∂p = (∂π/∂p)/π, (N, C, B), and 0 where π = 0 (log π = −∞ there, flat)."""
    safe = torch.where(proba == 0, torch.ones_like(proba), proba).unsqueeze(-1)
    return torch.where((proba == 0).unsqueeze(-1), torch.zeros_like(grad), grad / safe)
