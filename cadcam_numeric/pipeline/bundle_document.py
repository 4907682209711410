"""The bundle document — ``bundle.json`` — defined once, as frozen dataclasses.

One function writes it (:func:`write_bundle_document`), one reads and validates it
(:func:`read_bundle_document`: every check once, every message naming its JSON path, before anything is
allocated from it), and what reads a bundle afterwards — the model builder, ``cadcam report``,
``cadcam evaluate`` — takes the typed :class:`BundleDocument`, never a dict. Adding a field means
adding it to its section here and to that section's reader.

Versions: :data:`VERSION` is written; an older document is migrated on reading (:data:`MIGRATIONS`,
one step per version), so a bundle written by an earlier cadcam still loads.

=========  ===========================================================================================
version    what changed
=========  ===========================================================================================
1          the pipeline settings under ``spec``; no ``backbone.feature_shape``
2          the settings under ``config``; ``backbone.feature_shape`` recorded (migrated from 1: the
           shape the named backbone gives at its input size)
=========  ===========================================================================================

Why dataclasses and not a schema library: the checks a bundle needs are not only shapes and types
(which pydantic or jsonschema would give) but relations between sections — the PCA reads a layer of the
head, a classifier's kernel parameters are those of a kernel in the catalogue or the embedded spec, the
tensor file has the sha256 recorded — and every message must be one sentence naming the path; a small
reader per section says that directly, with no dependency added to a package users install.

>>> from cadcam_numeric.pipeline.bundle_document import VERSION
>>> VERSION
2
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cadcam_numeric.atomic import file_sha256
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import ACTIVATIONS, KERNELS
from cadcam_numeric.pipeline.backbones import feature_shape
from cadcam_numeric.spec.architecture import SPEC_KIND_OF_ESTIMATOR, spec_from_mapping, spec_from_text

if TYPE_CHECKING:
    from derivations.architecture import ArchitectureSpec

__all__ = [
    "FORMAT",
    "MIGRATIONS",
    "TENSORS",
    "VERSION",
    "ArchitectureSection",
    "BackboneSection",
    "BundleDocument",
    "ClassifierSection",
    "DecisionBlockSection",
    "HeadSection",
    "InputsSection",
    "PCASection",
    "read_bundle_document",
    "spec_of_document",
    "write_bundle_document",
]

FORMAT = "cadcam-bundle"
VERSION = 2
DOCUMENT = "bundle.json"
TENSORS = "tensors.safetensors"
MAX_JSON_BYTES = 64 << 20
MAX_TENSOR_BYTES = 8 << 30
MAX_DEGREE = 100  # the largest polynomial-kernel degree
MAX_HEAD_WEIGHTS = 500_000_000  # 2 GB of float32: the largest head a bundle may describe
MAX_CLASS_NAME = 200  # characters: a class name is a figure title and a table cell
SCHEMES = ("binary", "ovr", "ovo")


# --- the sections ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneSection:
    """The feature extractor: its id, the layer the maps are at, input pixels, the (T, M, N') of its
    output, whether its weights are in the bundle (small_vgg) or referenced by path and sha256 (VGG16)."""

    name: str
    feature_layer: str
    input_size: int
    feature_shape: tuple[int, int, int]
    trainable: bool
    weights_source: str
    weights_sha256: str | None


@dataclass(frozen=True)
class HeadSection:
    """The dense head: hidden widths, their activation, the number of classes, the flatten order."""

    widths: tuple[int, ...]
    activation: str
    n_classes: int
    channels_last: bool


@dataclass(frozen=True)
class PCASection:
    """Where PCA reads (``after``: 0 the pooled features, else that dense layer, 1-based), how many
    components, whitening, and what the fitted transform was (for the report)."""

    after: int
    n_components: int
    whiten: bool
    explained_variance_ratio: tuple[float, ...]
    transform: str


@dataclass(frozen=True)
class DecisionBlockSection:
    """One kernel decision block of a classifier: the kernel's name and its parameters."""

    kernel: str
    params: Mapping[str, float | int]


@dataclass(frozen=True)
class ClassifierSection:
    """A classifier on the PCA scores: its estimator class, prediction scheme, labels, blocks and rules."""

    estimator: str
    scheme: str
    classes: tuple[int | float | str, ...]
    n_features: int
    blocks: tuple[DecisionBlockSection, ...]
    zero_is_positive: bool
    break_ties: bool
    scaler: bool


@dataclass(frozen=True)
class InputsSection:
    """The training images as they were read, before the model's resize: channels and pixels. Optional
    (bundles before it lack it); explain compares what it is given with it."""

    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class ArchitectureSection:
    """The TOML spec the model was built from (data, not code), with its sha256 and name."""

    toml: str
    sha256: str
    name: str


@dataclass(frozen=True)
class BundleDocument:
    """``bundle.json``, read and validated (:func:`read_bundle_document`) or about to be written."""

    cadcam_version: str
    catalogue_sha256: str
    config: Mapping[str, object]
    backbone: BackboneSection
    head: HeadSection
    pca: PCASection
    svms: Mapping[str, ClassifierSection]
    default_svm: str
    class_names: tuple[str, ...]
    tensors_sha256: str
    architecture: ArchitectureSection | None = None
    inputs: InputsSection | None = None
    #: the version the file was written in (VERSION once migrated on reading)
    read_from_version: int = field(default=VERSION, compare=False)

    @property
    def label(self) -> str:
        """How the report names a bundle trained without a spec."""
        return f"bundle: {self.backbone.name} ({self.config.get('data', '')}), default SVM {self.default_svm}"

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))  # validated on reading

    def to_json(self) -> dict:
        """The JSON object :func:`write_bundle_document` writes (keys in the order of the format)."""
        svms = {
            name: {
                "estimator": s.estimator,
                "scheme": s.scheme,
                "classes": list(s.classes),
                "n_features": s.n_features,
                "blocks": [{"kernel": b.kernel, "params": dict(b.params)} for b in s.blocks],
                "zero_is_positive": s.zero_is_positive,
                "break_ties": s.break_ties,
                "scaler": s.scaler,
            }
            for name, s in self.svms.items()
        }
        bb, head, pca, arch = self.backbone, self.head, self.pca, self.architecture
        return {
            "format": FORMAT,
            "version": VERSION,
            "cadcam_version": self.cadcam_version,
            "catalogue_sha256": self.catalogue_sha256,
            "config": dict(self.config),
            "backbone": {**bb.__dict__, "feature_shape": list(bb.feature_shape)},
            "head": {**head.__dict__, "widths": list(head.widths)},
            "architecture": None if arch is None else dict(arch.__dict__),
            **({} if self.inputs is None else {"inputs": dict(self.inputs.__dict__)}),
            "pca": {**pca.__dict__, "explained_variance_ratio": list(pca.explained_variance_ratio)},
            "svms": svms,
            "default_svm": self.default_svm,
            "class_names": list(self.class_names),
            "tensors": {"file": TENSORS, "sha256": self.tensors_sha256},
        }


