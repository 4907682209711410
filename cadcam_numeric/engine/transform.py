"""The layer in the PCA position when it is not one linear map: scikit-learn preprocessing steps
(affine scalers that cannot be folded, ``Normalizer``) and ``KernelPCA``.

A :class:`TransformLayer` is a chain x ↦ step_1 ↦ … ↦ step_m ↦ projection, with

* :class:`AffineStep`   z = s∘x + o (StandardScaler, RobustScaler, MinMaxScaler, MaxAbsScaler);
  Jacobian diag(s), so a row stack g pulls back to g diag(s);
* :class:`L2NormalizeStep`  n = x/‖x‖ (``Normalizer(norm="l2")``; a zero row stays zero, as in
  scikit-learn); rows pull back by the generated ``pullback_l2_normalize`` (proved as
  ``block/normalizer/l2``);
* the projection: a linear :class:`~cadcam_numeric.engine.chain.PCALayer`, or a
  :class:`KernelProjection`, KernelPCA's scores written as a decision block
  p_b = Σ_i D_bi k(x_i, z) + g_b (proved as ``block/kernel_pca/centring``), whose Jacobian is the
  generated SVM decision gradient of its kernel (Eq. 24, ``block/svm/<kernel>``).

Rows are pulled back right to left (Eq. 13): nothing here is differentiated by hand or by autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cadcam_numeric.catalogue_types import KernelCode
from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.moves import moved
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated.blocks import pullback_l2_normalize

__all__ = ["AffineStep", "KernelProjection", "L2NormalizeStep", "TransformLayer", "pull_back_steps", "step_inputs"]

#: KernelPCA's gradient forms (rows, fitted inputs, features) differences: batches are split so that
#: no intermediate holds more than this many values
KERNEL_CHUNK_VALUES = 1 << 25


@dataclass(frozen=True)
class AffineStep:
    """z = s∘x + o, per feature."""

    scale: Tensor
    offset: Tensor

    def forward(self, x: Tensor) -> Tensor:
        """x ⊙ scale + offset (a fitted scaler)."""
        return x * self.scale + self.offset

    def pullback(self, g: Tensor, x: Tensor) -> Tensor:
        """g ∂z/∂x = g diag(s): (N, K, D) -> (N, K, D)."""
        return g * self.scale

    def to(self, like: Tensor) -> AffineStep:
        """This step with every tensor in ``like``'s dtype and device."""
        return moved(self, like)


@dataclass(frozen=True)
class L2NormalizeStep:
    """n = x/‖x‖ (scikit-learn's ``Normalizer(norm="l2")``: a zero row is left as it is)."""

    def _norm(self, x: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1)
        return torch.where(norm == 0, torch.ones_like(norm), norm)

    def forward(self, x: Tensor) -> Tensor:
        """x / ‖x‖₂ per row (rows that are zero are refused before)."""
        return x / self._norm(x).unsqueeze(-1)

    def pullback(self, g: Tensor, x: Tensor) -> Tensor:
        """g ∂n/∂x = (g − (g n) nᵀ)/‖x‖ (generated block); x/‖x‖ has no derivative at x = 0."""
        norm = torch.linalg.vector_norm(x, dim=-1)
        if bool((norm == 0).any()):
            raise CadcamInputError(
                f"pca/svm: {int((norm == 0).sum())} input row(s) of a Normalizer are all zero; x/|x| has no "
                "derivative there (scikit-learn leaves such rows at zero), so no map can be formed for them"
            )
        return pullback_l2_normalize(g, x / norm.unsqueeze(-1), norm)

    def to(self, like: Tensor) -> L2NormalizeStep:
        """This step (it holds no tensors)."""
        return moved(self, like)


Step = AffineStep | L2NormalizeStep


def step_inputs(steps: tuple[Step, ...], x: Tensor) -> list[Tensor]:
    """The input of every step and, last, the output of the last one."""
    inputs = [x]
    for step in steps:
        inputs.append(step.forward(inputs[-1]))
    return inputs


