"""The composed closed-form chain (Eq. 13, 15) vs autograd through an equivalent torch module.

Random heads: 1–5 dense layers of random widths, random catalogue activations with random
parameters, PCA (plain or whitened) after any layer before the last, any kernel. Checked:
∂y/∂x (Grad-CAM), ∂p/∂x (PCA-Grad-CAM), ∂a/∂x (SVM-Grad-CAM), all (N, K, D₀), and the
position-summed channel weights via W̄₁ (the cost note of derivations/NOTES.md §3).
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from cadcam_numeric.engine.activation_modules import activation_from_module, activation_module
from cadcam_numeric.engine.chain import DenseLayer, PCALayer, forward_dense, identity_rows, pullback
from cadcam_numeric.generated import ACTIVATIONS, KERNELS
from cadcam_numeric.verification.references import ReferencePCA, ReferenceSVMDecision
from proofs_tests.strategies import assert_close, parameter_values


@st.composite
def random_head(draw):
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    t, m, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    depth = draw(st.integers(1, 5))
    widths = [t * m * n] + [draw(st.integers(1, 6)) for _ in range(depth)]
    modules: list[nn.Module] = [nn.Flatten()]
    for i in range(depth):
        lin = nn.Linear(widths[i], widths[i + 1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen, dtype=torch.float64))
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen, dtype=torch.float64) * 0.5)
        name = draw(st.sampled_from(sorted(ACTIVATIONS)))
        params = draw(parameter_values(ACTIVATIONS[name].parameters))
        modules += [lin, activation_module(name, **params).double()]
    head = nn.Sequential(*modules)
    features = torch.randn(draw(st.integers(1, 4)), t, m, n, generator=gen, dtype=torch.float64)
    pca = svm = None
    pca_after = None
    if depth >= 2:
        pca_after = draw(st.integers(1, depth - 1))
        d_l, b = widths[pca_after], draw(st.integers(1, min(widths[pca_after], 4)))
        whiten = draw(st.booleans())
        pca = PCALayer(
            torch.randn(b, d_l, generator=gen, dtype=torch.float64),
            torch.randn(d_l, generator=gen, dtype=torch.float64),
            torch.rand(b, generator=gen, dtype=torch.float64) + 0.1 if whiten else None,
        )
        kernel = draw(st.sampled_from(sorted(KERNELS)))
        i, k = draw(st.integers(1, 6)), draw(st.integers(1, 3))
        svm = (
            kernel,
            torch.randn(i, b, generator=gen, dtype=torch.float64),
            torch.randn(k, i, generator=gen, dtype=torch.float64),
            torch.randn(k, generator=gen, dtype=torch.float64),
            draw(parameter_values(KERNELS[kernel].parameters)),
        )
    return head, features, pca, pca_after, svm


def autograd_jacobian(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, K, D0) by one backward per output (samples are independent)."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    rows = [torch.autograd.grad(y[:, k].sum(), x, retain_graph=True)[0] for k in range(y.shape[1])]
    return torch.stack(rows, dim=1).flatten(2)


def dense_layers(head: nn.Sequential) -> list[DenseLayer]:
    layers, mods = [], list(head)[1:]
    for lin, act in zip(mods[::2], mods[1::2]):
        code, params = activation_from_module(act)
        layers.append(DenseLayer(lin.weight.detach(), lin.bias.detach(), code, params))
    return layers


@given(problem=random_head())
def test_chain_matches_autograd(problem):
    head, features, pca, pca_after, svm = problem
    layers = dense_layers(head)
    x = features.flatten(1)
    fwd = forward_dense(x, layers)
    n, depth = x.shape[0], len(layers)

    # Grad-CAM chain: ∂y/∂x
    c = layers[-1].weight.shape[0]
    dy_dx = pullback(identity_rows(n, c, x), layers, fwd, depth)
    assert_close(fwd.outputs[-1], head(features).detach(), what="head forward")
    assert_close(dy_dx, autograd_jacobian(head, features), what="dy/dx")

    # (the position-summed channel weights the engine forms are held against autograd in
    # test_engine_vs_autograd: class_weights, pca_weights, svm_weights)

    if pca is None:
        return
    to_l = nn.Sequential(*list(head)[: 1 + 2 * pca_after])
    pca_module = nn.Sequential(to_l, ReferencePCA(pca.components, pca.mean, pca.explained_variance))
    jac_pca = pca.jacobian().expand(n, *pca.jacobian().shape)
    dp_dx = pullback(jac_pca, layers, fwd, pca_after)
    assert_close(pca.scores(fwd.outputs[pca_after - 1]), pca_module(features).detach(), what="PCA scores")
    assert_close(dp_dx, autograd_jacobian(pca_module, features), what="dp/dx")

    kernel, s, dual, intercept, params = svm
    p = pca.scores(fwd.outputs[pca_after - 1])
    da_dp = KERNELS[kernel].decision_gradient(p, s, dual, **params)
    da_dx = pullback(da_dp @ pca.jacobian(), layers, fwd, pca_after)
    svm_module = nn.Sequential(pca_module, ReferenceSVMDecision(kernel, s, dual, intercept, **params))
    assert_close(da_dx, autograd_jacobian(svm_module, features), what=f"da/dx ({kernel})")