def write_bundle_document(document: BundleDocument, directory: Path) -> Path:
    """Write ``directory/bundle.json`` (inside a bundle directory being built whole)."""
    path = Path(directory) / DOCUMENT
    path.write_text(json.dumps(document.to_json(), indent=2), encoding="utf-8")
    return path


# --- reading: small typed accessors, each message with its JSON path --------------------------------


def _refuse(path: str, expected: str, value: object) -> CadcamInputError:
    return CadcamInputError(f"bundle: {path} must be {expected}, got {value!r:.60}")


def _object(value: object, path: str) -> dict:
    if not isinstance(value, dict):
        raise CadcamInputError(f"bundle: {path} must be a JSON object, got {type(value).__name__}")
    return value


def _key(obj: dict, key: str, path: str) -> object:
    if key not in obj:
        raise CadcamInputError(f"bundle: {path} lacks '{key}' (incomplete bundle.json)")
    return obj[key]


def _int(value: object, low: int, high: int, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _refuse(path, f"an integer in {low}..{high}", value)
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _refuse(path, "true or false", value)
    return value


def _str(value: object, path: str, optional: bool = False) -> str | None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise CadcamInputError(f"bundle: {path} has the wrong type ({type(value).__name__}); expected a string")
    return value


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(path, "a finite number", value)
    return value


# --- the sections' readers ----------------------------------------------------------------------------


def _backbone(raw: object) -> BackboneSection:
    bb = _object(raw, "backbone")
    shape = _key(bb, "feature_shape", "backbone")
    if not isinstance(shape, list) or len(shape) != 3:
        raise _refuse("backbone.feature_shape", "three positive integers", shape)
    section = BackboneSection(
        name=_str(_key(bb, "name", "backbone"), "backbone.name"),
        feature_layer=_str(_key(bb, "feature_layer", "backbone"), "backbone.feature_layer"),
        input_size=_int(bb.get("input_size"), 8, 1024, "backbone.input_size"),
        feature_shape=tuple(_int(v, 1, 1 << 20, f"backbone.feature_shape[{i}]") for i, v in enumerate(shape)),
        trainable=_bool(bb.get("trainable", bb.get("name") == "small_vgg"), "backbone.trainable"),
        weights_source=_str(bb.get("weights_source", ""), "backbone.weights_source"),
        weights_sha256=_str(bb.get("weights_sha256"), "backbone.weights_sha256", optional=True),
    )
    if section.name == "vgg16" and not section.weights_sha256 and not section.weights_source.startswith("random"):
        raise CadcamInputError("bundle: backbone.weights_sha256 is required when the bundle names a weights file")
    return section


def _head(raw: object, activations: set[str], features: int) -> HeadSection:
    head = _object(raw, "head")
    widths = head.get("widths")
    if not isinstance(widths, list) or not 1 <= len(widths) <= 64:
        raise CadcamInputError("bundle: head.widths must be a list of 1 to 64 layer widths")
    section = HeadSection(
        widths=tuple(_int(w, 1, 65536, f"head.widths[{i}]") for i, w in enumerate(widths)),
        activation=_str(_key(head, "activation", "head"), "head.activation"),
        n_classes=_int(head.get("n_classes"), 2, 100_000, "head.n_classes"),
        channels_last=_bool(head.get("channels_last", False), "head.channels_last"),
    )
    if section.activation not in activations:
        raise CadcamInputError(
            f"bundle: head.activation {section.activation!r:.40} is not in the catalogue ({sorted(activations)})"
        )
    weights = sum(a * b for a, b in itertools.pairwise([features, *section.widths, section.n_classes]))
    if weights > MAX_HEAD_WEIGHTS:
        raise CadcamInputError(f"bundle: the head would hold {weights:,} weights, more than {MAX_HEAD_WEIGHTS:,}")
    return section


def _class_names(raw: object, n_classes: int) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) != n_classes or not all(isinstance(c, str) for c in raw):
        raise CadcamInputError(f"bundle: class_names must list head.n_classes ({n_classes}) strings")
    for c in raw:
        if not 0 < len(c) <= MAX_CLASS_NAME or not c.isprintable():
            raise CadcamInputError(
                f"bundle: class_names holds {c[:40]!r}; expected printable names of 1 to {MAX_CLASS_NAME} characters"
            )
    return tuple(raw)


