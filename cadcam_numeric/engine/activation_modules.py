"""Map PyTorch activation modules to generated catalogue code and back.

``activation_from_module(torch.nn.LeakyReLU(0.2))`` gives the generated ``leaky_relu`` code and
``{"negative_slope": 0.2}``; ``activation_module("leaky_relu", negative_slope=0.2)`` builds the
module. The correspondence (class, fixed attributes such as GELU's ``approximate``, and which
attribute carries each parameter) is part of the catalogue in ``derivations.activations``.

Activations an architecture spec defines (``cadcam derive SPEC``) map either to
:class:`ExpressionActivation`, the module built from the generated forward of the same
expression, or to the user's own class named in the spec (matched by its qualified name,
never imported; its parameters are read from attributes of the same names).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.generated import ACTIVATIONS

__all__ = ["ExpressionActivation", "activation_from_module", "activation_module", "supported_activation_modules"]


class ExpressionActivation(nn.Module):
    """f(z) of a spec's custom activation, computed by its generated code (autograd flows through it)."""

    def __init__(self, code: ActivationCode, **parameters: float) -> None:
        super().__init__()
        unknown = set(parameters) - set(code.parameters)
        if unknown:
            raise TypeError(f"activation {code.name!r} has no parameter(s) {sorted(unknown)}")
        self.code = code
        self.parameters_ = {k: float(parameters.get(k, info.default)) for k, info in code.parameters.items()}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """f(z) elementwise, by the generated code with this module's parameters."""
        return self.code.forward(z, **self.parameters_)

    def extra_repr(self) -> str:
        """The activation's name and its parameters, as ``print(module)`` shows them."""
        return ", ".join([self.code.name, *(f"{k}={v:g}" for k, v in self.parameters_.items())])


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _module_class(dotted: str) -> type[nn.Module]:
    module_path, _, cls = dotted.rpartition(".")
    if module_path != "torch.nn":
        raise ValueError(f"catalogue names a module outside torch.nn: {dotted}")
    return getattr(nn, cls)


def activation_module(name: str, **parameters: float) -> nn.Module:
    """The PyTorch module of catalogue entry ``name`` with the given parameters."""
    if name not in ACTIVATIONS:
        raise KeyError(f"unknown activation {name!r}; the catalogue has: {', '.join(ACTIVATIONS)}")
    code = ACTIVATIONS[name]
    unknown = set(parameters) - set(code.parameters)
    if unknown:
        raise TypeError(
            f"activation {name!r} has no parameter(s) {sorted(unknown)}; it takes {sorted(code.parameters)}"
        )
    kwargs = {code.parameters[k].attribute: v for k, v in parameters.items()}
    return _module_class(code.torch_module)(**kwargs, **code.torch_fixed)


def supported_activation_modules() -> list[str]:
    """Human-readable list of the modules the engine can differentiate."""
    out = []
    for code in ACTIVATIONS.values():
        fixed = ", ".join(f"{k}={v!r}" for k, v in code.torch_fixed.items())
        out.append(f"{code.torch_module}({fixed})" if fixed else code.torch_module)
    return out


def activation_from_module(
    module: nn.Module, custom: Mapping[str, ActivationCode] | None = None
) -> tuple[ActivationCode, dict[str, float]] | None:
    """Catalogue code and parameters for ``module``, or None when it is not a known activation.

    ``custom``: a spec's generated activations (``load_custom_code(...).activations``), matched
    to the user's own module classes by qualified name.
    """
    if isinstance(module, ExpressionActivation):
        return module.code, dict(module.parameters_)
    if type(module) is nn.PReLU:  # its learned slopes (one, or one per unit), not the constructor's init
        weight = module.weight.detach()
        return ACTIVATIONS["prelu"], {"weight": float(weight.item()) if weight.numel() == 1 else weight.clone()}
    for code in (custom or {}).values():
        if _qualified_name(type(module)) == code.torch_module:
            params = {}
            for pname, info in code.parameters.items():
                value = getattr(module, info.attribute, info.default)
                params[pname] = float(value.item() if isinstance(value, torch.Tensor) else value)
            return code, params
    for code in ACTIVATIONS.values():
        cls = _module_class(code.torch_module)
        if type(module) is not cls:
            continue
        if any(getattr(module, k, None) != v for k, v in code.torch_fixed.items()):
            continue
        params = {}
        for pname, info in code.parameters.items():
            value = getattr(module, info.attribute)
            params[pname] = float(value.item() if isinstance(value, torch.Tensor) else value)
        return code, params
    return None
