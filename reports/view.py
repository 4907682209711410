"""What the report needs to know about an architecture, from either kind of spec.

A JSON :class:`~reports.spec.ReportSpec` (one catalogue activation everywhere, a catalogue
kernel) or a TOML architecture spec (``derivations.architecture``: per-layer activations, the
spec's own activations and kernels, flatten order) both become one :class:`ArchitectureView`;
the builder renders only views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from derivations.activations import Activation, activation_by_name
from derivations.kernels import Kernel, kernel_by_name
from reports.spec import ReportSpec

if TYPE_CHECKING:
    from cadcam_numeric.spec.code import CustomCode
    from derivations.architecture import ArchitectureSpec

__all__ = ["ArchitectureView", "view_of_architecture", "view_of_report_spec"]


@dataclass(frozen=True)
class ArchitectureView:
    name: str
    feature_maps: tuple[int, int, int]
    pooling_in_head: bool
    channels_last: bool
    widths: tuple[int, ...]
    classes: int
    activations: tuple[Activation, ...]  # one per hidden layer
    pca_after: int
    n_components: int
    whiten: bool
    kernel: Kernel
    svm_params: dict[str, float]
    standardised_scores: bool
    sha256: str
    #: the spec's own derivation steps and proofs (TOML specs only)
    steps: tuple[object, ...] = ()
    spec_proofs: tuple[object, ...] = ()
    #: verification rows of the spec's own code and chain, computed on demand (TOML specs only)
    spec_rows: Callable[[int, int], list] | None = None
    #: the built-in chain check to run for this architecture: (activation, kernel) or None
    catalogue_chain: tuple[str, str] | None = field(default=None)

    @property
    def gamma(self) -> float:
        return float(self.svm_params.get("gamma", 1.0))

    @property
    def distinct_activations(self) -> list[Activation]:
        seen: dict[str, Activation] = {}
        for act in self.activations:
            seen.setdefault(act.name, act)
        return list(seen.values())


def view_of_report_spec(spec: ReportSpec) -> ArchitectureView:
    act = activation_by_name(spec.activation)
    return ArchitectureView(
        name=spec.name,
        feature_maps=spec.feature_maps,
        pooling_in_head=spec.pooling_in_head,
        channels_last=False,
        widths=spec.widths,
        classes=spec.classes,
        activations=(act,) * len(spec.widths),
        pca_after=spec.pca_after,
        n_components=spec.n_components,
        whiten=spec.whiten,
        kernel=kernel_by_name(spec.svm_kernel),
        svm_params=dict(spec.svm_params),
        standardised_scores=spec.standardised_scores,
        sha256=spec.sha256(),
        catalogue_chain=(spec.activation, spec.svm_kernel),
    )


def view_of_architecture(spec: ArchitectureSpec, code: CustomCode) -> ArchitectureView:
    """A TOML spec (``ArchitectureSpec``) with its loaded generated code (``CustomCode``; empty
    when the spec defines no code of its own)."""
    from cadcam_numeric.pipeline.backbones import build_backbone
    from cadcam_numeric.spec.code import kernel_parameters, verify_custom
    from derivations.custom import derive_architecture

    derivation = derive_architecture(spec)
    own_acts = {a.name: a for a in derivation.catalogue.activations}
    own_kernels = {k.name: k for k in derivation.catalogue.kernels}
    shape = build_backbone(spec.backbone, spec.feature_layer, random_weights=True, input_size=spec.input_size)
    acts = tuple(own_acts.get(layer.activation) or activation_by_name(layer.activation) for layer in spec.dense)
    kernel = own_kernels.get(spec.kernel) or kernel_by_name(spec.kernel)

    def rows(cases: int, seed: int) -> list:
        return verify_custom(spec, code, cases=cases, seed=seed)

    return ArchitectureView(
        name=spec.name,
        feature_maps=(shape.channels, shape.feature_size, shape.feature_size),
        pooling_in_head=shape.head_pooling,
        channels_last=spec.channels_last,
        widths=spec.widths,
        classes=spec.classes,
        activations=acts,
        pca_after=spec.pca_after,
        n_components=spec.n_components,
        whiten=spec.whiten,
        kernel=kernel,
        svm_params={k: float(v) for k, v in kernel_parameters(spec).items()},
        standardised_scores=spec.scaler,
        sha256=spec.sha256(),
        steps=tuple(derivation.steps),
        spec_proofs=tuple(derivation.proofs),
        spec_rows=rows,
    )