def _pca(raw: object, head: HeadSection, features: int) -> PCASection:
    pca = _object(raw, "pca")
    after = _int(pca.get("after"), 0, len(head.widths), "pca.after")  # 0: on the pooled features x
    reads = head.widths[after - 1] if after else features
    ratio = pca.get("explained_variance_ratio", [])
    if not isinstance(ratio, list):
        raise _refuse("pca.explained_variance_ratio", "a list of numbers", ratio)
    return PCASection(
        after=after,
        n_components=_int(pca.get("n_components"), 1, reads, "pca.n_components"),
        whiten=_bool(pca.get("whiten"), "pca.whiten"),
        explained_variance_ratio=tuple(_number(v, f"pca.explained_variance_ratio[{i}]") for i, v in enumerate(ratio)),
        transform=_str(pca.get("transform", "PCA"), "pca.transform"),
    )


def _svm_classes(value: object, path: str) -> tuple:
    """A classifier's labels: at least two distinct scalars (numbers or strings) of one kind."""
    if not isinstance(value, list) or len(value) < 2 or len(value) > 100_000:
        raise CadcamInputError(f"bundle: {path} must list 2 to 100000 labels")
    kinds = {type(v) for v in value}
    if not (kinds <= {int} or kinds <= {str} or kinds <= {int, float}) or any(
        isinstance(v, float) and not math.isfinite(v) for v in value
    ):
        raise CadcamInputError(f"bundle: {path} must be numbers or strings, one kind, got {value!r:.80}")
    if len(set(value)) != len(value):
        raise CadcamInputError(f"bundle: {path} repeats a label")
    return tuple(value)


