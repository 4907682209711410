"""Generated kernels, decisions and decision gradients (Eq. 6, 24–26) vs autograd and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.svm import SVC

from cadcam_numeric.generated import KERNELS
from cadcam_numeric.verification.references import reference_kernel
from proofs_tests.strategies import assert_close, parameter_values


@st.composite
def svm_problem(draw, name: str):
    code = KERNELS[name]
    n, b, i, k = (draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(1, 8)), draw(st.integers(1, 4)))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([0.3, 1.0, 3.0]))
    p = torch.randn(n, b, generator=gen, dtype=torch.float64) * scale
    s = torch.randn(i, b, generator=gen, dtype=torch.float64) * scale
    dual = torch.randn(k, i, generator=gen, dtype=torch.float64)
    intercept = torch.randn(k, generator=gen, dtype=torch.float64)
    params = draw(parameter_values(code.parameters))
    if draw(st.booleans()) and n > 1:
        p[0] = s[0]  # an input exactly on a support vector (rbf: rho = 0)
    return p, s, dual, intercept, params


@pytest.mark.parametrize("name", sorted(KERNELS))
@given(data=st.data())
def test_decision_gradient_matches_autograd(name, data):
    code = KERNELS[name]
    p, s, dual, intercept, params = data.draw(svm_problem(name))
    p_req = p.clone().requires_grad_(True)
    decision = reference_kernel(name, p_req, s, **params) @ dual.T + intercept
    expected = torch.stack(
        [torch.autograd.grad(decision[:, k].sum(), p_req, retain_graph=True)[0] for k in range(dual.shape[0])], dim=1
    )
    assert_close(code.kernel(p, s, **params), reference_kernel(name, p, s, **params), what=f"{name} kernel")
    assert_close(code.decision(p, s, dual, intercept, **params), decision.detach(), what=f"{name} decision")
    assert_close(code.decision_gradient(p, s, dual, **params), expected, what=f"{name} gradient")


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_decision_matches_sklearn_svc(name):
    """Parameters as scikit-learn names them, binary SVC, positive decision = classes_[1]."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 > 0.3).astype(int)
    svc = SVC(kernel=name, gamma=0.7, coef0=0.4, degree=3, C=1.0).fit(x, y)
    code = KERNELS[name]
    params = {k: getattr(svc, info.attribute) for k, info in code.parameters.items()}
    ours = code.decision(
        torch.from_numpy(x),
        torch.from_numpy(svc.support_vectors_),
        torch.from_numpy(svc.dual_coef_),
        torch.from_numpy(svc.intercept_),
        **params,
    )
    np.testing.assert_allclose(ours[:, 0].numpy(), svc.decision_function(x), rtol=1e-9, atol=1e-9)


def test_rbf_gradient_hand_computed():
    """Eq. 26 by hand: one support vector s = (1, 0), p = (0, 0), alpha c = 2, gamma = 0.5:
    d a/d p = 2 * 2 * 0.5 * exp(-0.5 * 1) * (s - p) = 2 e^{-1/2} (1, 0)."""
    grad = KERNELS["rbf"].decision_gradient(
        torch.zeros(1, 2, dtype=torch.float64),
        torch.tensor([[1.0, 0.0]], dtype=torch.float64),
        torch.tensor([[2.0]], dtype=torch.float64),
        gamma=0.5,
    )
    expected = torch.tensor([[[2 * np.exp(-0.5), 0.0]]], dtype=torch.float64)
    assert torch.equal(grad, expected) or torch.allclose(grad, expected, rtol=1e-15, atol=0)


def test_poly_gradient_finite_on_its_hyperplane():
    """(gamma u + r)^(d-1) form: no 0/0 where gamma u + r = 0."""
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    s = torch.tensor([[-1.0, 0.0]], dtype=torch.float64)  # u = -1, gamma = 1, coef0 = 1 -> 0
    grad = KERNELS["poly"].decision_gradient(
        p, s, torch.ones(1, 1, dtype=torch.float64), gamma=1.0, coef0=1.0, degree=3
    )
    assert torch.equal(grad, torch.zeros(1, 1, 2, dtype=torch.float64))
