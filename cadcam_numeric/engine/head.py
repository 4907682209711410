"""Read a user's head (``torch.nn.Sequential``) into the layers the closed-form chain needs.

Accepted: an optional pooling module (``MaxPool2d``, ``AdaptiveMaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``),
an optional :class:`ChannelsLast` (Keras flatten order), ``Flatten``, eval-mode ``Dropout``, then ``Linear`` layers,
each optionally followed by ``BatchNorm1d`` (eval mode, folded into the layer), one catalogue
activation (``PReLU`` included, with its learned slopes; or a spec's own, see ``activation_modules``),
and eval-mode ``Dropout`` (a no-op); last, optionally, ``Softmax`` or ``LogSoftmax`` over the classes
(the class map then explains that output). No ``Linear`` at all (pooling and ``Flatten`` only) is a
head without a class output, for a PCA on the pooled features.
Nested ``Sequential`` containers are flattened. Anything else is refused with the list of what
the engine can differentiate — never silently skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.activation_modules import (
    ExpressionActivation,
    activation_from_module,
    supported_activation_modules,
)
from cadcam_numeric.engine.chain import DenseLayer
from cadcam_numeric.engine.layout import position_summed_first_layer
from cadcam_numeric.engine.pooling import POOLING_TYPES, Pooling
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import ACTIVATIONS

__all__ = ["ChannelsLast", "Head", "flatten_modules", "parse_head"]


class ChannelsLast(nn.Module):
    """(N, T, M, N') -> (N, M, N', T), so that a following ``Flatten`` gives the Keras (NHWC) order."""

    def forward(self, x: Tensor) -> Tensor:
        """(N, T, M, N') -> (N, M, N', T): Keras's flatten order for the next ``Flatten``."""
        return x.permute(0, 2, 3, 1)


def _check_custom_module(module: nn.Module, code: ActivationCode, params: dict[str, float], index: int) -> None:
    """A user's own activation class must compute the spec's expression: compare on a probe grid."""
    probe = torch.linspace(-6.0, 6.0, 49, dtype=torch.float64)
    with torch.no_grad():
        try:
            actual = module(probe.to(torch.float32)).double()
        except Exception as exc:
            raise CadcamInputError(f"head: the activation at position {index} failed on a probe input ({exc})") from exc
        expected = code.forward(probe, **params)
    if actual.shape != expected.shape or not torch.allclose(actual, expected, rtol=1e-4, atol=1e-5):
        raise CadcamInputError(
            f"head: {type(module).__name__} at position {index} does not compute the spec's activation "
            f"{code.name!r} (largest difference {float((actual - expected).abs().max()):.3g} on [-6, 6])"
        )