def _kernel_parameter(infos: Mapping[str, object], key: str, value: object, path: str) -> float | int:
    """A kernel parameter: a finite number, γ > 0, an integer parameter (degree) an integer in 1..100."""
    value = _number(value, f"{path}.{key}")
    if key == "gamma" and value <= 0:
        raise _refuse(f"{path}.gamma", "> 0", value)
    if getattr(infos[key], "integer", False):
        if value != int(value) or not 1 <= value <= MAX_DEGREE:
            raise _refuse(f"{path}.{key}", f"an integer in 1..{MAX_DEGREE}", value)
        return int(value)
    return float(value)


def _block(raw: object, kernels: Mapping[str, Mapping[str, object]], path: str) -> DecisionBlockSection:
    block = _object(raw, path)
    kernel = _str(_key(block, "kernel", path), f"{path}.kernel")
    params = _object(_key(block, "params", path), f"{path}.params")
    if kernel not in kernels:
        raise CadcamInputError(f"bundle: {path}.kernel {kernel!r:.40} is not in the catalogue")
    if set(params) != set(kernels[kernel]):
        raise CadcamInputError(
            f"bundle: {path}.params must give exactly {sorted(kernels[kernel])}, got {sorted(map(str, params))[:10]}"
        )
    values = {k: _kernel_parameter(kernels[kernel], k, v, f"{path}.params") for k, v in params.items()}
    return DecisionBlockSection(kernel, values)


def _classifier(raw: object, path: str, kernels: Mapping, n_components: int) -> ClassifierSection:
    s = _object(raw, path)
    blocks = _key(s, "blocks", path)
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 10_000:
        raise CadcamInputError(f"bundle: {path}.blocks must hold 1 to 10000 decision blocks")
    estimator = _str(s.get("estimator", "SVC"), f"{path}.estimator")
    if estimator not in SPEC_KIND_OF_ESTIMATOR:
        raise _refuse(f"{path}.estimator", f"one of {', '.join(SPEC_KIND_OF_ESTIMATOR)}", estimator)
    scheme = _str(_key(s, "scheme", path), f"{path}.scheme")
    if scheme not in SCHEMES:
        raise _refuse(f"{path}.scheme", "binary, ovr or ovo", scheme)
    if _int(s.get("n_features"), 1, 1 << 20, f"{path}.n_features") != n_components:
        raise CadcamInputError(f"bundle: {path}.n_features must be the number of PCA components ({n_components})")
    return ClassifierSection(
        estimator=estimator,
        scheme=scheme,
        classes=_svm_classes(s.get("classes"), f"{path}.classes"),
        n_features=n_components,
        blocks=tuple(_block(b, kernels, f"{path}.blocks[{i}]") for i, b in enumerate(blocks)),
        zero_is_positive=_bool(s.get("zero_is_positive", False), f"{path}.zero_is_positive"),
        break_ties=_bool(s.get("break_ties", False), f"{path}.break_ties"),
        scaler=_bool(s.get("scaler", False), f"{path}.scaler"),
    )


def _architecture(raw: object) -> tuple[ArchitectureSection | None, set[str], dict[str, Mapping]]:
    """The embedded spec (None without one), and the activations and kernels it adds to the catalogue's."""
    if raw is None:
        return None, set(), {}
    arch = _object(raw, "architecture")
    toml = _str(_key(arch, "toml", "architecture"), "architecture.toml")
    embedded = spec_from_text(toml, "bundle: architecture")
    if embedded.sha256() != arch.get("sha256"):
        raise CadcamInputError("bundle: the embedded spec does not match its recorded sha256 (modified?)")
    section = ArchitectureSection(toml, embedded.sha256(), _str(arch.get("name", embedded.name), "architecture.name"))
    kernels = {name: dict.fromkeys(k.parameters) for name, k in embedded.kernels.items()}
    return section, set(embedded.activations), kernels


