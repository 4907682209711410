"""``PCASVMGradCAM`` on models as users have them (issue 12): torchvision's VGG16 as the README
writes it, a head that does not fit, every module's own mode restored, a user's activation class."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torchvision
from sklearn.decomposition import PCA
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric import CadcamInputError, PCASVMGradCAM, explain
from cadcam_numeric.generated import ACTIVATIONS


@pytest.fixture(scope="module")
def vgg16_problem():
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).eval()
    images = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q2 = model.classifier[:5](torch.flatten(model.avgpool(model.features(images)), 1))
    pca = PCA(3).fit(q2.numpy())
    svm = SVC(kernel="rbf").fit(pca.transform(q2.numpy()), [0, 1, 0, 1, 0, 1])
    return model, images, pca, svm


def test_vgg16_as_the_readme_writes_it(vgg16_problem):
    """head=model.classifier: avgpool and the flatten between features and classifier are composed in,
    and the class weights equal autograd through torchvision's own forward."""
    model, images, pca, svm = vgg16_problem
    with PCASVMGradCAM(model, target_layer=model.features, head=model.classifier, pca=pca, pca_after=2, svm=svm) as cam:
        maps = cam(images[:2])
    assert maps.gradcam.shape == (2, 64, 64) and maps.pca_positive.shape == (2, 3, 64, 64)
    assert maps.svm.shape == (2, 64, 64)
    features = model.features(images[:2]).detach().requires_grad_(True)
    logits = model.classifier(torch.flatten(model.avgpool(features), 1))
    target = logits.argmax(1)
    (grad,) = torch.autograd.grad(logits[torch.arange(2), target].sum(), features)
    torch.testing.assert_close(maps.raw.class_weights, grad.sum(dim=(-2, -1)), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        maps.raw.svm_prediction.numpy(),
        svm.predict(
            pca.transform(
                model.classifier[:5](torch.flatten(model.avgpool(model.features(images[:2])), 1)).detach().numpy()
            )
        ),
    )


def test_vgg16_from_avgpool_the_flatten_is_composed_in(vgg16_problem):
    model, images, _, _ = vgg16_problem
    with PCASVMGradCAM(model, target_layer=model.avgpool, head=model.classifier) as cam:
        maps = cam(images[:1])
    assert maps.gradcam.shape == (1, 64, 64)


def test_a_head_that_does_not_fit_the_features_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(50, 3))
    with pytest.raises(CadcamInputError, match=r"head: does not fit the target layer's output of shape \(2, 4, 6, 6\)"):
        with PCASVMGradCAM(model, target_layer=model[1], head=wrong) as cam:
            cam(torch.rand(2, 3, 8, 8))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("fails", [False, True], ids=["success", "error"])
def test_each_module_gets_its_own_mode_back(fails):
    """A model in train mode with a frozen BatchNorm: after the call (or an error inside it) every
    module has the mode it had; the model in train mode is not blamed for its Dropout."""
    torch.manual_seed(0)
    net = _Net().train()
    net.features[1].eval()  # frozen BatchNorm
    before = _modes(net)
    head = nn.Sequential(nn.Flatten(), nn.Linear(7, 3)) if fails else net.classifier
    with PCASVMGradCAM(net, target_layer=net.features, head=head) as cam:
        if fails:
            with pytest.raises(CadcamInputError):
                cam(torch.rand(2, 3, 8, 8))
        else:
            maps = cam(torch.rand(2, 3, 8, 8))
            assert maps.gradcam.shape == (2, 8, 8)
    assert _modes(net) == before
    assert net.training and not net.features[1].training


class MyTanh(nn.Module):
    """A user's own activation class (not torch's): known to the engine only through custom_activations."""

    def forward(self, z):
        return torch.tanh(z)


def test_custom_activations_reach_the_engine():
    torch.manual_seed(0)
    code = dataclasses.replace(ACTIVATIONS["tanh"], name="my_tanh", torch_module=f"{__name__}.MyTanh")
    model = nn.Sequential(
        nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 4), MyTanh(), nn.Linear(4, 3)
    )
    head = nn.Sequential(*list(model)[2:])
    images = torch.rand(2, 3, 8, 8)
    with pytest.raises(CadcamInputError, match="cannot differentiate MyTanh"):
        with PCASVMGradCAM(model, target_layer=model[1], head=head) as cam:
            cam(images)
    with PCASVMGradCAM(model, target_layer=model[1], head=head, custom_activations={"my_tanh": code}) as cam:
        maps = cam(images)
    features = model[:2](images)
    plain = nn.Sequential(*list(head)[:2], nn.Tanh(), head[3])
    torch.testing.assert_close(maps.raw.gradcam, explain(features, plain).gradcam)
