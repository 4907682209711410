# GENERATED FILE - DO NOT EDIT BY HAND.
# Written by `python -m derivations generate` from the catalogue in `derivations/`
# and the template derivations/codegen/templates/activations.py.j2;
# `python -m derivations check` fails on any difference from a fresh generation.
# catalogue sha256: c9f43f59232ee47cfc1994e1f95fcdaaccf404d7c06a6bfa8dc14312e6b5adc5
# generator: SymPy 1.14.0, formatted by ruff 0.17.6
"""Activation functions f and their derivatives f' for every catalogue entry, batched.

Every function acts elementwise on a tensor of any shape; the result has the input's dtype
and device. Derivatives take the pre-activation delta (paper Eq. 16) and are the stable forms
proved equal to d/dz of each textbook definition in `derivations.blocks`.
"""

import torch
from torch import Tensor

from cadcam_numeric.catalogue_types import ActivationCode, ParameterInfo

__all__ = [
    "ACTIVATIONS",
    "elu",
    "elu_derivative",
    "gelu",
    "gelu_derivative",
    "gelu_tanh",
    "gelu_tanh_derivative",
    "hardswish",
    "hardswish_derivative",
    "hardtanh",
    "hardtanh_derivative",
    "identity",
    "identity_derivative",
    "leaky_relu",
    "leaky_relu_derivative",
    "mish",
    "mish_derivative",
    "prelu",
    "prelu_derivative",
    "relu",
    "relu6",
    "relu6_derivative",
    "relu_derivative",
    "selu",
    "selu_derivative",
    "sigmoid",
    "sigmoid_derivative",
    "silu",
    "silu_derivative",
    "softplus",
    "softplus_derivative",
    "softsign",
    "softsign_derivative",
    "tanh",
    "tanh_derivative",
]


def identity(z: Tensor) -> Tensor:
    """identity: f(z) = z.

    f(z) = z
    """
    return z


def identity_derivative(z: Tensor) -> Tensor:
    """Derivative of identity (PyTorch module `torch.nn.Identity`).

    f'(z) = 1
    """
    return torch.zeros_like(z) + 1


def relu(z: Tensor) -> Tensor:
    """relu: f(z) = max(0, z).

    f(z) = Piecewise((z, z > 0), (0, True))
    """
    return torch.where((z > 0), z, torch.zeros_like(z) + 0)


def relu_derivative(z: Tensor) -> Tensor:
    """Derivative of relu (PyTorch module `torch.nn.ReLU`).

    f'(z) = Piecewise((1, z > 0), (0, True))
    At the kinks it takes PyTorch's autograd values: f'(0) = 0.
    """
    return torch.where((z > 0), torch.zeros_like(z) + 1, torch.zeros_like(z) + 0)


def leaky_relu(z: Tensor, negative_slope: float = 0.01) -> Tensor:
    """leaky relu: f(z) = z if z > 0 else negative_slope * z.

    f(z) = Piecewise((z, z > 0), (negative_slope*z, True))
    """
    return torch.where((z > 0), z, negative_slope * z)


def leaky_relu_derivative(z: Tensor, negative_slope: float = 0.01) -> Tensor:
    """Derivative of leaky_relu (PyTorch module `torch.nn.LeakyReLU`).

    f'(z) = Piecewise((1, z > 0), (negative_slope, True))
    At the kinks it takes PyTorch's autograd values: f'(0) = negative_slope.
    """
    return torch.where((z > 0), torch.zeros_like(z) + 1, torch.zeros_like(z) + negative_slope)


def prelu(z: Tensor, weight: float = 0.25) -> Tensor:
    """prelu: f(z) = z if z > 0 else weight * z (weight learned; one per unit or shared).

    f(z) = Piecewise((z, z > 0), (weight*z, True))
    """
    return torch.where((z > 0), z, weight * z)


def prelu_derivative(z: Tensor, weight: float = 0.25) -> Tensor:
    """Derivative of prelu (PyTorch module `torch.nn.PReLU`).

    f'(z) = Piecewise((1, z > 0), (weight, True))
    At the kinks it takes PyTorch's autograd values: f'(0) = weight.
    """
    return torch.where((z > 0), torch.zeros_like(z) + 1, torch.zeros_like(z) + weight)


def elu(z: Tensor, alpha: float = 1.0) -> Tensor:
    """elu: f(z) = z if z > 0 else alpha * (exp(z) - 1).

    f(z) = Piecewise((z, z > 0), (alpha*expm1(z), True))
    """
    return torch.where((z > 0), z, alpha * torch.expm1(z))