@dataclass(frozen=True)
class Head:
    """The head as the engine sees it: pooling, flatten layout and dense layers (q_l = f(W_l q + β_l))."""

    pooling: Pooling
    layers: list[DenseLayer]
    channels: int
    height: int
    width: int
    channels_last: bool
    output: Literal["softmax", "log_softmax"] | None = None

    @property
    def has_class_output(self) -> bool:
        """Whether the head ends in class scores (it has a Linear layer)."""
        return bool(self.layers)

    @property
    def pooled_size(self) -> tuple[int, int]:
        """(Ho, Wo) after the head's pooling."""
        return self.pooling.output_size(self.height, self.width)

    @property
    def num_outputs(self) -> int:
        """The number of class scores (0 without a Linear layer)."""
        return int(self.layers[-1].weight.shape[0]) if self.layers else 0

    def flatten(self, features: Tensor) -> Tensor:
        """x = flatten(pool(F)): channel-major (PyTorch) or channels-last (Keras), (N, D₀)."""
        pooled = self.pooling.forward(features)
        if self.channels_last:
            pooled = pooled.permute(0, 2, 3, 1)
        return pooled.flatten(1)

    def position_summed_weights(self) -> Tensor:
        """W̄₁ (D₁, T) with the pooling's row sums folded in (derivations/NOTES.md §3): once per head."""
        ho, wo = self.pooled_size
        r = self.pooling.row_sums(self.height, self.width, self.layers[0].weight)
        w1 = self.layers[0].weight
        d1 = w1.shape[0]
        if self.channels_last:
            scaled = (w1.reshape(d1, ho * wo, self.channels) * r[None, :, None]).reshape(d1, -1)
        else:
            scaled = (w1.reshape(d1, self.channels, ho * wo) * r[None, None, :]).reshape(d1, -1)
        return position_summed_first_layer(scaled, self.channels, ho * wo, self.channels_last)

    def input_rows_to_positions(self, dx: Tensor) -> Tensor:
        """Rows ∂(·)/∂x over the flattened pooled features (N, K, D₀) -> per pooled position (N, K, T, Ho, Wo)."""
        ho, wo = self.pooled_size
        n, k = dx.shape[:2]
        if self.channels_last:
            return dx.reshape(n, k, ho, wo, self.channels).permute(0, 1, 4, 2, 3)
        return dx.reshape(n, k, self.channels, ho, wo)

    def input_rows_to_channel_weights(self, dx: Tensor) -> Tensor:
        """w^t = Σ_j ∂(·)/∂x_j^t r_j over pooled positions j (r: the pooling's row sums), (N, K, T):
        the position sum of Eq. 9/10/14 for rows that start at x (PCA on the pooled features)."""
        ho, wo = self.pooled_size
        r = self.pooling.row_sums(self.height, self.width, dx).reshape(ho, wo)
        return (self.input_rows_to_positions(dx) * r).sum(dim=(-2, -1))

    def first_layer_to_positions(self, h1: Tensor) -> Tensor:
        """Rows h₁ = g₁ diag(f′(δ₁)) (N, K, D₁) -> ∂(·)/∂x per pooled position, (N, K, T, Ho, Wo)."""
        ho, wo = self.pooled_size
        dx = h1 @ self.layers[0].weight  # (N, K, D0)
        n, k = dx.shape[:2]
        if self.channels_last:
            return dx.reshape(n, k, ho, wo, self.channels).permute(0, 1, 4, 2, 3)
        return dx.reshape(n, k, self.channels, ho, wo)


def layer_cut(head: nn.Sequential, after: int) -> int:
    """Where dense layer ``after``'s activated output leaves ``head``: ``head[:cut](F)`` is q_after (0: the
    pooled, flattened features x). Read from the modules — the position of the head's ``after``-th
    ``Linear`` (0-based) — so pooling, dropout or batch norm between the layers are counted as they are.

    >>> from torch import nn
    >>> dense = [nn.Linear(8, 4), nn.ReLU(), nn.Dropout(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)]
    >>> head = nn.Sequential(nn.Flatten(), *dense)
    >>> layer_cut(head, 0), layer_cut(head, 1), layer_cut(head, 2)
    (1, 4, 6)
    """
    linears = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)]
    if not 0 <= after < len(linears):
        raise CadcamInputError(
            f"pca_after: expected 0..{len(linears) - 1} for a head with {len(linears)} Linear layers, got {after}"
        )
    return linears[after]


def flatten_modules(module: nn.Module) -> list[nn.Module]:
    """The modules of ``module`` with nested ``Sequential`` containers flattened, in order."""
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in flatten_modules(child)]
    return [module]


