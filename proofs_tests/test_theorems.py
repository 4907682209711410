"""Theorems 1–2 (symbolic proofs and numeric properties), the erratum, the kernel extensions."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from derivations.theorems import all_theorems

THEOREMS = {t.key: t for t in all_theorems()}
gamma = sp.Symbol("gamma", positive=True)


@pytest.mark.parametrize("key", sorted(THEOREMS))
def test_every_step_is_proved(key):
    theorem = THEOREMS[key]
    failed = [s.description for s in theorem.proof_steps if not s.holds]
    assert not failed, f"{key}: steps not proved: {failed}"


def test_theorem_2_closed_forms():
    r = {k: sp.sympify(v, locals={"gamma": gamma}) for k, v in THEOREMS["theorem_2"].results.items()}
    assert sp.simplify(r["argmax"] - 1 / sp.sqrt(2 * gamma)) == 0
    assert sp.simplify(r["max"] - sp.sqrt(2 * gamma) * sp.exp(-sp.Rational(1, 2))) == 0
    assert (
        sp.simplify(r["second_derivative_at_argmax"] + 4 * sp.sqrt(2) * gamma ** sp.Rational(3, 2) / sp.sqrt(sp.E)) == 0
    )
    assert r["limit_zero"] == 0 and r["limit_infinity"] == 0


def test_erratum_numbers():
    assert THEOREMS["erratum_small_gamma"].results["argmax_at_gamma_0_1"] == "sqrt(5)"
    assert abs(1 / math.sqrt(2 * 0.1) - 2.2360679775) < 1e-9


def E(d: float, g: float) -> float:
    return 2 * g * d * math.exp(-g * d * d)


@given(g=st.floats(1e-3, 1e3), d=st.floats(0, 1e4))
def test_theorem_2_numerically(g, d):
    d_star = 1 / math.sqrt(2 * g)
    assert E(d_star, g) >= E(d, g) * (1 - 1e-12)
    assert E(d_star, g) == pytest.approx(math.sqrt(2 * g) * math.exp(-0.5), rel=1e-12)
    e1 = 2 * g * (1 - 2 * g * d_star**2) * math.exp(-g * d_star**2)
    assert abs(e1) <= 1e-12 * 2 * g


@given(g=st.floats(1e-2, 1e2))
def test_theorem_1_numerically(g):
    d_star = 1 / math.sqrt(2 * g)
    peak = E(d_star, g)
    assert E(d_star * 1e-6, g) < 1e-5 * peak
    assert E(d_star * 10, g) < 1e-18 * peak


def test_theorems_json_cli():
    out = subprocess.run([sys.executable, "-m", "derivations", "theorems", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    by_key = {t["key"]: t for t in doc["theorems"]}
    for key in ("theorem_1", "theorem_2"):
        results = by_key[key]["results"]
        for field in ("argmax", "max", "limit_zero", "limit_infinity", "second_derivative_at_argmax"):
            assert field in results, f"{key} lacks {field}"
        assert by_key[key]["statement"]
        assert all("latex" in step and step["latex"] for step in by_key[key]["proof_steps"])
        parsed = sp.parse_expr(results["argmax"], local_dict={"gamma": gamma})  # SymPy strings parse back
        assert sp.simplify(parsed - 1 / sp.sqrt(2 * gamma)) == 0
    assert "gamma" in doc["symbols"]
    assert {"extension_poly", "extension_sigmoid", "extension_linear", "erratum_small_gamma"} <= set(by_key)
    assert by_key["extension_poly"]["results"]["limit_infinity"] == "oo"


def test_the_degree_of_effect_of_any_kernel_and_its_maximiser_are_derived():
    """The report's E curve for each kernel: RBF d* = 1/sqrt(2 gamma) (Theorem 2), an inverse-quadratic
    spec kernel d* = 1/sqrt(3 gamma), sigmoid u* = -r/gamma; linear and poly have none, for the
    derived reason."""
    import math

    import sympy as sp

    from derivations.degree_of_effect import degree_of_effect
    from derivations.kernels import Kernel, U, kernel_by_name

    rbf = degree_of_effect(kernel_by_name("rbf"), {"gamma": 0.5})
    assert math.isclose(rbf.maximiser, 1 / math.sqrt(2 * 0.5)) and math.isclose(rbf.maximum, math.exp(-0.5))
    gamma = sp.Symbol("gamma", positive=True)
    inverse_quadratic = Kernel("iq", "stationary", 1 / (1 + gamma * U), (), "", "")
    iq = degree_of_effect(inverse_quadratic, {"gamma": 0.5})
    assert math.isclose(iq.maximiser, 1 / math.sqrt(3 * 0.5))
    sigmoid = degree_of_effect(kernel_by_name("sigmoid"), {"gamma": 0.5, "coef0": -1.0})
    assert math.isclose(sigmoid.maximiser, 2.0) and math.isclose(sigmoid.maximum, 0.5)
    assert degree_of_effect(kernel_by_name("linear"), {}).reason.startswith("E does not depend on the input")
    poly = degree_of_effect(kernel_by_name("poly"), {"gamma": 0.5, "coef0": 1.0, "degree": 3})
    assert poly.maximiser is None and "without bound" in poly.reason
