"""Decom-CAM: orthogonal feature maps, exact reconstruction at p = rank, stage-2 weights by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from sklearn.decomposition import PCA
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.methods.decom import decom_cam, decompose, gaussian_blur


def test_feature_map_rows_are_orthogonal_and_top_rank_reconstructs_s():
    s = torch.randn(3, 6, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fmaps, u = decompose(s, p=10)
    assert fmaps.shape == (3, 6, 10)  # p capped at rank = min(T, MN) = 6
    gram = fmaps @ fmaps.transpose(1, 2)
    off = gram - torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2))
    assert float(off.abs().max()) < 1e-10 * float(gram.abs().max())
    torch.testing.assert_close(u @ fmaps, s, rtol=1e-10, atol=1e-10)  # U'F* = S* when p = rank
    top2, _ = decompose(s, p=2)
    torch.testing.assert_close(top2, fmaps[:, :2])


def test_gaussian_blur_matches_scipy():
    img = torch.rand(1, 2, 9, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = gaussian_blur(img, sigma=1.7, truncate=4.0).numpy()
    for c in range(2):
        ref = gaussian_filter(img[0, c].numpy(), sigma=1.7, truncate=4.0, mode="nearest")
        np.testing.assert_allclose(ours[0, c], ref, rtol=1e-12, atol=1e-12)


def tiny_model():
    torch.manual_seed(3)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).double()
    head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    return backbone, head


@pytest.mark.parametrize("target", ["class", "pca", "svm"])
def test_stage_two_weights_match_a_direct_computation(target):
    backbone, head = tiny_model()
    images = torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    pca = svm = None
    if target != "class":
        train = torch.rand(30, 3, 6, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        with torch.no_grad():
            q1 = head[:3](backbone(train)).numpy()
        pca = PCA(2).fit(q1)
        svm = SVC().fit(pca.transform(q1), np.arange(30) % 2)
    r = decom_cam(images, backbone, head, pca, 1, svm, target=target, component=1, sign=-1.0, p=3, blur_sigma=1.0)
    blurred = gaussian_blur(images, 1.0)

    def score(x):
        with torch.no_grad():
            q1 = head[:3](backbone(x))
            if target == "class":
                return head[3:](q1)[torch.arange(4), head(backbone(images)).argmax(1)]
            p = torch.from_numpy(pca.transform(q1.numpy()))
            if target == "pca":
                return -p[:, 1]
            d = torch.from_numpy(svm.decision_function(p.numpy()))
            pred = torch.from_numpy(svm.predict(pca.transform(head[:3](backbone(images)).numpy())))
            return torch.where(pred == 1, d, -d)  # binary orientation (derivations/NOTES.md)

    gains = torch.stack(
        [
            score(torch.maximum(images * r.masks[:, i : i + 1], blurred * (1 - r.masks[:, i : i + 1]))) - score(blurred)
            for i in range(r.masks.shape[1])
        ],
        1,
    )
    torch.testing.assert_close(r.gains, gains, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(r.weights, torch.softmax(gains, 1))
    torch.testing.assert_close(r.saliency, (torch.softmax(gains, 1)[:, :, None, None] * r.masks).sum(1))
    assert r.masks.min() >= 0 and r.masks.max() <= 1 and r.feature_maps.shape == (4, 3, 6, 6)


def test_stage_one_uses_the_exact_gradient():
    """F* from the closed-form gradient reconstructs S = ∂y/∂A ⊙ A computed by autograd."""
    backbone, head = tiny_model()
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    a = backbone(images).detach().requires_grad_(True)
    y = head(a)
    (g,) = torch.autograd.grad(y[torch.arange(2), y.argmax(1)].sum(), a)
    s = (g * a).detach().flatten(2)
    r = decom_cam(images, backbone, head, p=100, blur_sigma=1.0)
    _, u = decompose(s, p=100)
    torch.testing.assert_close(u @ r.feature_maps.flatten(2), s, rtol=1e-9, atol=1e-12)


def test_bad_arguments():
    backbone, head = tiny_model()
    images = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    with pytest.raises(CadcamInputError, match="target: 'pca' needs pca"):
        decom_cam(images, backbone, head, target="pca")
    with pytest.raises(CadcamInputError, match="p: expected >= 1"):
        decom_cam(images, backbone, head, p=0)


def test_a_class_target_needs_a_class_output():
    """A head without Linear (PCA on the pooled features) has no class to decompose: refused by name."""
    backbone = nn.Conv2d(3, 4, 3, padding=1).double()
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    images = torch.rand(6, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        pooled = head(backbone(images)).numpy()
    pca = PCA(2).fit(pooled)
    with pytest.raises(CadcamInputError, match="target: 'class' needs a head with a class output"):
        decom_cam(images, backbone, head, pca, 0, target="class", p=2)
    result = decom_cam(images, backbone, head, pca, 0, target="pca", p=2)
    assert torch.isfinite(result.saliency).all()