def _classifiers(raw: object, default: object, kernels: Mapping, n_components: int) -> tuple[dict, str]:
    svms = _object(raw, "svms")
    if not isinstance(default, str) or not svms or default not in svms:
        raise CadcamInputError(f"bundle: default_svm {default!r:.40} is not one of {sorted(svms)[:10]}")
    return {name: _classifier(s, f"svms.{name}", kernels, n_components) for name, s in svms.items()}, default


def _inputs(raw: object) -> InputsSection | None:
    if raw is None:
        return None
    inputs = _object(raw, "inputs")
    return InputsSection(
        channels=_int(inputs.get("channels"), 1, 4, "inputs.channels"),
        height=_int(inputs.get("height"), 1, 1 << 16, "inputs.height"),
        width=_int(inputs.get("width"), 1, 1 << 16, "inputs.width"),
    )


def _config(raw: object) -> dict:
    config = _object(raw, "config")
    _int(config.get("seed", 0), 0, 2**32 - 1, "config.seed")
    return config


# --- migration -----------------------------------------------------------------------------------------


def _from_version_1(doc: dict) -> dict:
    """1 -> 2: ``spec`` became ``config``; ``backbone.feature_shape`` is what the backbone gives."""
    doc = {**doc, "config": _object(_key(doc, "spec", "bundle.json"), "spec"), "version": 2}
    del doc["spec"]
    bb = _object(_key(doc, "backbone", "bundle.json"), "backbone")
    name, layer = _str(_key(bb, "name", "backbone"), "backbone.name"), bb.get("feature_layer", "pool")
    if name not in ("small_vgg", "vgg16") or layer not in ("pool", "conv"):
        raise CadcamInputError(f"bundle: version 1 backbone {name!r:.40} at {layer!r:.20} cannot be migrated")
    size = _int(bb.get("input_size"), 8, 1024, "backbone.input_size")
    doc["backbone"] = {**bb, "feature_shape": list(feature_shape(name, layer, size))}
    return doc


#: version -> the function that turns a document of that version into one of the next
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _from_version_1}


def _migrated(doc: dict) -> dict:
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise CadcamInputError(f"bundle: format version {version!r:.20}; this cadcam reads versions 1..{VERSION}")
    while doc["version"] < VERSION:
        doc = MIGRATIONS[doc["version"]](doc)
    return doc


# --- the one reader -------------------------------------------------------------------------------------


