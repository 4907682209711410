"""The architecture a report describes: from a JSON spec file or from a bundle. JSON only — names
are checked against the catalogue, nothing is evaluated."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from derivations.activations import ACTIVATIONS
from derivations.kernels import KERNELS

__all__ = ["DEFAULT_SPEC", "ReportSpec", "SpecError", "load_spec", "spec_from_bundle"]


class SpecError(ValueError):
    """A spec that cannot describe a head: the message names the field."""


@dataclass(frozen=True)
class ReportSpec:
    name: str = "paper: VGG16 pool5, dense 40-30-20-10, PCA on layer 2, RBF SVM"
    feature_maps: tuple[int, int, int] = (512, 6, 6)  # T, M, N'
    pooling_in_head: bool = False
    widths: tuple[int, ...] = (40, 30, 20)
    classes: int = 10
    activation: str = "relu"
    pca_after: int = 2
    n_components: int = 3
    whiten: bool = False
    svm_kernel: str = "rbf"
    svm_params: dict[str, float] = field(default_factory=lambda: {"gamma": 1.0})
    standardised_scores: bool = False

    def validate(self) -> ReportSpec:
        names = {a.name for a in ACTIVATIONS}
        if self.activation not in names:
            raise SpecError(
                f"spec.activation: {self.activation!r} is not in the catalogue ({', '.join(sorted(names))})"
            )
        kernels = {k.name: k for k in KERNELS}
        if self.svm_kernel not in kernels:
            raise SpecError(f"spec.svm_kernel: {self.svm_kernel!r} is not one of {sorted(kernels)}")
        allowed = {p.name for p in kernels[self.svm_kernel].parameters}
        if set(self.svm_params) - allowed:
            raise SpecError(
                f"spec.svm_params: {sorted(set(self.svm_params) - allowed)} are not parameters of "
                f"{self.svm_kernel} ({sorted(allowed)})"
            )
        if len(self.feature_maps) != 3 or min(self.feature_maps) < 1:
            raise SpecError(f"spec.feature_maps: expected [T, M, N'] positive, got {list(self.feature_maps)}")
        if not self.widths or min(self.widths) < 1 or self.classes < 2:
            raise SpecError("spec.widths must be positive integers and spec.classes >= 2")
        if not 1 <= self.pca_after <= len(self.widths):
            raise SpecError(f"spec.pca_after: expected 1..{len(self.widths)}, got {self.pca_after}")
        if not 1 <= self.n_components <= self.widths[self.pca_after - 1]:
            raise SpecError(
                f"spec.n_components: expected 1..{self.widths[self.pca_after - 1]}, got {self.n_components}"
            )
        return self

    @property
    def gamma(self) -> float:
        return float(self.svm_params.get("gamma", 1.0))

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["feature_maps"], d["widths"] = list(self.feature_maps), list(self.widths)
        return d

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


DEFAULT_SPEC = ReportSpec()


def load_spec(path: Path) -> ReportSpec:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"spec: cannot read {path} as JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise SpecError("spec: expected a JSON object")
    known = set(ReportSpec.__dataclass_fields__)
    if set(doc) - known:
        raise SpecError(f"spec: unknown fields {sorted(set(doc) - known)}; known: {sorted(known)}")
    for key in ("feature_maps", "widths"):
        if key in doc:
            doc[key] = tuple(int(v) for v in doc[key])
    return ReportSpec(**doc).validate()


def spec_from_bundle(bundle_json: dict, feature_maps: tuple[int, int, int]) -> ReportSpec:
    svm = bundle_json["svms"][bundle_json["default_svm"]]
    block = svm["blocks"][0]
    return ReportSpec(
        name=f"bundle: {bundle_json['backbone']['name']} ({bundle_json['spec'].get('data', '')}), "
        f"default SVM {bundle_json['default_svm']}",
        feature_maps=feature_maps,
        pooling_in_head=bundle_json["backbone"]["feature_layer"] == "conv",
        widths=tuple(bundle_json["head"]["widths"]),
        classes=int(bundle_json["head"]["n_classes"]),
        activation=bundle_json["head"]["activation"],
        pca_after=int(bundle_json["pca"]["after"]),
        n_components=int(bundle_json["pca"]["n_components"]),
        whiten=bool(bundle_json["pca"]["whiten"]),
        svm_kernel=block["kernel"],
        svm_params={k: float(v) for k, v in block["params"].items()},
        standardised_scores=bool(svm["scaler"]),
    ).validate()
