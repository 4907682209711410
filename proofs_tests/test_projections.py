"""PCA-like transforms as users fit them (issue 14): PCA, IncrementalPCA, TruncatedSVD, KernelPCA
(each kernel), and pipelines of affine scalers and ``Normalizer`` before them. The layer cadcam reads
gives scikit-learn's own ``transform`` and its Jacobian (scikit-learn's transform differentiated by
central differences: an independent oracle, to ~1e-9 at h = 1e-5); the maps' weights follow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA, IncrementalPCA, KernelPCA, TruncatedSVD
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from torch import nn

from cadcam_numeric import CadcamInputError, explain
from cadcam_numeric.engine.pca import kernel_centring, pca_layer_from_sklearn

PROJECTIONS = {
    "pca": lambda: PCA(3),
    "pca-whiten": lambda: PCA(3, whiten=True),
    "incremental": lambda: IncrementalPCA(3),
    "incremental-whiten": lambda: IncrementalPCA(3, whiten=True),
    "truncated-svd": lambda: TruncatedSVD(3, random_state=0),
    "kernel-linear": lambda: KernelPCA(3, kernel="linear"),
    "kernel-poly": lambda: KernelPCA(3, kernel="poly", gamma=0.1, coef0=1.0, degree=3),
    "kernel-rbf": lambda: KernelPCA(3, kernel="rbf", gamma=0.05),
    "kernel-rbf-default-gamma": lambda: KernelPCA(3, kernel="rbf"),
    "kernel-sigmoid": lambda: KernelPCA(3, kernel="sigmoid", gamma=0.02, coef0=0.5),
    "kernel-cosine": lambda: KernelPCA(3, kernel="cosine"),
}
SCALERS = {
    "none": [],
    "standard": [StandardScaler()],
    "standard-no-mean": [StandardScaler(with_mean=False)],
    "robust": [RobustScaler()],
    "minmax": [MinMaxScaler(feature_range=(-2, 3))],
    "maxabs+standard": [MaxAbsScaler(), StandardScaler()],
    "normalizer": [Normalizer()],
    "standard+normalizer+minmax": [StandardScaler(), Normalizer(), MinMaxScaler()],
}


def fitted(projection: str, scalers: str, x: np.ndarray):
    steps = [*(type(s)(**s.get_params()) for s in SCALERS[scalers]), PROJECTIONS[projection]()]
    return (make_pipeline(*steps) if len(steps) > 1 else steps[0]).fit(x)


def central_jacobian(transform, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """∂transform(x)_b/∂x_j by central differences (O(h²) truncation, ~1e-11 rounding)."""
    d = x.shape[1]
    cols = []
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        cols.append((transform(x + e) - transform(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)  # (N, B, D)


@pytest.mark.parametrize("scalers", sorted(SCALERS))
@pytest.mark.parametrize("projection", sorted(PROJECTIONS))
def test_the_layer_is_sklearns_transform_and_its_jacobian(projection, scalers):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)) * rng.uniform(0.5, 5, size=6) + rng.normal(size=6) * 3
    est = fitted(projection, scalers, x)
    layer = pca_layer_from_sklearn(est, 6, torch.zeros((), dtype=torch.float64))
    probe = rng.normal(size=(5, 6)) * 2
    scores = layer.scores(torch.from_numpy(probe)).numpy()
    np.testing.assert_allclose(scores, est.transform(probe), rtol=1e-10, atol=1e-10)
    eye = torch.eye(3, dtype=torch.float64).expand(5, 3, 3)
    jac = layer.pullback(eye, torch.from_numpy(probe)).numpy()
    expected = central_jacobian(est.transform, probe)
    np.testing.assert_allclose(jac, expected, rtol=1e-6, atol=1e-8 * max(np.abs(expected).max(), 1.0))


def test_explain_with_a_scaler_pipeline_on_the_pooled_features():
    """pca_after=0 with StandardScaler -> PCA(whiten): the PCA weights are the position sums of
    scikit-learn's transform differentiated through the pooling (central differences on F)."""
    torch.manual_seed(0)
    head = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 4)).double()
    features = torch.randn(5, 2, 4, 4, dtype=torch.float64)

    def pooled(f: torch.Tensor) -> np.ndarray:
        return head[1](head[0](f)).detach().numpy()

    est = make_pipeline(StandardScaler(), PCA(2, whiten=True)).fit(
        pooled(torch.randn(30, 2, 4, 4, dtype=torch.float64))
    )
    result = explain(features, head, est, 0)
    h = 1e-3
    expected = np.zeros((5, 2, 2))
    flat = features.reshape(5, -1)
    for k in range(flat.shape[1]):
        e = torch.zeros_like(flat)
        e[:, k] = h
        diff = (
            est.transform(pooled((flat + e).reshape(features.shape)))
            - est.transform(pooled((flat - e).reshape(features.shape)))
        ) / (2 * h)
        expected[:, :, k // 16] += diff  # channel of element k (16 positions per channel)
    np.testing.assert_allclose(result.pca_weights.numpy(), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (make_pipeline(Normalizer("l1"), PCA(2)), r"Normalizer\(norm='l1'\) is not supported"),
        (KernelPCA(2, kernel=np.dot), r"KernelPCA\(kernel=<function dot.*\) has no closed-form gradient"),
        (make_pipeline(PCA(3), PCA(2)), "pca: expected PCA, IncrementalPCA, TruncatedSVD, KernelPCA"),
        (make_pipeline(MinMaxScaler(clip=True), PCA(2)), r"MinMaxScaler\(clip=True\) is not affine"),
        (StandardScaler(), "got StandardScaler"),
    ],
)
def test_what_is_not_a_linear_projection_is_refused_by_name(estimator, message):
    x = np.random.default_rng(1).normal(size=(20, 4))
    estimator.fit(x)
    with pytest.raises(CadcamInputError, match=message):
        pca_layer_from_sklearn(estimator, 4, torch.zeros(()))


