"""Run the pipeline for an architecture spec: its head, its PCA and its SVM, its own code.

``cadcam demo --spec SPEC --derived DIR`` trains the head the spec describes (per-layer widths
and activations, flatten order), fits PCA (position, components, whitening) and the spec's SVM
(kind, kernel — built-in or the spec's own through :class:`ProfileKernel` —, C, parameters,
scaler) beside the paper's four, and writes a bundle that embeds the spec's TOML text. Loading
that bundle re-reads the spec and the generated module in DIR, which must regenerate byte for
byte (:func:`cadcam_numeric.spec.code.load_custom_code`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sklearn.base import BaseEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from torch import nn

from cadcam_numeric.engine.profile_kernel import ProfileKernel
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.spec.code import CustomCode, head_activation, kernel_parameters, load_custom_code

if TYPE_CHECKING:  # annotations only: importing derivations loads SymPy
    from derivations.architecture import ArchitectureSpec

__all__ = [
    "LoadedArchitecture",
    "architecture_from_text",
    "load_architecture_file",
    "pipeline_overrides",
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
        """The spec's (unfitted) SVM: SVC with a catalogue or custom kernel, or LinearSVC; scaler first if asked."""
        spec = self.spec
        if spec.svm_kind == "linear_svc":
            estimator: object = LinearSVC(C=spec.svm_c)
        elif spec.kernel in self.code.kernels:
            estimator = SVC(
                kernel=ProfileKernel(self.code.kernels[spec.kernel], **kernel_parameters(spec)), C=spec.svm_c
            )
        else:
            estimator = SVC(kernel=spec.kernel, C=spec.svm_c, **kernel_parameters(spec))
        return make_pipeline(StandardScaler(), estimator) if spec.scaler else estimator


def spec_from_text(text: str, origin: str = "spec") -> ArchitectureSpec:
    """Validate TOML ``text`` into an ``ArchitectureSpec`` (errors become :class:`CadcamInputError`)."""
    from derivations.architecture import SpecError, parse_architecture

    try:
        return parse_architecture(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise CadcamInputError(f"{origin}: not valid TOML ({exc})") from exc
    except SpecError as exc:
        raise CadcamInputError(f"{origin}: {exc}") from exc


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
        code = CustomCode({}, {}, spec.sha256(), "")
    return LoadedArchitecture(text, spec, code)


def load_architecture_file(path: str | Path, derived: str | Path | None) -> LoadedArchitecture:
    """Read a spec file (TOML; nothing in it is executed) and its generated code."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CadcamInputError(f"spec: cannot read {path} ({exc})") from exc
    return architecture_from_text(text, derived, f"spec {path}")


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
