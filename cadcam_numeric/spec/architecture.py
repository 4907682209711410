"""Run the pipeline for an architecture spec: its head, its PCA and its SVM, its own code.

``cadcam demo --spec SPEC --derived DIR`` trains the head the spec describes (per-layer widths
and activations, flatten order), fits PCA (position, components, whitening) and the spec's SVM
(kind, kernel — built-in or the spec's own through :class:`ProfileKernel` —, C, parameters,
scaler) beside the paper's four, and writes a bundle that embeds the spec's TOML text. Loading
that bundle re-reads the spec and the generated module in DIR, which must regenerate byte for
byte (:func:`cadcam_numeric.spec.code.load_custom_code`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sklearn.base import BaseEstimator
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC, NuSVC
from torch import nn

from cadcam_numeric.engine.profile_kernel import ProfileKernel
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import ACTIVATIONS, KERNELS
from cadcam_numeric.spec.code import CustomCode, empty_code, head_activation, kernel_parameters, load_custom_code
from derivations.architecture import SpecCatalogue, SpecError, parse_architecture, parse_architecture_text

if TYPE_CHECKING:
    from derivations.architecture import ArchitectureSpec

__all__ = [
    "LoadedArchitecture",
    "architecture_from_text",
    "generated_catalogue",
    "load_architecture_file",
    "pipeline_overrides",
    "read_spec_file",
    "spec_from_mapping",
    "spec_from_text",
]


@dataclass(frozen=True)
class LoadedArchitecture:
    """A validated spec, the TOML text it came from, and its generated code (checked)."""

    text: str
    spec: ArchitectureSpec
    code: CustomCode

    def activation_modules(self) -> list[nn.Module]:
        """One activation module per hidden layer, with the layer's parameters."""
        return [head_activation(self.spec, self.code, layer) for layer in self.spec.dense]

    def svm_estimator(self) -> BaseEstimator:
        """The spec's (unfitted) classifier: SVC/NuSVC with a catalogue or custom kernel, or a linear
        classifier (LinearSVC, LogisticRegression, LDA, RidgeClassifier); scaler first if asked."""
        spec = self.spec
        linear = {
            "linear_svc": lambda: LinearSVC(C=spec.svm_c),
            "logistic": lambda: LogisticRegression(C=spec.svm_c, max_iter=5000),
            "lda": LinearDiscriminantAnalysis,
            "ridge": RidgeClassifier,
        }
        if spec.svm_kind in linear:
            estimator: object = linear[spec.svm_kind]()
        else:
            if spec.kernel in self.code.kernels:
                kernel: dict[str, object] = {
                    "kernel": ProfileKernel(self.code.kernels[spec.kernel], **kernel_parameters(spec))
                }
            else:
                kernel = {"kernel": spec.kernel, **kernel_parameters(spec)}
            estimator = NuSVC(**kernel) if spec.svm_kind == "nu_svc" else SVC(C=spec.svm_c, **kernel)
        return make_pipeline(StandardScaler(), estimator) if spec.scaler else estimator


def generated_catalogue() -> SpecCatalogue:
    """The built-in names a spec may use, read from the generated catalogue (no SymPy)."""
    return SpecCatalogue(
        {name: frozenset(code.parameters) for name, code in ACTIVATIONS.items()},
        {name: frozenset(code.parameters) for name, code in KERNELS.items()},
    )


def spec_from_text(text: str, origin: str = "spec") -> ArchitectureSpec:
    """Validate TOML ``text`` into an ``ArchitectureSpec`` — the one spec loader: every command
    that reads a spec comes here; its errors become :class:`CadcamInputError` naming the key."""
    try:
        return parse_architecture_text(text, generated_catalogue(), origin)
    except SpecError as exc:
        raise CadcamInputError(str(exc)) from exc


def read_spec_file(path: str | Path) -> tuple[str, ArchitectureSpec]:
    """Read and validate a spec file: its text and its spec."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CadcamInputError(f"spec: cannot read {path} ({exc})") from exc
    return text, spec_from_text(text, f"spec {path}")


def architecture_from_text(text: str, derived: str | Path | None, origin: str = "spec") -> LoadedArchitecture:
    """Validate TOML ``text``; load the generated module from ``derived`` when the spec defines its own code."""
    spec = spec_from_text(text, origin)
    if spec.activations or spec.kernels:
        if derived is None:
            own = ", ".join([*spec.activations, *spec.kernels])
            raise CadcamInputError(
                f"derived: the spec defines its own activations/kernels ({own}); "
                "pass --derived DIR, the directory `cadcam derive SPEC --out DIR` wrote"
            )
        code = load_custom_code(derived, spec)
    else:
        code = empty_code(spec)
    return LoadedArchitecture(text, spec, code)


def load_architecture_file(path: str | Path, derived: str | Path | None) -> LoadedArchitecture:
    """Read a spec file (TOML; nothing in it is executed) and its generated code."""
    text, _ = read_spec_file(path)
    return architecture_from_text(text, derived, f"spec {path}")


def spec_from_mapping(doc: dict, origin: str) -> ArchitectureSpec:
    """A spec given as the mapping its TOML parses to (a bundle's recorded settings), validated by the same
    parser as a spec file; errors name ``origin``."""
    try:
        return parse_architecture(doc, generated_catalogue())
    except SpecError as exc:
        raise CadcamInputError(f"{origin}: its recorded architecture is not a valid spec ({exc})") from exc


#: the spec's svm.kind of a fitted estimator recorded in a bundle (by class name)
SPEC_KIND_OF_ESTIMATOR = {
    "SVC": "svc",
    "NuSVC": "nu_svc",
    "LinearSVC": "linear_svc",
    "LogisticRegression": "logistic",
    "LinearDiscriminantAnalysis": "lda",
    "RidgeClassifier": "ridge",
}


def pipeline_overrides(spec: ArchitectureSpec) -> dict[str, object]:
    """``PipelineConfig`` fields the spec fixes (training settings only where the spec gives them)."""
    values: dict[str, object] = {
        "backbone": spec.backbone,
        "feature_layer": spec.feature_layer,
        "input_size": spec.input_size,
        "widths": spec.widths,
        "activation": spec.dense[0].activation,
        "pca_after": spec.pca_after,
        "n_components": spec.n_components,
        "whiten": spec.whiten,
        "pca_kind": spec.pca_kind,
        "scale_before_pca": spec.pca_scaler,
        "channels_last": spec.channels_last,
        "svm_c": spec.svm_c,
        "default_svm": "spec",
    }
    if spec.weights:
        values["weights"] = spec.weights
    for key in ("data", "epochs", "seed", "lr", "momentum"):
        if key in spec.training:
            values[key] = spec.training[key]
    return values
