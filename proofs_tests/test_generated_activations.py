"""Generated activations and derivatives vs the PyTorch module and its autograd (float64).

Parametrised over the *generated* registry: a catalogue entry added and generated is tested
here with no new test code.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.activation_modules import activation_from_module, activation_module
from cadcam_numeric.generated import ACTIVATIONS
from proofs_tests.strategies import assert_close, input_tensors, parameter_values


def check_against_autograd(
    code: ActivationCode, module: torch.nn.Module, params: dict[str, float], z: torch.Tensor
) -> None:
    """Generated f and f' against the module's forward and torch.autograd, elementwise."""
    z = z.clone().requires_grad_(True)
    y = module(z)
    (grad,) = torch.autograd.grad(y.sum(), z)
    with torch.no_grad():
        assert_close(code.forward(z, **params), y.detach(), what=f"{code.name} forward")
        assert_close(code.derivative(z, **params), grad, what=f"{code.name} derivative")


def kink_points(code: ActivationCode, params: dict[str, float]) -> tuple[float, ...]:
    return tuple(float(params.get(k, 0.0)) if k != "0" else 0.0 for k in code.kinks)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(data=st.data())
def test_generated_activation_matches_autograd(name, data):
    code = ACTIVATIONS[name]
    params = data.draw(parameter_values(code.parameters), label="parameters")
    module = activation_module(name, **params).double()
    params = activation_from_module(module)[1]  # as the module holds them (PReLU's weight is float32)
    z = data.draw(input_tensors(kink_points(code, params)), label="z")
    check_against_autograd(code, module, params, z)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_at_kinks_and_extremes_is_pytorchs(name):
    """Deterministic edge cases: exactly at each kink, at ±1e3 and at ±0."""
    code = ACTIVATIONS[name]
    params = {k: info.default for k, info in code.parameters.items()}
    z = torch.tensor([0.0, -0.0, 1e3, -1e3, *kink_points(code, params)], dtype=torch.float64)
    module = activation_module(name, **params).double()
    check_against_autograd(code, module, activation_from_module(module)[1], z)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_generated_code_keeps_dtype_and_device(name):
    code = ACTIVATIONS[name]
    for dtype in (torch.float32, torch.float64):
        z = torch.linspace(-3, 3, 7, dtype=dtype)
        assert code.forward(z).dtype == dtype
        assert code.derivative(z).dtype == dtype
        assert code.derivative(z).shape == z.shape


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_module_round_trip(name):
    code = ACTIVATIONS[name]
    params = {k: info.low for k, info in code.parameters.items()}
    found = activation_from_module(activation_module(name, **params))
    assert found is not None
    assert found[0].name == name
    assert found[1] == pytest.approx(params)


def test_relu_derivative_at_zero_is_zero():
    """Exact values, not tolerances: ReLU'(0) = 0, LeakyReLU'(0) = slope, ELU'(0) = alpha."""
    zero = torch.zeros(1, dtype=torch.float64)
    assert ACTIVATIONS["relu"].derivative(zero).item() == 0.0
    assert ACTIVATIONS["leaky_relu"].derivative(zero, negative_slope=0.2).item() == 0.2
    assert ACTIVATIONS["elu"].derivative(zero, alpha=1.5).item() == 1.5
    assert ACTIVATIONS["sigmoid"].derivative(zero).item() == 0.25
    assert ACTIVATIONS["hardtanh"].derivative(torch.tensor([-1.0, 1.0], dtype=torch.float64)).tolist() == [0.0, 0.0]