def elu_derivative(z: Tensor, alpha: float = 1.0) -> Tensor:
    """Derivative of elu (PyTorch module `torch.nn.ELU`).

    f'(z) = Piecewise((1, z > 0), (alpha*exp(z), True))
    At the kinks it takes PyTorch's autograd values: f'(0) = alpha.
    """
    return torch.where((z > 0), torch.zeros_like(z) + 1, alpha * torch.exp(z))


def selu(z: Tensor) -> Tensor:
    """selu: f(z) = scale * (z if z > 0 else alpha * (exp(z) - 1)), fixed alpha, scale.

    f(z) = 1.0507009873554804934193349852946*Piecewise((z, z > 0), (1.6732632423543772848170429916717*expm1(z), True))
    """
    return 1.0507009873554805 * torch.where((z > 0), z, 1.6732632423543772 * torch.expm1(z))


def selu_derivative(z: Tensor) -> Tensor:
    """Derivative of selu (PyTorch module `torch.nn.SELU`).

    f'(z) = 1.0507009873554804934193349852946*Piecewise((1, z > 0), (1.6732632423543772848170429916717*exp(z), True))
    At the kinks it takes PyTorch's autograd values: f'(0) = 1.7580993408473769.
    """
    return 1.0507009873554805 * torch.where(
        (z > 0), torch.zeros_like(z) + 1, 1.6732632423543772 * torch.exp(z)
    )


def sigmoid(z: Tensor) -> Tensor:
    """sigmoid: f(z) = 1 / (1 + exp(-z)).

    f(z) = Sigmoid(z)
    """
    return torch.sigmoid(z)


def sigmoid_derivative(z: Tensor) -> Tensor:
    """Derivative of sigmoid (PyTorch module `torch.nn.Sigmoid`).

    f'(z) = (1 - Sigmoid(z))*Sigmoid(z)
    """
    t0 = torch.sigmoid(z)
    return t0 * (1 - t0)


def tanh(z: Tensor) -> Tensor:
    """tanh: f(z) = tanh(z).

    f(z) = tanh(z)
    """
    return torch.tanh(z)


def tanh_derivative(z: Tensor) -> Tensor:
    """Derivative of tanh (PyTorch module `torch.nn.Tanh`).

    f'(z) = 1 - tanh(z)**2
    """
    return 1 - torch.pow(torch.tanh(z), 2)