def _fold_batchnorm(weight: Tensor, bias: Tensor, bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor]:
    """Linear followed by eval-mode BatchNorm1d as one affine map: diag(s)(W x + b − μ) + β."""
    if bn.training:
        raise CadcamInputError("head: BatchNorm1d is in training mode; call head.eval() first")
    if bn.running_mean is None or bn.running_var is None:
        raise CadcamInputError("head: BatchNorm1d without running statistics cannot be folded")
    scale = 1.0 / torch.sqrt(bn.running_var.to(weight) + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.detach().to(weight)
    shift = -bn.running_mean.to(weight) * scale + (bn.bias.detach().to(weight) if bn.affine else 0.0)
    return weight * scale[:, None], bias * scale + shift


def _eval_dropout(module: nn.Dropout) -> None:
    if module.training and module.p > 0:
        raise CadcamInputError("head: Dropout is in training mode (random); call head.eval() first")


def _prefix(modules: list[nn.Module], channels_last: bool) -> tuple[nn.Module | None, bool, int]:
    """Optional pooling, optional :class:`ChannelsLast`, ``Flatten`` and eval-mode Dropout at the head's
    start: (pooling, channels_last, the index of the first dense module)."""
    pooling, index = None, 0
    if index < len(modules) and isinstance(modules[index], POOLING_TYPES):
        pooling, index = modules[index], index + 1
    if index < len(modules) and isinstance(modules[index], ChannelsLast):
        channels_last, index = True, index + 1
    if index >= len(modules) or not isinstance(modules[index], nn.Flatten):
        found = type(modules[index]).__name__ if index < len(modules) else "nothing"
        raise CadcamInputError(
            f"head: expected optional pooling (MaxPool2d, AdaptiveMaxPool2d, AvgPool2d, AdaptiveAvgPool2d) then "
            f"Flatten first, found {found} at position {index} (0-based)"
        )
    if modules[index].start_dim != 1 or modules[index].end_dim != -1:
        raise CadcamInputError("head: Flatten must flatten dims 1..-1 (the default)")
    index += 1
    while index < len(modules) and isinstance(modules[index], nn.Dropout):  # EfficientNet, MobileNet, AlexNet
        _eval_dropout(modules[index])
        index += 1
    return pooling, channels_last, index


def _softmax_output(candidate: nn.Module, index: int, last: int) -> str:
    if index != last or candidate.dim not in (None, 1, -1):
        raise CadcamInputError(
            f"head: {type(candidate).__name__} at position {index} must be the head's last module "
            "and act on the classes (dim=1 or -1)"
        )
    return "softmax" if isinstance(candidate, nn.Softmax) else "log_softmax"


def _activation_of(
    candidate: nn.Module, index: int, units: int, like: Tensor, custom: Mapping[str, ActivationCode] | None
) -> tuple[ActivationCode, dict]:
    """The catalogue activation a module computes, its parameters in ``like``'s dtype/device, checked."""
    found = activation_from_module(candidate, custom)
    if found is None:
        raise CadcamInputError(
            f"head: cannot differentiate {type(candidate).__name__} at position {index} (0-based). "
            f"Supported between Linear layers: one of {', '.join(supported_activation_modules())}, "
            "BatchNorm1d and Dropout in eval mode."
        )
    activation, params = found
    params = {k: v.to(like) if isinstance(v, Tensor) else v for k, v in params.items()}
    for name, value in params.items():  # PReLU: one learned slope, or one per unit of this layer
        if isinstance(value, Tensor) and value.numel() not in (1, units):
            raise CadcamInputError(
                f"head: {type(candidate).__name__} at position {index} has {value.numel()} values of "
                f"{name!r}, but its Linear has {units} units (expected 1 or {units})"
            )
    if not isinstance(candidate, ExpressionActivation) and any(activation is c for c in (custom or {}).values()):
        _check_custom_module(candidate, activation, params, index)  # the user's own class: check it computes it
    return activation, params


def _after_linear(
    modules: list[nn.Module], index: int, units: int, like: Tensor, custom: Mapping[str, ActivationCode] | None
) -> tuple[ActivationCode, dict, str | None, int]:
    """What follows a Linear up to the next one: at most one activation, eval Dropout, a final softmax."""
    activation, params, output = ACTIVATIONS["identity"], {}, None
    while index < len(modules) and not isinstance(modules[index], nn.Linear):
        candidate = modules[index]
        if isinstance(candidate, nn.Softmax | nn.LogSoftmax):
            output = _softmax_output(candidate, index, len(modules) - 1)
        elif isinstance(candidate, nn.Dropout):
            _eval_dropout(candidate)
        elif activation is not ACTIVATIONS["identity"] and activation_from_module(candidate, custom) is not None:
            raise CadcamInputError(
                f"head: cannot differentiate a second activation at position {index} (0-based). "
                f"Supported between Linear layers: one of {', '.join(supported_activation_modules())}, "
                "BatchNorm1d and Dropout in eval mode."
            )
        else:
            activation, params = _activation_of(candidate, index, units, like, custom)
        index += 1
    return activation, params, output, index


def _dense_layer(module: nn.Module, index: int, modules: list[nn.Module], like: Tensor) -> tuple[Tensor, Tensor, int]:
    """A Linear's weight and bias in ``like``'s dtype/device, a BatchNorm1d after it folded in."""
    if not isinstance(module, nn.Linear):
        raise CadcamInputError(
            f"head: expected Linear at position {index} (0-based), found {type(module).__name__}. "
            f"The engine differentiates Linear layers with these activations between them: "
            f"{', '.join(supported_activation_modules())}; plus BatchNorm1d (eval) and Dropout (eval)."
        )
    weight = module.weight.detach().to(like)
    bias = (module.bias.detach() if module.bias is not None else torch.zeros(weight.shape[0])).to(weight)
    index += 1
    if index < len(modules) and isinstance(modules[index], nn.BatchNorm1d):
        weight, bias = _fold_batchnorm(weight, bias, modules[index])
        index += 1
    return weight, bias, index


def _check_sizes(parsed: Head, features: Tensor, pooled: bool) -> None:
    layers, (ho, wo), t = parsed.layers, parsed.pooled_size, parsed.channels
    expected = t * ho * wo
    if layers and layers[0].weight.shape[1] != expected:
        raise CadcamInputError(
            f"features: shape {tuple(features.shape)} flattens to {t}x{ho}x{wo} = {expected} values"
            f"{' after pooling' if pooled else ''}, but the head's first Linear expects "
            f"in_features = {layers[0].weight.shape[1]}"
        )
    for i in range(1, len(layers)):
        if layers[i].weight.shape[1] != layers[i - 1].weight.shape[0]:
            raise CadcamInputError(
                f"head: Linear {i + 1} expects {layers[i].weight.shape[1]} inputs but Linear {i} gives "
                f"{layers[i - 1].weight.shape[0]}"
            )


def parse_head(
    head: nn.Module,
    features: Tensor,
    channels_last: bool = False,
    custom_activations: Mapping[str, ActivationCode] | None = None,
) -> Head:
    """Validate ``head`` against ``features`` (N, T, M, N') and extract its dense layers.

    Weights are taken in the features' dtype and device. ``channels_last`` (or a
    :class:`ChannelsLast` module before ``Flatten``) selects the Keras flatten order;
    ``custom_activations`` are a spec's generated activations, for heads that use the user's own
    activation classes.
    """
    if not isinstance(head, nn.Sequential):
        raise CadcamInputError(f"head: expected a torch.nn.Sequential, got {type(head).__name__}")
    modules = flatten_modules(head)
    _, t, m, n = features.shape
    pooling, channels_last, index = _prefix(modules, channels_last)
    like = torch.zeros((), dtype=features.dtype, device=features.device)
    layers: list[DenseLayer] = []
    output = None
    while index < len(modules):
        weight, bias, index = _dense_layer(modules[index], index, modules, like)
        activation, params, output, index = _after_linear(modules, index, weight.shape[0], like, custom_activations)
        layers.append(DenseLayer(weight, bias, activation, params))
    parsed = Head(Pooling(pooling), layers, t, m, n, channels_last, output)
    _check_sizes(parsed, features, pooling is not None)
    return parsed
