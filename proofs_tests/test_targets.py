"""Targets as objects (issue 12): a CNN class, a PCA component with its sign, an SVM class of any
label type; plain integers and pytorch-grad-cam's ClassifierOutputTarget keep working."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from sklearn.decomposition import PCA
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric import CadcamInputError, decom_cam, explain, position_gradients
from cadcam_numeric.engine.targets import ClassTarget, ComponentTarget, SVMClassTarget


@pytest.fixture(scope="module")
def problem():
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    head = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4)
    ).double()
    features = torch.randn(12, 3, 2, 2, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        scores = PCA(3).fit(head[:5](features).numpy())
    labels = np.array(["cat", "dog", "owl"])[np.arange(12) % 3]
    svm = SVC().fit(scores.transform(head[:5](features).detach().numpy()), labels)
    return head, features, scores, svm


def test_class_targets_in_every_form_agree(problem):
    head, features, _pca, _svm = problem
    plain = explain(features, head, targets=2)
    for form in (ClassTarget(2), ClassifierOutputTarget(2), [2] * 12, torch.full((12,), 2), np.full(12, 2)):
        r = explain(features, head, targets=form)
        assert r.cnn_target.tolist() == [2] * 12
        torch.testing.assert_close(r.gradcam, plain.gradcam, rtol=0, atol=0)


def test_string_svm_labels(problem):
    head, features, pca, svm = problem
    with pytest.warns(FutureWarning, match="pass them as svm_targets="):
        r = explain(features, head, pca, 2, svm, targets=["dog"])  # was a raw TypeError
    assert r.svm_target.tolist() == ["dog"] * 12
    assert torch.equal(r.cnn_target, r.cnn_prediction)  # the CNN explains its own prediction
    both = explain(features, head, pca, 2, svm, targets=1, svm_targets=SVMClassTarget("owl"))
    assert both.cnn_target.tolist() == [1] * 12 and both.svm_target.tolist() == ["owl"] * 12
    same = explain(features, head, pca, 2, svm, svm_targets="dog")
    torch.testing.assert_close(same.svm, r.svm, rtol=0, atol=0)
    # the SVM's map for 'owl' differs from the one for 'dog' (its class is chosen apart from the CNN's)
    assert not torch.allclose(both.svm_weights, r.svm_weights)
    default = explain(features, head, pca, 2, svm, targets=1)  # string labels: the SVM explains predict()
    assert default.svm_target.tolist() == svm.predict(pca.transform(head[:5](features).detach().numpy())).tolist()
    with pytest.raises(CadcamInputError, match=r"svm_targets: 'emu' is not one of the SVM's classes"):
        explain(features, head, pca, 2, svm, svm_targets="emu")
    with pytest.raises(CadcamInputError, match=r"targets: 'dog' is not a class index of the CNN"):
        explain(features, head, targets="dog")
    with pytest.raises(CadcamInputError, match=r"targets: SVMClassTarget given without an svm"):
        explain(features, head, targets=SVMClassTarget("dog"))
    with pytest.raises(CadcamInputError, match=r"targets: expected integer class indices for the CNN"):
        explain(features, head, pca, 2, svm, targets=torch.tensor([2.0]))


def test_one_registry_of_map_methods():
    from cadcam_numeric.cli import build_parser
    from cadcam_numeric.engine.explain import METHOD_LABELS, METHODS
    from cadcam_numeric.engine.map_methods import MAP_METHODS

    assert list(MAP_METHODS) == list(METHODS) == list(METHOD_LABELS)
    explain_parser = build_parser()._subparsers._group_actions[0].choices["explain"]
    method = next(a for a in explain_parser._actions if a.dest == "method")
    assert list(method.choices) == list(METHOD_LABELS)


def test_component_target_in_decom_cam_and_gradients(problem):
    head, features, pca, svm = problem
    grads = position_gradients(features, head, pca, 2, svm, targets=ClassifierOutputTarget(0), svm_targets="cat")
    assert grads.cnn_target.tolist() == [0] * 12
    assert grads.svm_target_index.tolist() == [0] * 12
    backbone = nn.Identity()
    images = features.float()
    head = copy.deepcopy(head).float()  # the module-scoped fixture stays float64
    a = decom_cam(images, backbone, head, pca, 2, svm, target=ComponentTarget(1, -1), p=2, blur_sigma=0.5)
    b = decom_cam(
        images, backbone, head.float(), pca, 2, svm, target="pca", component=1, sign=-1.0, p=2, blur_sigma=0.5
    )
    torch.testing.assert_close(a.saliency, b.saliency, rtol=0, atol=0)
    with pytest.raises(CadcamInputError, match=r"ComponentTarget.sign: expected \+1 or -1"):
        ComponentTarget(0, 0)


def test_one_meaning_per_argument_the_old_guesses_warn(problem):
    """Issue 24: targets= names CNN classes, svm_targets= SVM labels; the two guesses still work,
    each with a FutureWarning naming svm_targets=; said explicitly, nothing warns."""
    import warnings

    from cadcam_numeric.engine.targets import PREDICTED

    head, features, pca, svm = problem
    p = pca.transform(head[:5](features).detach().numpy())
    labels = np.arange(len(p)) % 3
    ints = SVC(kernel="rbf", gamma=0.5).fit(p, labels)
    with pytest.warns(FutureWarning, match="integer targets also choose the SVM's class") as record:
        guessed = explain(features, head, pca, 2, ints, targets=1)
    assert record[0].filename == __file__  # attributed to the caller, not to cadcam's own frames
    assert guessed.svm_target.tolist() == [1] * 12  # as before
    with pytest.warns(FutureWarning, match="pass them as svm_targets="):
        explain(features, head, pca, 2, svm, targets=SVMClassTarget("dog"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = explain(features, head, pca, 2, ints, targets=1, svm_targets=1)
        own = explain(features, head, pca, 2, ints, targets=1, svm_targets=PREDICTED)
        explain(features, head, targets=1)
    torch.testing.assert_close(explicit.svm, guessed.svm, rtol=0, atol=0)
    assert own.svm_target.tolist() == ints.predict(p).tolist() and own.cnn_target.tolist() == [1] * 12
    with pytest.raises(CadcamInputError, match="svm_targets: given without an svm"):
        explain(features, head, targets=1, svm_targets=PREDICTED)