def test_a_whitened_component_without_variance_is_refused():
    x = np.random.default_rng(2).normal(size=(10, 4))
    x[:, 3] = x[:, 0] + x[:, 1]  # rank 3: the 4th component has no variance
    pca = PCA(4, whiten=True).fit(x)
    with pytest.raises(CadcamInputError, match="a whitened component has zero"):
        pca_layer_from_sklearn(pca, 4, torch.zeros((), dtype=torch.float64))


def test_zero_rows_before_a_normalizer_and_bad_prelu_widths_are_refused():
    """x/|x| has no derivative at 0: a zero row is refused by name, not given an identity Jacobian;
    a PReLU with as many slopes as neither 1 nor its layer's units is refused."""
    x = np.random.default_rng(5).normal(size=(20, 4))
    est = make_pipeline(Normalizer(), PCA(2)).fit(x)
    head = nn.Sequential(nn.Flatten())
    features = torch.randn(3, 4, 1, 1, dtype=torch.float64)
    features[1] = 0
    with pytest.raises(CadcamInputError, match="1 input row\\(s\\) of a Normalizer are all zero"):
        explain(features, head, est, 0)
    bad = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.PReLU(2)).double()
    with pytest.raises(CadcamInputError, match="PReLU at position 2 has 2 values of 'weight'"):
        explain(torch.randn(2, 4, 1, 1, dtype=torch.float64), bad)
    with pytest.raises(CadcamInputError, match="pca: the Pipeline holds no estimator"):
        from sklearn.pipeline import Pipeline

        pca_layer_from_sklearn(Pipeline([("a", "passthrough")]), 4, torch.zeros(()))


@pytest.mark.parametrize("kernel", ["linear", "poly", "rbf", "sigmoid", "cosine"])
def test_kernel_centring_from_public_attributes_is_scikit_learns(kernel):
    """The column and grand means of the training kernel, from X_fit_ and the kernel's parameters, equal
    what KernelPCA keeps in its private _centerer (read here only to hold the two together)."""
    x = np.random.default_rng(3).normal(size=(40, 5))
    kpca = KernelPCA(3, kernel=kernel, gamma=0.3 if kernel != "linear" else None, degree=2, coef0=0.5).fit(x)
    rows, grand = kernel_centring(kpca)
    np.testing.assert_allclose(rows, kpca._centerer.K_fit_rows_, rtol=1e-12, atol=1e-14)
    assert abs(grand - kpca._centerer.K_fit_all_) <= 1e-12 * max(1.0, abs(kpca._centerer.K_fit_all_))
