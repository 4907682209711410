"""The one chain-vs-autograd check: the closed-form chain of random small heads against PyTorch
autograd through the equivalent torch modules, in float64.

For each case a head is drawn (input 2×2×2 feature maps, hidden dense layers with the
activations the :class:`HeadUnderTest` gives, a linear class layer), then three Jacobians of the
engine (:func:`~cadcam_numeric.engine.chain.pullback` of the generated blocks) are compared
with autograd:

* ∂y/∂x (Grad-CAM, Eq. 9) — through the torch head;
* ∂p/∂x (PCA-Grad-CAM, Eq. 13) — through the head up to the PCA layer and a reference PCA module
  (whitened when asked);
* ∂a/∂x (SVM-Grad-CAM, Eq. 15) — through that, a standardisation of the scores when asked, and
  each kernel's reference decision function.

``cadcam verify`` checks the catalogue's chain (every activation at random, every kernel);
``cadcam verify SPEC``, ``cadcam derive SPEC`` and the report check a spec's own chain. All of
them call :func:`chain_rows`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import KernelCode
from cadcam_numeric.engine.activation_modules import activation_from_module
from cadcam_numeric.engine.chain import DenseLayer, PCALayer, forward_dense, identity_rows, pullback
from cadcam_numeric.engine.head import layer_cut
from cadcam_numeric.generated import ACTIVATIONS
from cadcam_numeric.verification.errors import ErrorAccumulator, VerificationRow, autograd_jacobian
from cadcam_numeric.verification.references import ReferencePCA

__all__ = ["HeadUnderTest", "KernelUnderTest", "Standardise", "chain_rows"]

#: a reference decision function a(p): (support vectors, dual coefficients, intercepts, parameters) -> module
ReferenceDecision = Callable[[Tensor, Tensor, Tensor, dict[str, float]], nn.Module]


@dataclass(frozen=True)
class KernelUnderTest:
    """One SVM kernel of the check: its generated code, how its parameters are drawn, and the
    reference module autograd differentiates."""

    name: str
    code: KernelCode
    parameters: Callable[[torch.Generator], dict[str, float]]
    reference: ReferenceDecision


@dataclass(frozen=True)
class HeadUnderTest:
    """What the random heads of the check are made of.

    ``hidden(case, gen)`` returns one activation module per hidden dense layer;
    ``pca_after(case)`` the layer whose output PCA reads (1-based; 0: x itself).
    """

    label: str
    hidden: Callable[[int, torch.Generator], list[nn.Module]]
    pca_after: Callable[[int], int]
    components: int
    kernels: tuple[KernelUnderTest, ...]
    whiten: bool = False
    scaler: bool = False


class Standardise(nn.Module):
    """(p − mean) / scale: the StandardScaler between the PCA scores and the SVM."""

    def __init__(self, mean: Tensor, scale: Tensor) -> None:
        super().__init__()
        self.mean, self.scale = mean, scale

    def forward(self, p: Tensor) -> Tensor:
        return (p - self.mean) / self.scale


def _normal(gen: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _positive(gen: torch.Generator, n: int) -> Tensor:
    return torch.rand(n, generator=gen, dtype=torch.float64) + 0.5


def chain_rows(head: HeadUnderTest, cases: int, gen: torch.Generator) -> list[VerificationRow]:
    """∂y/∂x, ∂p/∂x and ∂a/∂x (one row per kernel) of ``cases`` random heads against autograd."""
    label = head.label
    dy = ErrorAccumulator(f"{label}: dy/dx (Grad-CAM, Eq. 9)", "autograd through the torch head")
    dp = ErrorAccumulator(f"{label}: dp/dx (PCA-Grad-CAM, Eq. 13)", "autograd through head + PCA module")
    da = {
        k.name: ErrorAccumulator(
            f"{label}: da/dx (SVM-Grad-CAM, Eq. 15), {k.name}", "autograd through head + PCA + SVM"
        )
        for k in head.kernels
    }
    b = head.components
    for case in range(cases):
        activations = head.hidden(case, gen)
        n_hidden = len(activations)
        widths = [8, *(max(b, 3) + i for i in range(n_hidden, 0, -1)), 3]
        modules: list[nn.Module] = [nn.Flatten()]
        layers = []
        for j, act in enumerate(activations):
            lin = nn.Linear(widths[j], widths[j + 1]).double()
            act_code, params = activation_from_module(act)
            layers.append(DenseLayer(lin.weight.detach(), lin.bias.detach(), act_code, params))
            modules += [lin, act]
        out = nn.Linear(widths[n_hidden], widths[-1]).double()
        layers.append(DenseLayer(out.weight.detach(), out.bias.detach(), ACTIVATIONS["identity"], {}))
        torch_head = nn.Sequential(*modules, out)

        features = _normal(gen, 3, 2, 2, 2)
        x = features.flatten(1)
        fwd = forward_dense(x, layers)
        dy.add(pullback(identity_rows(3, 3, x), layers, fwd, len(layers)), autograd_jacobian(torch_head, features))

        after = head.pca_after(case)
        variance = _positive(gen, b) if head.whiten else None
        pca = PCALayer(_normal(gen, b, widths[after]), _normal(gen, widths[after]), variance)
        ref_pca = nn.Sequential(
            *list(torch_head)[: layer_cut(torch_head, after)], ReferencePCA(pca.components, pca.mean, variance)
        )
        jac = pca.jacobian()
        dp.add(pullback(jac.expand(3, *jac.shape), layers, fwd, after), autograd_jacobian(ref_pca, features))

        p = pca.scores(fwd.outputs[after - 1] if after else x)  # after = 0: PCA on x itself
        mean = _normal(gen, b) if head.scaler else torch.zeros(b, dtype=torch.float64)
        scale = _positive(gen, b) if head.scaler else torch.ones(b, dtype=torch.float64)
        for kernel in head.kernels:
            s, dual = _normal(gen, 4, b), _normal(gen, 2, 4)
            intercept = torch.zeros(2, dtype=torch.float64)
            params = kernel.parameters(gen)
            g = kernel.code.decision_gradient((p - mean) / scale, s, dual, **params) / scale @ jac
            reference = nn.Sequential(ref_pca, Standardise(mean, scale), kernel.reference(s, dual, intercept, params))
            da[kernel.name].add(pullback(g, layers, fwd, after), autograd_jacobian(reference, features))
    return [dy.row(), dp.row(), *(a.row() for a in da.values())]
