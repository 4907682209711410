"""How maps are formed from the closed-form gradients: one registry of small rules.

Every rule turns the features F (N, T, M, N′), the channel weights w (N, R, T) of R rows and — only
for the rules that ask for them — the position gradients ∂(·)/∂F (N, R, T, M, N′) into signed maps
(N, R, M, N′), before any ReLU:

* ``"grad-cam"``  — Σ_t w^t F^t, with w^t = Σ_i ∂/∂F_i^t (Selvaraju et al. 2017; the paper's Eq. 9, 10, 14);
* ``"xgrad-cam"`` — Σ_t x^t F^t, x^t = Σ_i F_i^t/(Σ_j F_j^t + 1e-7) · ∂/∂F_i^t (Fu et al. 2020;
  pytorch-grad-cam's ε);
* ``"hires-cam"`` — Σ_t ∂/∂F^t ⊙ F^t, elementwise (Draelos & Carin 2020).

Adding a method is one entry of :data:`MAP_METHODS`; the CLI's choices, the evaluation's labels,
:class:`~cadcam_numeric.engine.closed_form.ClosedForm` and ``explain`` read it.

>>> import torch
>>> f = torch.ones(1, 2, 3, 3)
>>> w = torch.tensor([[[1.0, -2.0]]])                  # one row: w¹ = 1, w² = −2
>>> signed_maps("grad-cam", f, w, lambda: None)[0, 0, 0, 0].item()
-1.0
>>> sorted(METHOD_LABELS.items())[0]
('grad-cam', 'Grad-CAM')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from cadcam_numeric.names import METHOD_LABELS

__all__ = ["MAP_METHODS", "METHODS", "METHOD_LABELS", "XGRAD_EPS", "MapMethod", "Method", "signed_maps"]

XGRAD_EPS = 1e-7

#: the name of a map method: a key of :data:`MAP_METHODS` (checked where a method is chosen)
Method = str


def _weighted_sum(weights: Tensor, features: Tensor) -> Tensor:
    """Σ_t w^t F^t: (N, R, T), (N, T, M, N') -> (N, R, M, N')."""
    return torch.einsum("nrt,nthw->nrhw", weights, features)


def _grad_cam(features: Tensor, weights: Tensor, gradients: Tensor | None) -> Tensor:
    return _weighted_sum(weights, features)


def _xgrad_cam(features: Tensor, weights: Tensor, gradients: Tensor) -> Tensor:
    total = features.sum(dim=(-2, -1), keepdim=True).unsqueeze(1)
    xweights = (gradients * features.unsqueeze(1) / (total + XGRAD_EPS)).sum(dim=(-2, -1))
    return _weighted_sum(xweights, features)


def _hires_cam(features: Tensor, weights: Tensor, gradients: Tensor) -> Tensor:
    return (gradients * features.unsqueeze(1)).sum(2)


@dataclass(frozen=True)
class MapMethod:
    """One way of forming maps: its ``label`` in tables and figures, whether its ``rule`` needs the
    position gradients, and the ``rule`` (features, weights, gradients or None) -> signed maps."""

    label: str
    needs_position_gradients: bool
    rule: Callable[[Tensor, Tensor, Tensor | None], Tensor]


#: key -> rule; the one registry of map methods
MAP_METHODS: dict[str, MapMethod] = {
    "grad-cam": MapMethod(METHOD_LABELS["grad-cam"], False, _grad_cam),
    "xgrad-cam": MapMethod(METHOD_LABELS["xgrad-cam"], True, _xgrad_cam),
    "hires-cam": MapMethod(METHOD_LABELS["hires-cam"], True, _hires_cam),
}
if list(MAP_METHODS) != list(METHOD_LABELS):  # the names are cadcam_numeric.names' (torch-free, for the CLI)
    raise ImportError("map_methods: MAP_METHODS must hold one rule per key of cadcam_numeric.names.METHOD_LABELS")
METHODS = tuple(MAP_METHODS)


def signed_maps(method: str, features: Tensor, weights: Tensor, gradients: Callable[[], Tensor | None]) -> Tensor:
    """Signed maps (N, R, M, N′) of every row by ``method``'s rule (module docstring).

    Args:
        method: a key of :data:`MAP_METHODS`.
        features: F (N, T, M, N′).
        weights: channel weights (N, R, T).
        gradients: gives ∂(·)/∂F per position (N, R, T, M, N′); called only by rules that need it.

    Returns:
        (N, R, M, N′), before any ReLU.
    """
    rule = MAP_METHODS[method]
    return rule.rule(features, weights, gradients() if rule.needs_position_gradients else None)
