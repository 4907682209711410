"""Every block Jacobian and Table 2 entry is proved by SymPy (difference reduces to exactly 0).

Parametrised over the catalogue: a new activation or kernel is proved with no new test code.
"""

from __future__ import annotations

import pytest
import sympy as sp

from derivations import ACTIVATIONS, KERNELS, PCA_VARIANTS
from derivations.activations import Z
from derivations.blocks import (
    prove_activation_derivative,
    prove_activation_forward,
    prove_activation_kinks,
    prove_dense_block,
    prove_first_dense_block,
    prove_pca_block,
    prove_position_sum,
    prove_svm_block,
)
from derivations.proof import prove_equal
from derivations.table2 import TABLE2_CASES, prove_table2_case


def _assert(result):
    assert result.holds, f"{result.name}: {result.statement} — not proved ({result.method})"


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a.name)
def test_activation_forward_matches_definition(act):
    _assert(prove_activation_forward(act))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a.name)
def test_activation_derivative_matches_definition(act):
    _assert(prove_activation_derivative(act))


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.kink_derivatives], ids=lambda a: a.name)
def test_activation_kink_values_are_pytorchs(act):
    _assert(prove_activation_kinks(act))


def test_relu_derivative_at_zero_is_zero_not_sympys_half():
    relu = next(a for a in ACTIVATIONS if a.name == "relu")
    assert relu.derivative.subs(Z, 0) == 0
    assert sp.Heaviside(0) == sp.Rational(1, 2)  # why the catalogue does not use Heaviside


def test_generic_dense_block():
    _assert(prove_dense_block(None))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a.name)
def test_dense_block_for_each_activation(act):
    _assert(prove_dense_block(act))


@pytest.mark.parametrize("channels_last", [False, True], ids=["channels_first", "channels_last"])
def test_flatten_to_first_dense_block(channels_last):
    _assert(prove_first_dense_block(channels_last))
    _assert(prove_position_sum(channels_last))


@pytest.mark.parametrize("variant", PCA_VARIANTS, ids=lambda v: v.name)
def test_pca_block(variant):
    _assert(prove_pca_block(variant))


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_svm_block(kernel):
    _assert(prove_svm_block(kernel))


@pytest.mark.parametrize("case", TABLE2_CASES, ids=lambda c: f"{c.activation}-{c.target}")
def test_table2_special_cases(case):
    _assert(prove_table2_case(case))


def test_paper_closed_forms_fall_out():
    """Eq. 18, 19, 25, 26 are exactly what the catalogue derives."""
    by_name = {a.name: a for a in ACTIVATIONS}
    s = by_name["sigmoid"].forward
    assert sp.simplify(by_name["sigmoid"].derivative - s * (1 - s)) == 0
    assert by_name["relu"].derivative == sp.Piecewise((1, Z > 0), (0, True))
    p = sp.Matrix(sp.symbols("p1 p2", real=True))
    pi = sp.Matrix(sp.symbols("s1 s2", real=True))
    k = {k.name: k for k in KERNELS}
    assert k["linear"].gradient_closed_form(pi, p) == pi.T
    gamma = k["rbf"].parameters[0].symbol
    eq26 = 2 * gamma * sp.exp(-gamma * ((pi - p).T * (pi - p))[0, 0]) * (pi - p).T
    assert prove_equal("eq26", "", k["rbf"].gradient_closed_form(pi, p), eq26).holds


def test_a_wrong_block_is_not_proved():
    """The prover can fail: a transposed PCA Jacobian and a ReLU′ with the wrong kink are rejected."""
    V = sp.Matrix(2, 2, sp.symbols("v:4", real=True))
    q = sp.Matrix(sp.symbols("q:2", real=True))
    assert not prove_equal("transposed", "", (V * q).jacobian(q), V.T).holds
    wrong = sp.Piecewise((1, Z >= 0), (0, True))
    assert not prove_equal("kink", "", wrong.subs(Z, 0), 0).holds
    assert not prove_equal("neg", "", sp.exp(Z), sp.exp(Z) + Z**2, split_on=(Z,)).holds
