"""Eigen-CAM equals pytorch-grad-cam's projection up to the documented sign; the sign rule is deterministic."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from cadcam_numeric.methods.eigen import eigen_cam, eigen_grad_cam


@given(seed=st.integers(0, 2**31 - 1), t=st.integers(2, 16), m=st.integers(2, 7), relu=st.booleans())
def test_equals_pytorch_grad_cam_projection_up_to_sign(seed, t, m, relu):
    f = torch.randn(3, t, m, m + 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if relu:
        f = f.relu()
    ours = eigen_cam(f).numpy()
    theirs = get_2d_projection(f.numpy()).astype(np.float64)  # centred, before ReLU and scaling
    for a, b in zip(ours, theirs, strict=True):
        sign = 1.0 if np.abs(a - b).max() <= np.abs(a + b).max() else -1.0
        np.testing.assert_allclose(a, sign * b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


def test_sign_rule_is_deterministic_across_dtype_and_runs():
    f = torch.rand(4, 8, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = eigen_cam(f)
    assert torch.equal(a, eigen_cam(f.clone()))
    torch.testing.assert_close(eigen_cam(f.float()).double(), a, rtol=1e-4, atol=1e-5)
    flat = a.flatten(1)
    assert (flat.gather(1, flat.abs().argmax(1, keepdim=True)) > 0).all()


def test_hand_computed_rank_one_case():
    """F^t = c_t · P for a fixed pattern P: O = P cᵀ is rank one, so O v₁ = ±‖c‖ P (uncentred)."""
    pattern = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    c = torch.tensor([2.0, -1.0, 2.0], dtype=torch.float64)  # ‖c‖ = 3
    f = (c.view(3, 1, 1) * pattern).unsqueeze(0)
    torch.testing.assert_close(eigen_cam(f, center=False)[0], 3.0 * pattern)


def test_eigen_grad_cam_uses_gradient_times_activation():
    f = torch.rand(2, 4, 3, 3, dtype=torch.float64)
    g = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(eigen_grad_cam(f, g), eigen_cam(f * g))
