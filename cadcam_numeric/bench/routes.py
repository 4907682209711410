"""The routes the benchmark times, each producing the same set of maps for a batch of images.

"All maps" = Grad-CAM of the CNN's predicted class, the B = 3 PCA-Grad-CAM pairs P_b⊕/P_b⊖ and
SVM-Grad-CAM of the SVM's predicted class, at image resolution and normalised (the pairs on their
shared ν_b scale). Routes:

1. ``backbone``      — the VGG16 forward pass alone: the floor every route pays;
2. ``explain``       — this project: :class:`~cadcam_numeric.engine.model_cam.PCASVMGradCAM` (one model
                       forward, then the closed form);
3. ``autograd``      — backbone forward, then autograd on the head: features detached, one head
                       forward with graph and one backward per target (class, p_1..p_3, SVM);
   ``torch_func``    — backbone forward, then ``vmap(jacrev(...))`` over the images;
4. ``grad_cam_pkg``  — the ``grad-cam`` package (pytorch-grad-cam) as a user would call it today:
                       ``GradCAM`` on a model whose output is [logits, p, SVM class scores], one
                       call per target with custom targets (class, +p_b, −p_b for each b, SVM), each
                       call a full forward and backward through VGG16 (the backbone is frozen,
                       so the input carries the gradient: ``compute_input_gradient``).

Head-only variants (``*_head``) start from the features, to isolate the closed form's gain.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from pytorch_grad_cam import EigenCAM, GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from cadcam_numeric.bench.problem import N_CLASSES, N_COMPONENTS, BenchProblem
from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.explain import explain
from cadcam_numeric.engine.maps import normalise, normalise_pca_pair, upsample
from cadcam_numeric.engine.model_cam import PCASVMGradCAM
from cadcam_numeric.methods.decom import decom_cam
from cadcam_numeric.methods.eigen import eigen_cam

__all__ = ["Routes"]


class _AllOutputs(nn.Module):
    """[logits (10), p (3), SVM class scores (10)] — what pytorch-grad-cam's targets index into."""

    def __init__(self, problem: BenchProblem) -> None:
        super().__init__()
        self.problem = problem
        self.backbone, self.head = problem.backbone, problem.head

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(self.problem.outputs(self.backbone(x)), dim=1)