def pull_back_steps(steps: tuple[Step, ...], inputs: list[Tensor], g: Tensor) -> Tensor:
    """Rows g at the steps' output pulled back through them, right to left (``inputs``: ``step_inputs``)."""
    for step, x in zip(reversed(steps), reversed(inputs[:-1])):
        g = step.pullback(g, x)
    return g


@dataclass(frozen=True)
class KernelProjection:
    """KernelPCA scores p_b(z) = Σ_i D_bi k(x_i, z) + g_b over the fitted inputs x_i (I, D).

    ``dual_coef`` D (B, I) = (A − 1Āᵀ)ᵀ and ``intercept`` g (B,) = c Σ_i A_ib − Σ_i A_ib r_i, with A the
    eigenvectors scaled by 1/√eigenvalue and r, c the centring statistics of the fitted kernel
    (``derivations/blocks.py::prove_kernel_pca_centring``).
    """

    kernel: KernelCode
    fitted_inputs: Tensor
    dual_coef: Tensor
    intercept: Tensor
    params: dict[str, float]

    def _chunks(self, z: Tensor) -> int:
        per_row = max(1, self.fitted_inputs.shape[0] * self.fitted_inputs.shape[1])
        return max(1, KERNEL_CHUNK_VALUES // per_row)

    def scores(self, z: Tensor) -> Tensor:
        """KernelPCA scores of z (N, D) -> (N, B), in chunks that bound the memory used."""
        step = self._chunks(z)
        return torch.cat(
            [
                self.kernel.decision(part, self.fitted_inputs, self.dual_coef, self.intercept, **self.params)
                for part in z.split(step)
            ]
        )

    def pullback(self, g: Tensor, z: Tensor) -> Tensor:
        """g ∂p/∂z, with ∂p/∂z (N, B, D) the generated decision gradient of the kernel (in batch chunks:
        the stationary kernels form every (row, fitted input, feature) difference)."""
        step = self._chunks(z)
        jac = torch.cat(
            [
                self.kernel.decision_gradient(part, self.fitted_inputs, self.dual_coef, **self.params)
                for part in z.split(step)
            ]
        )
        return g @ jac

    @property
    def n_components(self) -> int:
        """B, the number of components."""
        return int(self.dual_coef.shape[0])

    @property
    def n_features(self) -> int:
        """D, the width of what the projection reads."""
        return int(self.fitted_inputs.shape[1])

    def to(self, like: Tensor) -> KernelProjection:
        """This projection with every tensor in ``like``'s dtype and device."""
        return moved(self, like)


@dataclass(frozen=True)
class TransformLayer:
    """Steps then a projection; ``scores`` and ``pullback`` have :class:`PCALayer`'s signatures."""

    steps: tuple[Step, ...]
    projection: PCALayer | KernelProjection

    def scores(self, q: Tensor) -> Tensor:
        """The scores of q after every step: (N, D) -> (N, B)."""
        return self.projection.scores(step_inputs(self.steps, q)[-1])

    def pullback(self, g: Tensor, q: Tensor) -> Tensor:
        """Rows g (N, K, B) at the scores pulled back to the layer's input (N, K, D), right to left."""
        inputs = step_inputs(self.steps, q)
        return pull_back_steps(self.steps, inputs, self.projection.pullback(g, inputs[-1]))

    @property
    def n_components(self) -> int:
        """B, the number of components."""
        return int(self.projection.n_components)

    @property
    def n_features(self) -> int:
        """D, the width of what the first step reads."""
        for step in self.steps:
            if isinstance(step, AffineStep):
                return int(step.scale.shape[0])
        return self.projection.n_features

    def to(self, like: Tensor) -> TransformLayer:
        """This layer with every tensor in ``like``'s dtype and device."""
        return moved(self, like)
