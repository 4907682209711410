"""Vision transformers: the split, the closed form through the last block against autograd (float64,
Hypothesis-drawn heads), the class maps against pytorch-grad-cam, and probes on the embedding."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from torch import nn

from cadcam_numeric import ClosedForm, explain, normalise, position_gradients, split_classifier, upsample
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.verification.references import ReferencePCA
from cadcam_numeric.verification.sklearn_references import ReferenceClassScores

timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")


def _randomised(model: nn.Module, seed: int) -> nn.Module:
    """Every parameter drawn afresh (LayerScale and norms included), so no factor is 1 or 0 by init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
    return model.eval()


def _tiny_vit(heads: int, head_dim: int, registers: int, pool: str, layer_scale: bool, gelu: str, seed: int, depth=2):
    act = functools.partial(nn.GELU, approximate="tanh") if gelu == "tanh" else nn.GELU
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=8, patch_size=4, embed_dim=heads * head_dim, depth=depth, num_heads=heads, mlp_ratio=1.5,
        reg_tokens=registers, global_pool=pool, init_values=0.5 if layer_scale else None, act_layer=act,
        num_classes=3,
    )  # fmt: skip
    return _randomised(model, seed).double()


def _autograd_at_norm1(head, tokens: torch.Tensor):
    """The embedding e with A = norm1's output made a leaf: autograd's ∂(·)/∂A, as pytorch-grad-cam takes it."""
    held = {}

    def hook(_module, _inputs, output):
        held["a"] = output.detach().requires_grad_(True)
        return held["a"]

    handle = head.parts.norm1.register_forward_hook(hook)
    try:
        e = head.embedding(tokens)
    finally:
        handle.remove()
    return e, held["a"]


def _grid(head, tokens: torch.Tensor) -> torch.Tensor:
    """(N, T, D) -> patch tokens (N, D, h, w)."""
    h, w = head.grid
    p = tokens[:, head.num_prefix_tokens :]
    return p.reshape(p.shape[0], h, w, p.shape[-1]).permute(0, 3, 1, 2)


def _maps_from(a_grid: torch.Tensor, grad_grid: torch.Tensor):
    """Grad-CAM's weights Σ positions ∂/∂A and signed map Σ_d w_d A_d, with the scales of what they
    sum (Σ|∂/∂A| and Σ_d |w_d A_d|): float64 rounding is relative to those, not to a sum that cancels."""
    weights = grad_grid.sum(dim=(-2, -1))
    signed = torch.einsum("nd,ndhw->nhw", weights, a_grid)
    scales = grad_grid.abs().sum(dim=(-2, -1)), torch.einsum("nd,ndhw->nhw", weights.abs(), a_grid.abs())
    return weights, signed, scales


def _close(actual: torch.Tensor, expected: torch.Tensor, what: str, rtol: float = 1e-10, scale=None) -> None:
    """max |actual − expected| ≤ rtol · max(scale) (default: max |expected|)."""
    reference = float((expected if scale is None else scale).abs().max())
    err = float((actual - expected).abs().max()) / max(reference, 1e-300)
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol}"


def _check_against_autograd(head, a, a_grid, score, got_grad, got_weights, got_signed_pair, what: str) -> None:
    """The closed form's position gradients, weights and map(s) for ``score`` against autograd at A."""
    (grad,) = torch.autograd.grad(score.sum(), a, retain_graph=True)
    grad_grid = _grid(head, grad)
    _close(got_grad, grad_grid, f"{what}: position gradients")
    weights, signed, (w_scale, m_scale) = _maps_from(a_grid, grad_grid)
    _close(got_weights, weights, f"{what}: weights", scale=w_scale)
    positive, negative = got_signed_pair
    _close(positive, torch.relu(signed), f"{what}: map", scale=m_scale)
    if negative is not None:
        _close(negative, torch.relu(-signed), f"{what}: negative map", scale=m_scale)