def _raw_document(directory: Path) -> dict:
    meta = directory / DOCUMENT
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise CadcamInputError(f"bundle: {directory} {what} (expected the bundle folder demo/train wrote, OUT/bundle)")
    if not meta.is_file():
        raise CadcamInputError(f"bundle: {directory} has no bundle.json (not a cadcam bundle)")
    if meta.stat().st_size > MAX_JSON_BYTES:
        raise CadcamInputError(f"bundle: bundle.json is not a regular file of at most {MAX_JSON_BYTES >> 20} MiB")
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CadcamInputError(f"bundle: bundle.json is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CadcamInputError("bundle: bundle.json is not a cadcam bundle (format field)")
    return doc


def _tensor_names(directory: Path, recorded: object) -> set[str]:
    """The names in the tensor file's header (nothing loaded), once its size and sha256 are checked."""
    from safetensors import safe_open

    sha = _str(_key(_object(recorded, "tensors"), "sha256", "tensors"), "tensors.sha256")
    path = directory / TENSORS
    if not path.is_file():
        raise CadcamInputError(f"bundle: {TENSORS} is missing")
    if path.stat().st_size > MAX_TENSOR_BYTES:
        raise CadcamInputError(f"bundle: {TENSORS} is larger than {MAX_TENSOR_BYTES >> 30} GiB")
    if file_sha256(path) != sha:
        raise CadcamInputError(f"bundle: {TENSORS} does not match the sha256 recorded in bundle.json (modified?)")
    try:
        with safe_open(str(path), "pt") as fh:
            return set(fh.keys())
    except Exception as exc:  # safetensors raises its own error type for a bad header
        raise CadcamInputError(f"bundle: {TENSORS} is not a valid safetensors file ({exc})") from exc


def _check_scalers(svms: Mapping[str, ClassifierSection], names: set[str]) -> None:
    for name, svm in svms.items():
        present = any(f"svm.{name}.{part}" in names for part in ("scaler_mean", "scaler_scale"))
        if svm.scaler != present:
            raise CadcamInputError(
                f"bundle: svms.{name}.scaler says {svm.scaler} but the scaler tensors are "
                f"{'present' if present else 'missing'}"
            )


def read_bundle_document(directory: Path) -> BundleDocument:
    """``bundle.json`` of the bundle in ``directory``, migrated to :data:`VERSION` and validated: every
    field, the relations between sections, and the tensor file's size, sha256 and header. Every reader
    of a bundle starts here; bad input raises :class:`~cadcam_numeric.errors.CadcamInputError` naming
    the JSON path.

    Returns:
        the :class:`BundleDocument`.
    """
    directory = Path(directory)
    raw = _raw_document(directory)
    version = raw.get("version")
    raw = _migrated(raw)
    for key in ("config", "backbone", "head", "pca", "svms"):
        _object(_key(raw, key, "bundle.json"), key)
    backbone = _backbone(raw["backbone"])
    architecture, activations, kernels = _architecture(raw.get("architecture"))
    kernels = {**{n: k.parameters for n, k in KERNELS.items()}, **kernels}
    features = math.prod(backbone.feature_shape)
    head = _head(raw["head"], set(ACTIVATIONS) | activations, features)
    pca = _pca(raw["pca"], head, features)
    svms, default = _classifiers(raw["svms"], raw.get("default_svm"), kernels, pca.n_components)
    document = BundleDocument(
        cadcam_version=str(raw.get("cadcam_version", "")),
        catalogue_sha256=str(raw.get("catalogue_sha256", "")),
        config=_config(raw["config"]),
        backbone=backbone,
        head=head,
        pca=pca,
        svms=svms,
        default_svm=default,
        class_names=_class_names(raw.get("class_names"), head.n_classes),
        tensors_sha256=raw["tensors"]["sha256"] if isinstance(raw.get("tensors"), dict) else "",
        architecture=architecture,
        inputs=_inputs(raw.get("inputs")),
        read_from_version=version,
    )
    _check_scalers(svms, _tensor_names(directory, _key(raw, "tensors", "bundle.json")))
    return document


def spec_of_document(doc: BundleDocument) -> ArchitectureSpec:
    """The spec a bundle describes: the one it embeds, else the spec of its recorded settings (its head,
    PCA and backbone sections and its default classifier), validated by the spec parser."""
    if doc.architecture is not None:
        return spec_from_text(doc.architecture.toml, "bundle: architecture")
    svm = doc.svms[doc.default_svm]
    block = svm.blocks[0]
    mapping = {
        "name": doc.label,
        "backbone": {
            "name": doc.backbone.name,
            "feature_layer": doc.backbone.feature_layer,
            "input_size": doc.backbone.input_size,
        },
        "head": {
            "flatten": "channels_last" if doc.head.channels_last else "channel_major",
            "classes": doc.head.n_classes,
            "dense": [{"width": w, "activation": doc.head.activation} for w in doc.head.widths],
        },
        "pca": {
            "after": doc.pca.after,
            "components": doc.pca.n_components,
            "whiten": doc.pca.whiten,
            "kind": str(doc.config.get("pca_kind", "pca")),
            "scaler": bool(doc.config.get("scale_before_pca", False)),
        },
        "svm": {
            "kind": SPEC_KIND_OF_ESTIMATOR[svm.estimator],
            "kernel": block.kernel,
            "scaler": svm.scaler,
            "parameters": dict(block.params),
        },
    }
    return spec_from_mapping(mapping, "bundle")
