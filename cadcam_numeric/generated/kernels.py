# GENERATED FILE - DO NOT EDIT BY HAND.
# Written by `python -m derivations generate` from the catalogue in `derivations/`
# and the template derivations/codegen/templates/kernels.py.j2;
# `python -m derivations check` fails on any difference from a fresh generation.
# catalogue sha256: c9f43f59232ee47cfc1994e1f95fcdaaccf404d7c06a6bfa8dc14312e6b5adc5
# generator: SymPy 1.14.0, formatted by ruff 0.17.6
"""SVM kernels K(p_i, p) as scikit-learn defines them, and the decision gradient (Eq. 24-26).

Shapes: inputs p (..., B); support vectors (I, B); dual coefficients alpha_i c_i (K, I) for K
decision functions; intercepts (K,). Kernel values (..., I); decisions (..., K); gradients
d a_k / d p as (..., K, B). Dtype and device follow the inputs.

Dot-product kernels K = k(u), u = p_i^T p:      d a/d p = sum_i alpha_i c_i k'(u_i) p_i^T
Stationary kernels  K = k(rho), rho = |p_i - p|^2: d a/d p = sum_i alpha_i c_i 2 k'(rho_i) (p - p_i)^T
"""

import torch
from torch import Tensor

from cadcam_numeric.catalogue_types import KernelCode, ParameterInfo

__all__ = [
    "KERNELS",
    "dot_products",
    "linear_decision",
    "linear_decision_gradient",
    "linear_kernel",
    "linear_profile",
    "linear_profile_derivative",
    "poly_decision",
    "poly_decision_gradient",
    "poly_kernel",
    "poly_profile",
    "poly_profile_derivative",
    "rbf_decision",
    "rbf_decision_gradient",
    "rbf_kernel",
    "rbf_profile",
    "rbf_profile_derivative",
    "sigmoid_decision",
    "sigmoid_decision_gradient",
    "sigmoid_kernel",
    "sigmoid_profile",
    "sigmoid_profile_derivative",
    "squared_distances",
]


def dot_products(p: Tensor, support_vectors: Tensor) -> Tensor:
    """u_i = p_i^T p for every support vector: (..., B), (I, B) -> (..., I)."""
    return p @ support_vectors.transpose(-1, -2)


def squared_distances(p: Tensor, support_vectors: Tensor) -> Tensor:
    """rho_i = |p_i - p|^2, summed exactly (no |p|^2 + |s|^2 - 2 p.s cancellation)."""
    return ((p.unsqueeze(-2) - support_vectors) ** 2).sum(-1)


def linear_profile(u: Tensor) -> Tensor:
    """k(u) = u."""
    return u


def linear_profile_derivative(u: Tensor) -> Tensor:
    """k'(u) = 1."""
    return torch.zeros_like(u) + 1


def linear_kernel(p: Tensor, support_vectors: Tensor) -> Tensor:
    """K(s, p) = <s, p>: (..., B), (I, B) -> (..., I)."""
    return linear_profile(dot_products(p, support_vectors))


def linear_decision(
    p: Tensor, support_vectors: Tensor, dual_coef: Tensor, intercept: Tensor
) -> Tensor:
    """a_k(p) = sum_i alpha_i c_i K(p_i, p) + g_k (Eq. 6): -> (..., K)."""
    return linear_kernel(p, support_vectors) @ dual_coef.transpose(-1, -2) + intercept


def linear_decision_gradient(p: Tensor, support_vectors: Tensor, dual_coef: Tensor) -> Tensor:
    """d a_k / d p = sum_i alpha_i c_i grad_p K(p_i, p) (Eq. 24): -> (..., K, B).

    d a/d p = sum_i alpha_i c_i k'(p_i^T p) p_i^T
    """
    weights = dual_coef * linear_profile_derivative(dot_products(p, support_vectors)).unsqueeze(-2)
    return weights @ support_vectors


def poly_profile(u: Tensor, gamma: float, coef0: float, degree: int) -> Tensor:
    """k(u) = (coef0 + gamma*u)**degree."""
    return torch.pow(coef0 + gamma * u, degree)


def poly_profile_derivative(u: Tensor, gamma: float, coef0: float, degree: int) -> Tensor:
    """k'(u) = degree*gamma*(coef0 + gamma*u)**(degree - 1)."""
    return degree * gamma * torch.pow(coef0 + gamma * u, degree - 1)


def poly_kernel(
    p: Tensor, support_vectors: Tensor, gamma: float, coef0: float, degree: int
) -> Tensor:
    """K(s, p) = (gamma <s, p> + coef0)^degree: (..., B), (I, B) -> (..., I)."""
    return poly_profile(dot_products(p, support_vectors), gamma, coef0, degree)


def poly_decision(
    p: Tensor,
    support_vectors: Tensor,
    dual_coef: Tensor,
    intercept: Tensor,
    gamma: float,
    coef0: float,
    degree: int,
) -> Tensor:
    """a_k(p) = sum_i alpha_i c_i K(p_i, p) + g_k (Eq. 6): -> (..., K)."""
    return (
        poly_kernel(p, support_vectors, gamma, coef0, degree) @ dual_coef.transpose(-1, -2)
        + intercept
    )


def poly_decision_gradient(
    p: Tensor, support_vectors: Tensor, dual_coef: Tensor, gamma: float, coef0: float, degree: int
) -> Tensor:
    """d a_k / d p = sum_i alpha_i c_i grad_p K(p_i, p) (Eq. 24): -> (..., K, B).

    d a/d p = sum_i alpha_i c_i k'(p_i^T p) p_i^T
    """
    weights = dual_coef * poly_profile_derivative(
        dot_products(p, support_vectors), gamma, coef0, degree
    ).unsqueeze(-2)
    return weights @ support_vectors