@given(
    heads=st.integers(1, 3),
    head_dim=st.sampled_from([4, 8]),  # D ≥ 4: over D = 2 a LayerNorm's Jacobian is exactly zero
    registers=st.integers(0, 4),
    pool=st.sampled_from(["token", "avg"]),
    layer_scale=st.booleans(),
    gelu=st.sampled_from(["erf", "tanh"]),
    probe=st.sampled_from(["none", "logistic", "pca-svc"]),
    depth=st.integers(1, 3),  # blocks before the explained one: 0–2 (the explained part is the last block)
    seed=st.integers(0, 2**16),
)
def test_every_map_and_weight_equals_autograd_through_the_torch_model(
    heads, head_dim, registers, pool, layer_scale, gelu, probe, depth, seed
):
    model = _tiny_vit(heads, head_dim, registers, pool, layer_scale, gelu, seed, depth)
    backbone, head = split_classifier(model)
    images = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        tokens = backbone(images)
    e, a = _autograd_at_norm1(head, tokens)
    labels = np.arange(8) % 2
    pca = svm = None
    if probe == "logistic":
        svm = LogisticRegression(max_iter=200).fit(e.detach().numpy(), labels)
    elif probe == "pca-svc":
        pca = PCA(2).fit(e.detach().numpy())
        svm = SVC(gamma=0.3).fit(pca.transform(e.detach().numpy()), labels)
    r = explain(tokens, head, pca=pca, pca_after=0 if svm is not None else None, svm=svm)
    logits = head.classifier(e)
    _close(r.logits, logits.detach(), "logits", 1e-12)
    a_grid = _grid(head, a.detach())

    grads = position_gradients(tokens, head, pca=pca, pca_after=0 if svm is not None else None, svm=svm)
    check = functools.partial(_check_against_autograd, head, a, a_grid)
    check(logits.gather(1, r.cnn_target[:, None]), grads.gradcam, r.class_weights, (r.gradcam, None), "Grad-CAM")
    p = None
    if pca is not None:
        p = ReferencePCA(*(torch.from_numpy(v) for v in (pca.components_, pca.mean_)))(e)
        for b in range(2):
            pair = (r.pca_positive[:, b], r.pca_negative[:, b])
            check(p[:, b], grads.pca[:, b], r.pca_weights[:, b], pair, f"PCA-Grad-CAM {b}")
    if svm is not None:
        scores = ReferenceClassScores(svm)(e if p is None else p)
        index = torch.as_tensor([list(svm.classes_).index(t) for t in np.asarray(r.svm_target).tolist()])
        check(scores.gather(1, index[:, None]), grads.svm, r.svm_weights, (r.svm, None), "SVM-Grad-CAM")


VIT_MODELS = {
    "vit_tiny_patch16_224": dict(img_size=32),
    "deit_tiny_patch16_224": dict(img_size=32, global_pool="avg"),
    "vit_small_patch14_reg4_dinov2": dict(img_size=28, num_classes=5),
}


def _torchvision_vit():
    return torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=24, num_classes=5
    )


def _models():
    for name, kw in VIT_MODELS.items():
        yield name, _randomised(timm.create_model(name, pretrained=False, **kw), 1)
    yield "torchvision", _randomised(_torchvision_vit(), 2)


def _target_layer(model: nn.Module) -> nn.Module:
    return model.blocks[-1].norm1 if hasattr(model, "blocks") else model.encoder.layers[-1].ln_1


