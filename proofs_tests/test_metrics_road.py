"""ROAD, Average Drop / Increase in Confidence, Spearman rank similarity and SSIM against their peers:
pytorch-grad-cam's ROAD (noise 0) at every percentile, torch-cam's ClassificationMetric, SciPy's
spearmanr and scikit-image's structural_similarity; and against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import spearmanr
from torch import nn

from cadcam_numeric import metrics
from cadcam_numeric.errors import CadcamInputError

# pytorch-grad-cam's imputer calls np.argwhere on a torch tensor, which NumPy 2 deprecates (its code, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)
    ).eval()


def test_road_impute_by_hand():
    """One removed pixel amid known ones: the weighted mean of its 8 neighbours (weights sum to 1);
    at a corner the 3 inside neighbours' weights, renormalised by the system (−Σw·v + Σw·n = 0)."""
    image = torch.arange(9.0).reshape(1, 3, 3)
    keep = torch.ones(3, 3, dtype=torch.bool)
    keep[1, 1] = False
    edge, corner = 1 / 6, 1 / 12
    expected = edge * (1 + 3 + 5 + 7) + corner * (0 + 2 + 6 + 8)
    out = metrics.road_impute(image, keep, noise=0)
    assert torch.allclose(out[0, 1, 1], torch.tensor(expected))
    assert torch.equal(out[keep.unsqueeze(0)], image[keep.unsqueeze(0)])
    keep = torch.ones(3, 3, dtype=torch.bool)
    keep[0, 0] = False
    at_corner = (edge * (1 + 3) + corner * 4) / (2 * edge + corner)
    assert torch.allclose(metrics.road_impute(image, keep, noise=0)[0, 0, 0], torch.tensor(at_corner))


@given(seed=st.integers(0, 2**16), h=st.integers(3, 9), w=st.integers(3, 9), fraction=st.floats(0.05, 0.95))
def test_road_impute_equals_pytorch_grad_cams_imputer(seed, h, w, fraction):
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, h, w, generator=g)
    keep = torch.rand(h, w, generator=g) > fraction
    theirs = NoisyLinearImputer(noise=0)(image, keep.float())
    torch.testing.assert_close(metrics.road_impute(image, keep, noise=0), theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_road_equals_pytorch_grad_cam_at_every_percentile(order):
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirst, ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _model()
    g = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 10, 12, generator=g)
    cams = torch.rand(4, 10, 12, generator=g)
    target = model(images).argmax(1)
    percentiles = (10, 20, 30, 40, 50, 60, 70, 80, 90)

    def score(x, index):
        return model(x)[torch.arange(x.shape[0]), target[index]]

    ours = metrics.road(score, images, cams, percentiles=percentiles, order=order, noise=0, batch_size=5)
    assert ours.shape == (4, 9)
    peer = ROADMostRelevantFirst if order == "morf" else ROADLeastRelevantFirst
    for j, p in enumerate(percentiles):
        metric = peer(p)
        metric.perturbation.imputer.noise = 0
        targets = [ClassifierOutputTarget(int(c)) for c in target]
        theirs = metric(images, cams.numpy(), targets, model, return_diff=False)
        np.testing.assert_allclose(ours[:, j].numpy(), theirs, rtol=1e-5, atol=1e-6, err_msg=f"{order} p={p}")


@pytest.mark.filterwarnings("ignore::scipy.sparse.linalg.MatrixRankWarning")
def test_road_on_relu_maps_with_tied_zeros_equals_pytorch_grad_cam():
    """Half of each map is exactly 0 (a ReLU'd map): MoRF at p ≤ 50 has threshold 0 and keeps nothing.
    pytorch-grad-cam hands SciPy the singular system (a MatrixRankWarning) and gets the zero image;
    cadcam imputes 0 without solving. At every p, ties and all, the scores agree."""
    from pytorch_grad_cam.metrics.road import ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _model()
    g = torch.Generator().manual_seed(4)
    images = torch.rand(3, 3, 8, 8, generator=g)
    cams = (torch.rand(3, 8, 8, generator=g) - 0.5).relu()
    target = model(images).argmax(1)

    def score(x, index):
        return model(x)[torch.arange(x.shape[0]), target[index]]

    percentiles = (30, 60, 90)
    ours = metrics.road(score, images, cams, percentiles=percentiles, noise=0)
    zero_image = model(torch.zeros(1, 3, 8, 8))[0, target]
    for j, p in enumerate(percentiles):
        metric = ROADMostRelevantFirst(p)
        metric.perturbation.imputer.noise = 0
        theirs = metric(
            images, cams.numpy(), [ClassifierOutputTarget(int(c)) for c in target], model, return_diff=False
        )
        np.testing.assert_allclose(ours[:, j].numpy(), theirs, rtol=1e-5, atol=1e-6, err_msg=f"p={p}")
        if p == 30:  # the zeros hold about half of each map: nothing is kept
            torch.testing.assert_close(ours[:, j], zero_image.detach())