def rbf_profile(u: Tensor, gamma: float) -> Tensor:
    """k(u) = exp(-gamma*u)."""
    return torch.exp(-gamma * u)


def rbf_profile_derivative(u: Tensor, gamma: float) -> Tensor:
    """k'(u) = -gamma*exp(-gamma*u)."""
    return -gamma * torch.exp(-gamma * u)


def rbf_kernel(p: Tensor, support_vectors: Tensor, gamma: float) -> Tensor:
    """K(s, p) = exp(-gamma ||s - p||^2): (..., B), (I, B) -> (..., I)."""
    return rbf_profile(squared_distances(p, support_vectors), gamma)


def rbf_decision(
    p: Tensor, support_vectors: Tensor, dual_coef: Tensor, intercept: Tensor, gamma: float
) -> Tensor:
    """a_k(p) = sum_i alpha_i c_i K(p_i, p) + g_k (Eq. 6): -> (..., K)."""
    return rbf_kernel(p, support_vectors, gamma) @ dual_coef.transpose(-1, -2) + intercept


def rbf_decision_gradient(
    p: Tensor, support_vectors: Tensor, dual_coef: Tensor, gamma: float
) -> Tensor:
    """d a_k / d p = sum_i alpha_i c_i grad_p K(p_i, p) (Eq. 24): -> (..., K, B).

    d a/d p = sum_i alpha_i c_i 2 k'(|p_i - p|^2) (p - p_i)^T
    """
    weights = dual_coef * rbf_profile_derivative(
        squared_distances(p, support_vectors), gamma
    ).unsqueeze(-2)
    return 2.0 * (weights.sum(-1, keepdim=True) * p.unsqueeze(-2) - weights @ support_vectors)


def sigmoid_profile(u: Tensor, gamma: float, coef0: float) -> Tensor:
    """k(u) = tanh(coef0 + gamma*u)."""
    return torch.tanh(coef0 + gamma * u)


def sigmoid_profile_derivative(u: Tensor, gamma: float, coef0: float) -> Tensor:
    """k'(u) = gamma*(1 - tanh(coef0 + gamma*u)**2)."""
    return gamma * (1 - torch.pow(torch.tanh(coef0 + gamma * u), 2))


def sigmoid_kernel(p: Tensor, support_vectors: Tensor, gamma: float, coef0: float) -> Tensor:
    """K(s, p) = tanh(gamma <s, p> + coef0): (..., B), (I, B) -> (..., I)."""
    return sigmoid_profile(dot_products(p, support_vectors), gamma, coef0)


def sigmoid_decision(
    p: Tensor,
    support_vectors: Tensor,
    dual_coef: Tensor,
    intercept: Tensor,
    gamma: float,
    coef0: float,
) -> Tensor:
    """a_k(p) = sum_i alpha_i c_i K(p_i, p) + g_k (Eq. 6): -> (..., K)."""
    return (
        sigmoid_kernel(p, support_vectors, gamma, coef0) @ dual_coef.transpose(-1, -2) + intercept
    )


def sigmoid_decision_gradient(
    p: Tensor, support_vectors: Tensor, dual_coef: Tensor, gamma: float, coef0: float
) -> Tensor:
    """d a_k / d p = sum_i alpha_i c_i grad_p K(p_i, p) (Eq. 24): -> (..., K, B).

    d a/d p = sum_i alpha_i c_i k'(p_i^T p) p_i^T
    """
    weights = dual_coef * sigmoid_profile_derivative(
        dot_products(p, support_vectors), gamma, coef0
    ).unsqueeze(-2)
    return weights @ support_vectors


#: name -> generated code for the kernel (scikit-learn's `kernel=` names).
KERNELS: dict[str, KernelCode] = {
    "linear": KernelCode(
        name="linear",
        kind="dot_product",
        kernel=linear_kernel,
        decision=linear_decision,
        decision_gradient=linear_decision_gradient,
        profile=linear_profile,
        profile_derivative=linear_profile_derivative,
        parameters={},
    ),
    "poly": KernelCode(
        name="poly",
        kind="dot_product",
        kernel=poly_kernel,
        decision=poly_decision,
        decision_gradient=poly_decision_gradient,
        profile=poly_profile,
        profile_derivative=poly_profile_derivative,
        parameters={
            "gamma": ParameterInfo("_gamma", None, 0.05, 3.0, False),
            "coef0": ParameterInfo("coef0", None, -2.0, 2.0, False),
            "degree": ParameterInfo("degree", None, 1, 4, True),
        },
    ),
    "rbf": KernelCode(
        name="rbf",
        kind="stationary",
        kernel=rbf_kernel,
        decision=rbf_decision,
        decision_gradient=rbf_decision_gradient,
        profile=rbf_profile,
        profile_derivative=rbf_profile_derivative,
        parameters={"gamma": ParameterInfo("_gamma", None, 0.05, 3.0, False)},
    ),
    "sigmoid": KernelCode(
        name="sigmoid",
        kind="dot_product",
        kernel=sigmoid_kernel,
        decision=sigmoid_decision,
        decision_gradient=sigmoid_decision_gradient,
        profile=sigmoid_profile,
        profile_derivative=sigmoid_profile_derivative,
        parameters={
            "gamma": ParameterInfo("_gamma", None, 0.05, 3.0, False),
            "coef0": ParameterInfo("coef0", None, -2.0, 2.0, False),
        },
    ),
}
