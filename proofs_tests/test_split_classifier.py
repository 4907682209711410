"""torchvision classifiers as users have them (issue 14): `split_classifier` reproduces `model(x)`
for every listed family, and `PCASVMGradCAM.from_model` gives autograd's class weights and
scikit-learn's predictions without any head written by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from sklearn.decomposition import PCA
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric import CadcamInputError, PCASVMGradCAM, split_classifier

FAMILIES = [
    "vgg11",
    "resnet18",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "densenet121",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "alexnet",
    "googlenet",
    "shufflenet_v2_x0_5",
    "mnasnet0_5",
]


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()


@pytest.mark.parametrize("name", FAMILIES)
def test_the_split_reproduces_the_model(name):
    model = build(name)
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    backbone, head = split_classifier(model)
    assert isinstance(head, nn.Sequential)
    with torch.no_grad():
        expected, features = model(x), backbone(x)
        actual = head(features)
    assert features.dim() == 4  # the target layer's maps (N, T, M, N')
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    model_params = {id(p) for p in model.parameters()}
    assert all(id(p) in model_params for p in [*backbone.parameters(), *head.parameters()])  # shared, not copied


def test_something_else_is_refused_by_name():
    with pytest.raises(CadcamInputError, match="model: Sequential is not a torchvision classifier cadcam can split"):
        split_classifier(nn.Sequential(nn.Linear(2, 2)))
    training = build("googlenet").train()
    with pytest.raises(CadcamInputError, match="GoogLeNet must be in eval mode"):
        split_classifier(training)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "mobilenet_v3_small", "densenet121"])
def test_from_model_gives_autograds_weights_and_sklearns_predictions(name):
    model = build(name).double()
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    backbone, head = split_classifier(model)
    linear = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)]
    pca_after = 1 if len(linear) > 1 else None  # PCA on the first dense layer's output q_1, when there is one
    if pca_after:
        with torch.no_grad():
            q1 = head[: linear[0] + 2](backbone(images)).numpy()
        pca = PCA(2).fit(q1)
        svm = SVC(kernel="rbf", gamma=0.5).fit(pca.transform(q1), ["cat", "dog", "cat", "dog"])
    with PCASVMGradCAM.from_model(model, pca=pca if pca_after else None, pca_after=pca_after,
                                  svm=svm if pca_after else None) as cam:  # fmt: skip
        maps = cam(images)
    assert maps.gradcam.shape == (4, 64, 64)
    features = backbone(images).detach().requires_grad_(True)
    logits = head(features)
    target = logits.argmax(1)
    (grad,) = torch.autograd.grad(logits[torch.arange(4), target].sum(), features)
    torch.testing.assert_close(maps.raw.class_weights, grad.sum(dim=(-2, -1)), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(maps.raw.cnn_prediction.numpy(), target.numpy())
    if pca_after:
        np.testing.assert_array_equal(maps.raw.svm_prediction, svm.predict(pca.transform(q1)))


def test_the_cnn_svm_recipe_pca_on_the_pooled_features(tmp_path):
    """resnet18 → global average pool → PCA → StandardScaler → SVC: ``pca_after=0``. PCA-Grad-CAM
    and SVM-Grad-CAM weights equal autograd through the pooled features, the SVM's predictions
    equal ``predict()``."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = build("resnet18").double()
    images = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    backbone, head = split_classifier(model)
    with torch.no_grad():
        pooled = torch.flatten(head[0](backbone(images)), 1).numpy()
    pca = PCA(3).fit(pooled)
    svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma=0.2)).fit(pca.transform(pooled), list("abcabc"))
    with PCASVMGradCAM.from_model(model, pca=pca, pca_after=0, svm=svm) as cam:
        maps = cam(images)
    assert maps.pca_positive.shape == (6, 3, 64, 64) and maps.svm.shape == (6, 64, 64)
    features = backbone(images).detach().requires_grad_(True)
    x = torch.flatten(head[0](features), 1)
    p = (x - torch.from_numpy(pca.mean_)) @ torch.from_numpy(pca.components_).T
    (grad,) = torch.autograd.grad(p[:, 1].sum(), features)
    torch.testing.assert_close(maps.raw.pca_weights[:, 1], grad.sum(dim=(-2, -1)), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(maps.raw.svm_prediction, svm.predict(pca.transform(pooled)))