class _Negated:
    """−output[index]: the P_b⊖ target (pytorch-grad-cam applies ReLU, so ⊖ needs its own call)."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, output: Tensor) -> Tensor:
        return -output[..., self.index]


def _signed_maps(weights: Tensor, features: Tensor) -> tuple[Tensor, Tensor]:
    """(weights, signed maps Σ_t w^t F^t) — the raw maps every head route returns, as the closed form does."""
    return weights, torch.einsum("nkt,nthw->nkhw", weights, features)


def _finish(problem: BenchProblem, weights: Tensor, signed: Tensor) -> dict[str, Tensor]:
    """Signed maps (N, 5, M, N'): class, p_1..p_3, SVM -> image resolution, normalised (pairs on ν_b)."""
    size = (problem.input_size, problem.input_size)
    pos, neg = normalise_pca_pair(upsample(signed[:, 1:4].relu(), size), upsample((-signed[:, 1:4]).relu(), size))
    return {
        "gradcam": normalise(upsample(signed[:, 0].relu(), size)),
        "pca_positive": pos,
        "pca_negative": neg,
        "svm": normalise(upsample(signed[:, 4].relu(), size)),
        "weights": weights,
    }


class Routes:
    """Every route for one problem; hooks (ours and pytorch-grad-cam's) are held until ``close``."""

    def __init__(self, problem: BenchProblem) -> None:
        self.problem = problem
        self.cam = PCASVMGradCAM(
            problem.model, problem.backbone, problem.head, problem.pca, problem.pca_after, problem.svm
        ).__enter__()
        self.outputs_model = _AllOutputs(problem).eval()
        self.peer = GradCAM(model=self.outputs_model, target_layers=[problem.backbone])
        # The backbone is frozen (no parameter requires grad), so the target layer's output only
        # carries a gradient when the input does: pytorch-grad-cam's switch for that.
        self.peer.compute_input_gradient = True
        self.peer_eigen = EigenCAM(model=problem.model, target_layers=[problem.backbone])
        self.pca_layer = PCALayer(problem.components, problem.mean)

    def close(self) -> None:
        self.cam.release()
        for peer in (self.peer, self.peer_eigen):
            peer.activations_and_grads.release()

    # -- targets ---------------------------------------------------------------------------
    def targets(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """The CNN's and the SVM's predicted class indices (N,), from one head forward."""
        pr = self.problem
        with torch.no_grad():
            logits, p, _ = pr.outputs(features, svm_scores=False)
            svm_pred = pr.svm_head.class_index(pr.svm_head.predict(p), "svm").to(features.device)
        return logits.argmax(1), svm_pred

    # -- 1 ---------------------------------------------------------------------------------
    def backbone(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return self.problem.backbone(images)

    # -- 2 ---------------------------------------------------------------------------------
    def explain(self, images: Tensor) -> dict[str, Tensor]:
        maps = self.cam(images)
        raw = maps.raw
        weights = torch.cat([raw.class_weights[:, None], raw.pca_weights, raw.svm_weights[:, None]], 1)
        return {
            "gradcam": maps.gradcam,
            "pca_positive": maps.pca_positive,
            "pca_negative": maps.pca_negative,
            "svm": maps.svm,
            "weights": weights,
        }

    def closed_head(self, features: Tensor) -> Tensor:
        """Channel weights and raw maps in closed form (PCA and SVM read once, as ``PCASVMGradCAM`` does)."""
        pr = self.problem
        raw = explain(features, pr.head, self.pca_layer, pr.pca_after, pr.svm_head)
        return torch.cat([raw.class_weights[:, None], raw.pca_weights, raw.svm_weights[:, None]], 1)

    # -- 3 ---------------------------------------------------------------------------------
    def autograd_head(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Channel weights by one head forward with graph and one backward per target."""
        pr = self.problem
        cls, svm_idx = self.targets(features)
        f = features.detach().clone().requires_grad_(True)
        logits, p, a = pr.outputs(f)
        rows = torch.arange(f.shape[0], device=f.device)
        outputs = [logits[rows, cls], *(p[:, b] for b in range(N_COMPONENTS)), a[rows, svm_idx]]
        weights = []
        for k, out in enumerate(outputs):
            (g,) = torch.autograd.grad(out.sum(), f, retain_graph=k < len(outputs) - 1)
            weights.append(g.sum(dim=(-2, -1)))
        return _signed_maps(torch.stack(weights, 1), features)

    def torch_func_head(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Channel weights by ``vmap(jacrev(·))`` of the five selected outputs, per image."""
        pr = self.problem
        cls, svm_idx = self.targets(features)
        one_hot_cls = torch.nn.functional.one_hot(cls, N_CLASSES).to(features)
        one_hot_svm = torch.nn.functional.one_hot(svm_idx, len(pr.svm_head.classes)).to(features)

        def selected(f: Tensor, oh_cls: Tensor, oh_svm: Tensor) -> Tensor:
            logits, p, a = pr.outputs(f.unsqueeze(0))
            return torch.stack([(logits[0] * oh_cls).sum(), *p[0], (a[0] * oh_svm).sum()])

        jac = torch.func.vmap(torch.func.jacrev(selected))(features.detach(), one_hot_cls, one_hot_svm)
        return _signed_maps(jac.sum(dim=(-2, -1)), features)  # weights (N, 5, T)

    def with_backbone(
        self, head_route: Callable[[Tensor], tuple[Tensor, Tensor]]
    ) -> Callable[[Tensor], dict[str, Tensor]]:
        """End to end: backbone forward, the head route's weights and maps, presented as ``explain`` does."""

        def run(images: Tensor) -> dict[str, Tensor]:
            return _finish(self.problem, *head_route(self.backbone(images)))

        return run

    # -- 4 ---------------------------------------------------------------------------------
    def grad_cam_pkg(self, images: Tensor) -> dict[str, Tensor]:
        """pytorch-grad-cam, one call per target: class, +p_b and −p_b for each b, SVM (8 calls)."""
        features = self.backbone(images)  # the predictions a user needs to choose the targets
        cls, svm_idx = self.targets(features)
        n = images.shape[0]

        def call(targets: list) -> Tensor:
            return torch.as_tensor(self.peer(images, targets=targets))

        positive, negative = [], []
        for b in range(N_COMPONENTS):
            positive.append(call([ClassifierOutputTarget(N_CLASSES + b)] * n))
            negative.append(call([_Negated(N_CLASSES + b)] * n))
        svm_offset = N_CLASSES + N_COMPONENTS
        return {
            "gradcam": call([ClassifierOutputTarget(int(c)) for c in cls]),
            "pca_positive": torch.stack(positive, 1),
            "pca_negative": torch.stack(negative, 1),
            "svm": call([ClassifierOutputTarget(svm_offset + int(s)) for s in svm_idx]),
        }

    # -- 5 ---------------------------------------------------------------------------------
    def eigen_cam(self, images: Tensor, sign: float = 1.0) -> Tensor:
        """Our Eigen-CAM at image resolution, as the package shows it (ReLU, resize, min-max)."""
        size = (self.problem.input_size, self.problem.input_size)
        return normalise(upsample((sign * eigen_cam(self.backbone(images))).relu(), size))

    def eigen_cam_pkg(self, images: Tensor) -> Tensor:
        return torch.as_tensor(self.peer_eigen(images, targets=None))

    def decom_cam(self, images: Tensor) -> Tensor:
        pr = self.problem
        return decom_cam(images, pr.backbone, pr.head, pr.pca, pr.pca_after, pr.svm, target="class").saliency