def softplus(z: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """softplus: f(z) = log(1 + exp(beta z)) / beta, and z where beta z > threshold (PyTorch).

    f(z) = Piecewise((z, threshold < beta*z), (Softplus(beta*z)/beta, True))
    """
    t0 = beta * z
    return torch.where((t0 > threshold), z, torch.logaddexp(t0, torch.zeros_like(t0)) / beta)


def softplus_derivative(z: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Derivative of softplus (PyTorch module `torch.nn.Softplus`).

    f'(z) = Piecewise((1, threshold < beta*z), (Sigmoid(beta*z), True))
    """
    t0 = beta * z
    return torch.where((t0 > threshold), torch.zeros_like(z) + 1, torch.sigmoid(t0))


def gelu(z: Tensor) -> Tensor:
    """gelu: f(z) = z Phi(z) = z (1 + erf(z / sqrt 2)) / 2.

    f(z) = z*(erf(sqrt(2)*z/2) + 1)/2
    """
    return 0.5 * z * (torch.erf(0.7071067811865476 * z) + 1)


def gelu_derivative(z: Tensor) -> Tensor:
    """Derivative of gelu (PyTorch module `torch.nn.GELU`).

    f'(z) = sqrt(2)*z*exp(-z**2/2)/(2*sqrt(pi)) + erf(sqrt(2)*z/2)/2 + 1/2
    """
    return (
        0.3989422804014327 * z * torch.exp(-0.5 * torch.pow(z, 2))
        + 0.5 * torch.erf(0.7071067811865476 * z)
        + 0.5
    )


def gelu_tanh(z: Tensor) -> Tensor:
    """gelu tanh: f(z) = z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2.

    f(z) = z*(tanh(sqrt(2)*(8943*z**3/200000 + z)/sqrt(pi)) + 1)/2
    """
    return (
        0.5 * z * (torch.tanh(0.035677408136300125 * torch.pow(z, 3) + 0.7978845608028654 * z) + 1)
    )


def gelu_tanh_derivative(z: Tensor) -> Tensor:
    """Derivative of gelu_tanh (PyTorch module `torch.nn.GELU`).

    f'(z) = sqrt(2)*z*(1 - tanh(sqrt(2)*(8943*z**3/200000 + z)/sqrt(pi))**2)*(26829*z**2/200000 + 1)/(2*sqrt(pi)) + tanh(sqrt(2)*(8943*z**3/200000 + z)/sqrt(pi))/2 + 1/2
    """
    t0 = torch.tanh(0.035677408136300125 * torch.pow(z, 3) + 0.7978845608028654 * z)
    return (
        0.5 * t0
        + 0.3989422804014327 * z * (1 - torch.pow(t0, 2)) * (0.134145 * torch.pow(z, 2) + 1)
        + 0.5
    )


def silu(z: Tensor) -> Tensor:
    """silu: f(z) = z sigmoid(z).

    f(z) = z*Sigmoid(z)
    """
    return z * torch.sigmoid(z)


def silu_derivative(z: Tensor) -> Tensor:
    """Derivative of silu (PyTorch module `torch.nn.SiLU`).

    f'(z) = z*(1 - Sigmoid(z))*Sigmoid(z) + Sigmoid(z)
    """
    t0 = torch.sigmoid(z)
    return t0 * z * (1 - t0) + t0


def mish(z: Tensor) -> Tensor:
    """mish: f(z) = z tanh(softplus(z)).

    f(z) = z*tanh(Softplus(z))
    """
    return z * torch.tanh(torch.logaddexp(z, torch.zeros_like(z)))


def mish_derivative(z: Tensor) -> Tensor:
    """Derivative of mish (PyTorch module `torch.nn.Mish`).

    f'(z) = z*(1 - tanh(Softplus(z))**2)*Sigmoid(z) + tanh(Softplus(z))
    """
    t0 = torch.tanh(torch.logaddexp(z, torch.zeros_like(z)))
    return t0 + z * (1 - torch.pow(t0, 2)) * torch.sigmoid(z)


def softsign(z: Tensor) -> Tensor:
    """softsign: f(z) = z / (1 + |z|).

    f(z) = z/(Abs(z) + 1)
    """
    return z / (torch.abs(z) + 1)


def softsign_derivative(z: Tensor) -> Tensor:
    """Derivative of softsign (PyTorch module `torch.nn.Softsign`).

    f'(z) = (Abs(z) + 1)**(-2)
    """
    return torch.pow(torch.abs(z) + 1, -2)


def hardtanh(z: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """hardtanh: f(z) = min(max(z, min_val), max_val).

    f(z) = Piecewise((min_val, min_val >= z), (max_val, max_val <= z), (z, True))
    """
    return torch.where(
        (min_val >= z),
        torch.zeros_like(z) + min_val,
        torch.where((max_val <= z), torch.zeros_like(z) + max_val, z),
    )


def hardtanh_derivative(z: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """Derivative of hardtanh (PyTorch module `torch.nn.Hardtanh`).

    f'(z) = Piecewise((0, (min_val >= z) | (max_val <= z)), (1, True))
    At the kinks it takes PyTorch's autograd values: f'(min_val) = 0, f'(max_val) = 0.
    """
    return torch.where(
        ((min_val >= z) | (max_val <= z)), torch.zeros_like(z) + 0, torch.zeros_like(z) + 1
    )


def relu6(z: Tensor) -> Tensor:
    """relu6: f(z) = min(max(z, 0), 6).

    f(z) = Piecewise((0, z <= 0), (6, z >= 6), (z, True))
    """
    return torch.where(
        (z <= 0), torch.zeros_like(z) + 0, torch.where((z >= 6), torch.zeros_like(z) + 6, z)
    )


def relu6_derivative(z: Tensor) -> Tensor:
    """Derivative of relu6 (PyTorch module `torch.nn.ReLU6`).

    f'(z) = Piecewise((0, (z >= 6) | (z <= 0)), (1, True))
    At the kinks it takes PyTorch's autograd values: f'(0) = 0, f'(6) = 0.
    """
    return torch.where(((z >= 6) | (z <= 0)), torch.zeros_like(z) + 0, torch.zeros_like(z) + 1)


def hardswish(z: Tensor) -> Tensor:
    """hardswish: f(z) = z * min(max(z + 3, 0), 6) / 6.

    f(z) = Piecewise((0, z <= -3), (z, z >= 3), (z*(z + 3)/6, True))
    """
    return torch.where(
        (z <= -3),
        torch.zeros_like(z) + 0,
        torch.where((z >= 3), z, 0.16666666666666666 * z * (z + 3)),
    )


def hardswish_derivative(z: Tensor) -> Tensor:
    """Derivative of hardswish (PyTorch module `torch.nn.Hardswish`).

    f'(z) = Piecewise((0, z <= -3), (1, z >= 3), (z/3 + 1/2, True))
    At the kinks it takes PyTorch's autograd values: f'(-3) = 0, f'(3) = 1.
    """
    return torch.where(
        (z <= -3),
        torch.zeros_like(z) + 0,
        torch.where((z >= 3), torch.zeros_like(z) + 1, 0.3333333333333333 * z + 0.5),
    )


#: name -> generated code and the PyTorch module it corresponds to.
ACTIVATIONS: dict[str, ActivationCode] = {
    "identity": ActivationCode(
        name="identity",
        forward=identity,
        derivative=identity_derivative,
        torch_module="torch.nn.Identity",
        torch_fixed={},
        parameters={},
        kinks=(),
    ),
    "relu": ActivationCode(
        name="relu",
        forward=relu,
        derivative=relu_derivative,
        torch_module="torch.nn.ReLU",
        torch_fixed={},
        parameters={},
        kinks=("0",),
    ),
    "leaky_relu": ActivationCode(
        name="leaky_relu",
        forward=leaky_relu,
        derivative=leaky_relu_derivative,
        torch_module="torch.nn.LeakyReLU",
        torch_fixed={},
        parameters={"negative_slope": ParameterInfo("negative_slope", 0.01, 0.0, 1.0)},
        kinks=("0",),
    ),
    "prelu": ActivationCode(
        name="prelu",
        forward=prelu,
        derivative=prelu_derivative,
        torch_module="torch.nn.PReLU",
        torch_fixed={},
        parameters={"weight": ParameterInfo("init", 0.25, 0.0, 1.0)},
        kinks=("0",),
    ),
    "elu": ActivationCode(
        name="elu",
        forward=elu,
        derivative=elu_derivative,
        torch_module="torch.nn.ELU",
        torch_fixed={},
        parameters={"alpha": ParameterInfo("alpha", 1.0, 0.1, 3.0)},
        kinks=("0",),
    ),
    "selu": ActivationCode(
        name="selu",
        forward=selu,
        derivative=selu_derivative,
        torch_module="torch.nn.SELU",
        torch_fixed={},
        parameters={},
        kinks=("0",),
    ),
    "sigmoid": ActivationCode(
        name="sigmoid",
        forward=sigmoid,
        derivative=sigmoid_derivative,
        torch_module="torch.nn.Sigmoid",
        torch_fixed={},
        parameters={},
        kinks=(),
    ),
    "tanh": ActivationCode(
        name="tanh",
        forward=tanh,
        derivative=tanh_derivative,
        torch_module="torch.nn.Tanh",
        torch_fixed={},
        parameters={},
        kinks=(),
    ),
    "softplus": ActivationCode(
        name="softplus",
        forward=softplus,
        derivative=softplus_derivative,
        torch_module="torch.nn.Softplus",
        torch_fixed={},
        parameters={
            "beta": ParameterInfo("beta", 1.0, 0.25, 4.0),
            "threshold": ParameterInfo("threshold", 20.0, 1.0, 30.0),
        },
        kinks=(),
    ),
    "gelu": ActivationCode(
        name="gelu",
        forward=gelu,
        derivative=gelu_derivative,
        torch_module="torch.nn.GELU",
        torch_fixed={"approximate": "none"},
        parameters={},
        kinks=(),
    ),
    "gelu_tanh": ActivationCode(
        name="gelu_tanh",
        forward=gelu_tanh,
        derivative=gelu_tanh_derivative,
        torch_module="torch.nn.GELU",
        torch_fixed={"approximate": "tanh"},
        parameters={},
        kinks=(),
    ),
    "silu": ActivationCode(
        name="silu",
        forward=silu,
        derivative=silu_derivative,
        torch_module="torch.nn.SiLU",
        torch_fixed={},
        parameters={},
        kinks=(),
    ),
    "mish": ActivationCode(
        name="mish",
        forward=mish,
        derivative=mish_derivative,
        torch_module="torch.nn.Mish",
        torch_fixed={},
        parameters={},
        kinks=(),
    ),
    "softsign": ActivationCode(
        name="softsign",
        forward=softsign,
        derivative=softsign_derivative,
        torch_module="torch.nn.Softsign",
        torch_fixed={},
        parameters={},
        kinks=(),
    ),
    "hardtanh": ActivationCode(
        name="hardtanh",
        forward=hardtanh,
        derivative=hardtanh_derivative,
        torch_module="torch.nn.Hardtanh",
        torch_fixed={},
        parameters={
            "min_val": ParameterInfo("min_val", -1.0, -3.0, -0.1),
            "max_val": ParameterInfo("max_val", 1.0, 0.1, 3.0),
        },
        kinks=("min_val", "max_val"),
    ),
    "relu6": ActivationCode(
        name="relu6",
        forward=relu6,
        derivative=relu6_derivative,
        torch_module="torch.nn.ReLU6",
        torch_fixed={},
        parameters={},
        kinks=("0", "6"),
    ),
    "hardswish": ActivationCode(
        name="hardswish",
        forward=hardswish,
        derivative=hardswish_derivative,
        torch_module="torch.nn.Hardswish",
        torch_fixed={},
        parameters={},
        kinks=("-3", "3"),
    ),
}
