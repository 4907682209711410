"""Record types the generated modules fill in (hand-written; the generated code imports them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from torch import Tensor

__all__ = ["ActivationCode", "KernelCode", "ParameterInfo"]


class ParameterInfo(NamedTuple):
    """A scalar parameter: where to read it, its default, and the range the property tests draw from."""

    attribute: str
    default: float | None
    low: float
    high: float
    integer: bool = False


@dataclass(frozen=True)
class ActivationCode:
    """Generated forward f and derivative f' of one activation, and its PyTorch module.

    ``torch_module`` is the dotted class name (``"torch.nn.LeakyReLU"``); ``torch_fixed`` holds
    module attributes that select this entry (``{"approximate": "tanh"}`` for GELU-tanh);
    ``parameters`` maps each keyword of ``forward``/``derivative`` to the module attribute.
    """

    name: str
    forward: Callable[..., Tensor]
    derivative: Callable[..., Tensor]
    torch_module: str
    torch_fixed: dict[str, str]
    parameters: dict[str, ParameterInfo]
    kinks: tuple[str, ...]


@dataclass(frozen=True)
class KernelCode:
    """Generated kernel, decision and decision gradient of one scikit-learn SVM kernel."""

    name: str
    kind: Literal["dot_product", "stationary"]
    kernel: Callable[..., Tensor]
    decision: Callable[..., Tensor]
    decision_gradient: Callable[..., Tensor]
    profile: Callable[..., Tensor]
    profile_derivative: Callable[..., Tensor]
    parameters: dict[str, ParameterInfo]