@pytest.mark.parametrize(("name", "model"), list(_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_split_reproduces_the_model_and_the_maps_are_pytorch_grad_cams(name, model):
    from pytorch_grad_cam import GradCAM, HiResCAM, XGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    backbone, head = split_classifier(model)
    size = 28 if "dinov2" in name else 32
    images = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        tokens = backbone(images)
        expected = model(images)
    np.testing.assert_allclose(head(tokens).detach().numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    r = explain(tokens, head)
    np.testing.assert_allclose(r.logits.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    h, w = head.grid
    assert r.gradcam.shape == (4, h, w)

    def to_grid(t):
        p = t[:, head.num_prefix_tokens :]
        return p.reshape(p.shape[0], h, w, p.shape[-1]).permute(0, 3, 1, 2)

    for method, peer in (("grad-cam", GradCAM), ("xgrad-cam", XGradCAM), ("hires-cam", HiResCAM)):
        ours = explain(tokens, head, method=method).gradcam
        with peer(model=model, target_layers=[_target_layer(model)], reshape_transform=to_grid) as cam:
            theirs = cam(input_tensor=images, targets=[ClassifierOutputTarget(int(c)) for c in r.cnn_target])
        np.testing.assert_allclose(normalise(upsample(ours, (size, size))).numpy(), theirs, atol=1e-4, err_msg=method)


def test_probes_on_the_pooled_embedding_and_on_pooled_cnn_features():
    """pca=None: the classifier reads the pooled layer directly — a ViT's embedding, a CNN's pooled features."""
    model = _randomised(timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=0), 4)
    backbone, head = split_classifier(model)
    images = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        tokens = backbone(images)
        embedding = model.forward_head(model.forward_features(images), pre_logits=True)
    np.testing.assert_allclose(head.embedding(tokens).detach().numpy(), embedding.numpy(), rtol=1e-5, atol=1e-5)
    labels = np.arange(10) % 3
    clf = LogisticRegression(max_iter=500).fit(embedding.numpy(), labels)
    r = explain(tokens, head, pca=None, pca_after=0, svm=clf)
    assert r.gradcam is None and r.svm.shape == (10, 2, 2)
    np.testing.assert_array_equal(np.asarray(r.svm_prediction), clf.predict(embedding.numpy()))
    cnn = torchvision.models.resnet18(num_classes=4).eval()
    cnn_backbone, cnn_head = split_classifier(cnn)
    with torch.no_grad():
        features = cnn_backbone(images)
    pooled = features.mean(dim=(2, 3)).numpy()
    probe = LogisticRegression(max_iter=500).fit(pooled, labels)
    r = explain(features, cnn_head, pca=None, pca_after=0, svm=probe)
    assert r.svm.shape == (10, 1, 1) and r.gradcam.shape == (10, 1, 1)
    np.testing.assert_array_equal(np.asarray(r.svm_prediction), probe.predict(pooled))
    with pytest.raises(CadcamInputError, match="pca_after: expected an integer"):
        explain(features, cnn_head, pca=None, svm=probe)


def test_the_closed_form_module_takes_a_transformer_head_and_exports():
    model = _randomised(timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=3), 6)
    backbone, head = split_classifier(model)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        tokens = backbone(images)
    cf = ClosedForm(head).eval()
    out = cf(tokens)
    np.testing.assert_allclose(out["gradcam"].numpy(), explain(tokens, head).gradcam.numpy(), rtol=1e-5, atol=1e-6)
    program = torch.export.export(cf, (tokens,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    exported = program.module()(tokens[:2])
    np.testing.assert_allclose(exported["gradcam"].numpy(), out["gradcam"][:2].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(CadcamInputError, match=r"features: expected \(N, 5, 192\)"):
        cf(tokens[:, :3])


def test_eigen_cam_decom_cam_and_target_scores_on_the_token_grid():
    """Eigen-CAM of a ViT equals pytorch-grad-cam's projection of norm1's output captured by a hook and
    reshaped to the grid (up to its arbitrary sign); target_scores give model(x) and the probes' own
    decision_function on the embedding; Decom-CAM runs on the token grid with those scores."""
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    from cadcam_numeric import decom_cam, eigen_cam, target_scores
    from cadcam_numeric.methods.eigen import eigen_grad_cam

    model = _randomised(timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=3), 8)
    backbone, head = split_classifier(model)
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    held = []
    handle = model.blocks[-1].norm1.register_forward_hook(lambda _m, _i, out: held.append(out.detach()))
    try:
        with torch.no_grad():
            logits = model(images)
            embedding = model.forward_head(model.forward_features(images), pre_logits=True).numpy()
    finally:
        handle.remove()
    grid = held[0][:, 1:].reshape(8, 2, 2, 192).permute(0, 3, 1, 2)  # the hook's capture, not the head's
    with torch.no_grad():
        tokens = backbone(images)
    ours = eigen_cam(tokens, head=head).numpy()
    theirs = get_2d_projection(grid.numpy())
    for a, b in zip(ours, theirs, strict=True):
        sign = 1.0 if np.abs(a - b).max() <= np.abs(a + b).max() else -1.0
        np.testing.assert_allclose(a, sign * b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
    g = position_gradients(tokens, head)
    np.testing.assert_allclose(g.features.numpy(), grid.numpy(), rtol=1e-5, atol=1e-6)
    # Eigen-Grad-CAM: pytorch-grad-cam's projection of autograd's gradient × the hooked activation
    e, a = _autograd_at_norm1(head, tokens)
    scores = head.classifier(e)
    (grad,) = torch.autograd.grad(scores.gather(1, scores.argmax(1, keepdim=True)).sum(), a)
    theirs = get_2d_projection((_grid(head, grad) * grid).detach().numpy())
    for mine, peer in zip(eigen_grad_cam(tokens, g.gradcam, head=head).numpy(), theirs, strict=True):
        sign = 1.0 if np.abs(mine - peer).max() <= np.abs(mine + peer).max() else -1.0
        np.testing.assert_allclose(mine, sign * peer, rtol=1e-3, atol=1e-4 * np.abs(peer).max())
    labels = np.arange(8) % 2
    probe = LogisticRegression(max_iter=500).fit(embedding, labels)
    pca = PCA(3).fit(embedding)
    svc = SVC(kernel="rbf").fit(pca.transform(embedding), labels)
    s = target_scores(tokens, head, pca=None, pca_after=0, svm=probe)
    np.testing.assert_allclose(s.logits.numpy(), logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.svm_scores[:, 1].numpy(), probe.decision_function(embedding), rtol=1e-4, atol=1e-4)
    s = target_scores(tokens, head, pca=pca, pca_after=0, svm=svc)
    np.testing.assert_allclose(s.pca_scores.numpy(), pca.transform(embedding), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s.svm_scores[:, 1].numpy(), svc.decision_function(pca.transform(embedding)), atol=1e-4)
    d = decom_cam(images, backbone, head, pca, 0, svc, target="svm", p=2, blur_sigma=2.0)
    assert d.saliency.shape == (8, 32, 32) and d.feature_maps.shape[-2:] == (2, 2)
    torch.testing.assert_close(d.weights.sum(dim=1), torch.ones(8))
    with pytest.raises(CadcamInputError, match="head: expected None or a TransformerHead"):
        eigen_cam(tokens, head=nn.Sequential())


def test_pcasvmgradcam_from_model_takes_a_vit_and_checks_it_on_every_call():
    """from_model on a ViT hooks the tokens entering the last block; its maps are explain's upsampled,
    PCA → SVC on the embedding included; a target layer elsewhere in the model is refused."""
    from cadcam_numeric import PCASVMGradCAM

    model = _randomised(_torchvision_vit(), 10)
    backbone, head = split_classifier(model)
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        tokens = backbone(images)
        embedding = head.embedding(tokens).numpy()
    pca = PCA(2).fit(embedding)
    svc = SVC(kernel="rbf").fit(pca.transform(embedding), np.arange(6) % 2)
    with PCASVMGradCAM.from_model(model, pca=pca, pca_after=0, svm=svc) as cam:
        maps = cam(images)
    r = explain(tokens, head, pca, 0, svc)
    np.testing.assert_allclose(maps.raw.gradcam.numpy(), r.gradcam.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.raw.svm.numpy(), r.svm.numpy(), rtol=1e-5, atol=1e-6)
    assert maps.gradcam.shape == (6, 32, 32) and maps.pca_positive.shape == (6, 2, 32, 32)
    with pytest.raises(CadcamInputError, match="target_layer: with a TransformerHead"):
        PCASVMGradCAM(model, model.encoder.layers[0], head)


@pytest.mark.parametrize(("name", "model"), list(_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_probe_maps_of_the_named_models_equal_autograd_through_the_probe(name, model):
    """A LogisticRegression probe and PCA → SVC on each named model's embedding, in float64: the probe's
    position gradients, weights and maps equal autograd through the model's own last block and the
    probe written independently from scikit-learn's attributes (1e-10)."""
    model = model.double()
    backbone, head = split_classifier(model)
    size = 28 if "dinov2" in name else 32
    images = torch.rand(6, 3, size, size, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    with torch.no_grad():
        tokens = backbone(images)
    e, a = _autograd_at_norm1(head, tokens)
    embedding = e.detach().numpy()
    labels = np.arange(6) % 3
    pca = PCA(2).fit(embedding)
    for probe, svm in (
        (None, LogisticRegression(max_iter=500).fit(embedding, labels)),
        (pca, SVC(gamma=0.5).fit(pca.transform(embedding), labels)),
    ):
        r = explain(tokens, head, pca=probe, pca_after=0, svm=svm)
        grads = position_gradients(tokens, head, pca=probe, pca_after=0, svm=svm)
        read = e if probe is None else ReferencePCA(*(torch.from_numpy(v) for v in (pca.components_, pca.mean_)))(e)
        scores = ReferenceClassScores(svm)(read)
        index = torch.as_tensor([list(svm.classes_).index(t) for t in np.asarray(r.svm_target).tolist()])
        np.testing.assert_array_equal(np.asarray(r.svm_prediction), svm.predict(read.detach().numpy()))
        _check_against_autograd(
            head, a, _grid(head, a.detach()), scores.gather(1, index[:, None]), grads.svm, r.svm_weights, (r.svm, None),
            f"{name} {type(svm).__name__}",
        )  # fmt: skip
