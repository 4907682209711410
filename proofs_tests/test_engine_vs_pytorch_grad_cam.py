"""Class maps equal the `grad-cam` package's (pytorch-grad-cam) on the same layer and model.

pytorch-grad-cam averages gradients (1/MN) where the paper sums them, and returns maps after
ReLU and min–max scaling; scaling removes the constant, so after our ``normalise`` the maps must
agree. The model keeps the target layer at input resolution so that its resize is the identity.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM, HiResCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from cadcam_numeric import PCASVMGradCAM, explain, normalise

PEERS = {"grad-cam": GradCAM, "xgrad-cam": XGradCAM, "hires-cam": HiResCAM}


def small_cnn(pool: nn.Module | None) -> tuple[nn.Sequential, nn.Module, nn.Sequential]:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU())
    pooled = 4 * 4 if pool is not None else 8 * 8
    head = nn.Sequential(
        *([pool] if pool is not None else []),
        nn.Flatten(),
        nn.Linear(5 * pooled, 12),
        nn.ReLU(),
        nn.Linear(12, 7),
        nn.Tanh(),
        nn.Linear(7, 4),
    )
    return nn.Sequential(backbone, head).eval(), backbone[3], head


@pytest.mark.parametrize("method", sorted(PEERS))
@pytest.mark.parametrize("pool", [None, nn.MaxPool2d(2), nn.AvgPool2d(2)], ids=["none", "max", "avg"])
def test_class_map_equals_pytorch_grad_cam(method, pool):
    model, layer, head = small_cnn(pool)
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    targets = [0, 1, 2, 3, 1, 2]
    with PEERS[method](model=model, target_layers=[layer]) as peer:
        expected = peer(input_tensor=images, targets=[ClassifierOutputTarget(t) for t in targets])
    with torch.no_grad():
        features = model[0](images)
    ours = normalise(explain(features, head, targets=targets, method=method).gradcam).numpy()
    assert expected.shape == ours.shape == (6, 8, 8)
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_model_level_entry_point_matches_engine():
    model, layer, head = small_cnn(nn.MaxPool2d(2))
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with PCASVMGradCAM(model, target_layer=layer, head=head) as cam:
        maps = cam(images, targets=[1, 2, 3])
    with torch.no_grad():
        raw = explain(model[0](images), head, targets=[1, 2, 3])
    torch.testing.assert_close(maps.raw.gradcam, raw.gradcam)
    assert maps.gradcam.shape == (3, 8, 8)
    assert float(maps.gradcam.max()) <= 1.0 and float(maps.gradcam.min()) >= 0.0
    assert len(layer._forward_hooks) == 0, "the hook must be removed on exit"


def test_model_level_with_pca_and_svm_gives_image_sized_pairs_on_a_shared_scale():
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    model, layer, head = small_cnn(nn.AvgPool2d(2))
    images = torch.rand(24, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        q2 = head[:5](model[0](images)).numpy()
    pca = PCA(3).fit(q2)
    svm = SVC().fit(pca.transform(q2), np.arange(24) % 3)
    with PCASVMGradCAM(model, layer, head, pca=pca, pca_after=2, svm=svm) as cam:
        maps = cam(images)
    assert maps.pca_positive.shape == maps.pca_negative.shape == (24, 3, 8, 8)
    assert maps.svm.shape == (24, 8, 8)
    nu = torch.maximum(maps.pca_positive.amax((-2, -1)), maps.pca_negative.amax((-2, -1)))
    nonzero = (maps.raw.pca_positive.amax((-2, -1)) + maps.raw.pca_negative.amax((-2, -1))) > 0
    torch.testing.assert_close(nu[nonzero], torch.ones_like(nu[nonzero]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_results_equal_cpu_results():
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    _, _, head = small_cnn(nn.MaxPool2d(2))
    head = head.double()
    features = torch.rand(16, 5, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        q2 = head[:5](features).numpy()
    pca = PCA(2).fit(q2)
    svm = SVC().fit(pca.transform(q2), np.arange(16) % 2)
    cpu = explain(features, head, pca, 2, svm)
    gpu = explain(features.cuda(), head.cuda(), pca, 2, svm)
    assert gpu.gradcam.device.type == "cuda" and gpu.svm.device.type == "cuda"
    for name in ("gradcam", "class_weights", "pca_positive", "pca_negative", "pca_weights", "svm", "svm_weights"):
        torch.testing.assert_close(getattr(gpu, name).cpu(), getattr(cpu, name), rtol=1e-10, atol=1e-12)