def test_road_noise_is_reproducible_and_bad_input_is_named():
    model = _model()
    images, cams = torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8)

    def score(x, index):
        return model(x)[:, 0]

    a = metrics.road(score, images, cams, generator=torch.Generator().manual_seed(3))
    b = metrics.road(score, images, cams, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, metrics.road(score, images, cams, noise=0))
    with pytest.raises(CadcamInputError, match="order: expected 'morf' or 'lerf'"):
        metrics.road(score, images, cams, order="random")
    with pytest.raises(CadcamInputError, match="saliency: expected shape"):
        metrics.road(score, images, cams[:, :4])
    with pytest.raises(CadcamInputError, match="keep: expected a bool tensor"):
        metrics.road_impute(images[0], cams[0])


def test_average_drop_and_increase_equal_torch_cams_classification_metric():
    """torch-cam computes the maps itself (its GradCAM, normalised, resized bilinearly); the same maps
    given to ours give its numbers (it divides by Y + 1e-7, hence the tolerance)."""
    pytest.importorskip("torchcam")
    from torchcam.methods import GradCAM
    from torchcam.metrics import ClassificationMetric

    model = _model()
    images = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    with GradCAM(model, target_layer=model[1]) as extractor:
        metric = ClassificationMetric(extractor, lambda out: torch.softmax(out, dim=-1))
        metric.update(images)
        theirs = metric.summary()
        logits = model(images)
        target = logits.argmax(1)
        cams = extractor(target.tolist(), logits)[0]
    maps = torch.nn.functional.interpolate(cams.unsqueeze(1), (12, 12), mode="bilinear", align_corners=False)[:, 0]

    def score(x, index):
        return torch.softmax(model(x), dim=-1)[torch.arange(x.shape[0]), target[index]]

    drop, increase = metrics.average_drop_increase(score, images, maps.detach())
    assert drop == pytest.approx(100 * theirs["avg_drop"], rel=1e-5)
    assert increase == pytest.approx(100 * theirs["conf_increase"])


def test_average_drop_and_increase_by_hand():
    images = torch.ones(4, 1, 2, 2)
    maps = torch.stack([torch.full((2, 2), v) for v in (1.0, 0.5, 0.0, 0.25)])

    def score(x, index):  # the mean pixel, plus 0.5 for image 3 once masked: its score rises above Y
        mean = x.mean(dim=(1, 2, 3))
        return mean + 0.5 * (index == 3) * (mean < 1)

    # Y = 1, 1, 1, 1; O = 1, 0.5, 0, 0.25 + 0.5 = 0.75 → drops 0, 50, 100, 25 % → 43.75 %; no increase
    assert metrics.average_drop_increase(score, images, maps) == (43.75, 0.0)

    def rising(x, index):  # image 3's masked score is 1.25 > Y = 1: one increase in four
        mean = x.mean(dim=(1, 2, 3))
        return mean + (index == 3) * (mean < 1) * 1.0

    assert metrics.average_drop_increase(rising, images, maps) == (37.5, 25.0)  # drops 0, 50, 100, 0
    with pytest.raises(CadcamInputError, match=r"saliency: expected values in \[0, 1\]"):
        metrics.average_drop_increase(score, images, 2 * maps)


@given(seed=st.integers(0, 2**16), ties=st.booleans())
def test_rank_similarity_equals_scipy_spearmanr_per_map(seed, ties):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(3, 4, 5, generator=g), torch.rand(3, 4, 5, generator=g)
    if ties:
        a, b = (a * 3).round(), (b * 3).round()
    ours = metrics.rank_similarity(a, b).numpy()
    for i in range(3):
        expected = spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy()).statistic
        np.testing.assert_allclose(ours[i], expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@given(seed=st.integers(0, 2**16), h=st.integers(7, 14), w=st.integers(7, 14))
def test_ssim_equals_scikit_image(seed, h, w):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, h, w, generator=g, dtype=torch.float64)
    b = (a + 0.3 * torch.rand(2, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = metrics.ssim(a, b).numpy()
    for i in range(2):
        expected = skimage_metrics.structural_similarity(a[i].numpy(), b[i].numpy(), data_range=1)
        np.testing.assert_allclose(ours[i], expected, rtol=1e-10)
    with pytest.raises(CadcamInputError, match="window needs maps of at least"):
        metrics.ssim(a[:, :5, :5], b[:, :5, :5])


def test_a_constant_map_removes_every_pixel_and_the_imputation_is_zero():
    """MoRF and LeRF keep the pixels strictly below a percentile: none of a constant map's. With no
    known pixel the system is singular and nothing carries a value, so every pixel becomes 0."""
    images = torch.rand(2, 3, 6, 6)
    seen = []

    def score(x, index):
        seen.append(x.clone())
        return x.mean(dim=(1, 2, 3))

    out = metrics.road(score, images, torch.zeros(2, 6, 6), percentiles=(50, 90), noise=0)
    assert torch.equal(out, torch.zeros(2, 2)) and torch.equal(torch.cat(seen), torch.zeros(4, 3, 6, 6))
    assert torch.equal(
        metrics.road_impute(images[0], torch.zeros(6, 6, dtype=torch.bool), noise=0), torch.zeros(3, 6, 6)
    )
