"""What the report renders about an architecture: one TOML spec (``ArchitectureSpec``) with its
generated code, resolved into SymPy catalogue objects and the feature-map shape.

There is one spec (:mod:`derivations.architecture`); this view only adds what the templates need
and what a spec does not hold: the activation and kernel objects (built-in or the spec's own),
the feature-map shape (recorded in a bundle, or computed from the backbone's definition without
building it) and the spec's derivation steps and proofs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from derivations.activations import Activation, activation_by_name
from derivations.kernels import Kernel, kernel_by_name

if TYPE_CHECKING:
    from cadcam_numeric.spec.code import CustomCode
    from derivations.architecture import ArchitectureSpec

__all__ = ["ArchitectureView", "view_of_architecture"]


@dataclass(frozen=True)
class ArchitectureView:
    spec: ArchitectureSpec
    code: CustomCode
    feature_maps: tuple[int, int, int]  # T, M, N' of the target layer
    activations: tuple[Activation, ...]  # one per hidden layer
    kernel: Kernel
    svm_params: dict[str, float]
    #: the spec's derivation steps and proofs (derivations.custom.derive_architecture)
    steps: tuple[object, ...] = ()
    spec_proofs: tuple[object, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pooling_in_head(self) -> bool:
        return self.spec.feature_layer == "conv"

    @property
    def gamma(self) -> float:
        return float(self.svm_params.get("gamma", 1.0))

    @property
    def distinct_activations(self) -> list[Activation]:
        seen: dict[str, Activation] = {}
        for act in self.activations:
            seen.setdefault(act.name, act)
        return list(seen.values())

    def verification_rows(self, cases: int, seed: int) -> list:
        """This spec's own functions (if any) and its chain against autograd — the check
        ``cadcam verify SPEC`` and ``cadcam derive SPEC`` run."""
        from cadcam_numeric.spec.code import verify_custom

        return verify_custom(self.spec, self.code, cases=cases, seed=seed)


def view_of_architecture(
    spec: ArchitectureSpec, code: CustomCode, feature_maps: tuple[int, int, int] | None = None
) -> ArchitectureView:
    """The view of ``spec`` with its loaded code (``CustomCode``; empty when the spec defines no
    code of its own). ``feature_maps``: as recorded in a bundle; else from the backbone's definition."""
    from cadcam_numeric.pipeline.backbones import feature_shape
    from cadcam_numeric.spec.code import kernel_parameters
    from derivations.custom import derive_architecture

    derivation = derive_architecture(spec)
    own_acts = {a.name: a for a in derivation.catalogue.activations}
    own_kernels = {k.name: k for k in derivation.catalogue.kernels}
    if feature_maps is None:
        feature_maps = feature_shape(spec.backbone, spec.feature_layer, spec.input_size)
    return ArchitectureView(
        spec=spec,
        code=code,
        feature_maps=tuple(int(v) for v in feature_maps),
        activations=tuple(own_acts.get(d.activation) or activation_by_name(d.activation) for d in spec.dense),
        kernel=own_kernels.get(spec.kernel) or kernel_by_name(spec.kernel),
        svm_params={k: float(v) for k, v in kernel_parameters(spec).items()},
        steps=tuple(derivation.steps),
        spec_proofs=tuple(derivation.proofs),
    )
