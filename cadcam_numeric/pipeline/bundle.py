"""Bundles: everything needed to explain later, as ``bundle.json`` + ``tensors.safetensors``.

No pickle anywhere: the JSON holds the pipeline's settings (``config``), the backbone (id,
weights source, feature-map shape), head widths and activation, PCA position, each SVM's
prediction scheme, kernels and parameters, and the class names;
the safetensors file holds every array (head weights, small-backbone weights, PCA, SVM support
vectors and coefficients). Loading checks the format, the sha256 of the tensor file, every
expected tensor and its shape, and the kernel names against the catalogue; it never executes
code. VGG16 weights are not copied (528 MB): the bundle records their path and sha256 and
loading verifies them. A bundle directory is written whole (temporary directory, then rename).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from torch import Tensor, nn

from cadcam_numeric import __version__
from cadcam_numeric.atomic import atomic_directory
from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.pca import pca_layer_from_sklearn
from cadcam_numeric.engine.svm import DecisionBlock, SVMHead
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import ACTIVATIONS, CATALOGUE_SHA256, KERNELS
from cadcam_numeric.pipeline.backbones import CNN, Backbone, build_backbone
from cadcam_numeric.pipeline.training import make_head
from cadcam_numeric.spec.architecture import (
    SPEC_KIND_OF_ESTIMATOR,
    LoadedArchitecture,
    architecture_from_text,
    spec_from_text,
)

__all__ = ["Bundle", "bundle_sha256", "load_bundle", "read_bundle_document", "save_bundle"]

FORMAT = "cadcam-bundle"
VERSION = 2  # 2: the pipeline settings under "config" (was "spec"); backbone.feature_shape recorded
TENSORS = "tensors.safetensors"
MAX_JSON_BYTES = 64 << 20
MAX_TENSOR_BYTES = 8 << 30
MAX_DEGREE = 100  # the largest polynomial-kernel degree
MAX_HEAD_WEIGHTS = 500_000_000  # 2 GB of float32: the largest head a bundle may describe
MAX_CLASS_NAME = 200  # characters: a class name is a figure title and a table cell


@dataclass
class Bundle:
    model: CNN
    backbone: Backbone
    pca: PCALayer
    pca_after: int
    svms: dict[str, SVMHead]
    default_svm: str
    class_names: list[str]
    document: dict  # bundle.json as read

    def svm_named(self, name: str | None) -> tuple[str, SVMHead]:
        """``(name, head)`` of the SVM called ``name`` (None: the bundle's default); refused by name."""
        name = name or self.default_svm
        if name not in self.svms:
            raise CadcamInputError(f"svm: {name!r} is not in the bundle; it has {sorted(self.svms)}")
        return name, self.svms[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_sha256(directory: Path) -> str:
    """The sha256 of a bundle's ``bundle.json`` (which records its tensors' sha256): the bundle's identity."""
    return _sha256(Path(directory) / "bundle.json")


def _steps(estimator: object) -> list[object]:
    return [step for _, step in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]


def save_bundle(
    directory: Path,
    model: CNN,
    backbone: Backbone,
    config: dict,
    pca: PCA,
    pca_after: int,
    svms: dict[str, object],
    default_svm: str,
    class_names: list[str],
    architecture: LoadedArchitecture | None = None,
) -> Path:
    """Write the bundle to ``directory`` (replacing an existing one only once the new one is complete).

    ``architecture``: the spec the model was built from; its TOML text is embedded (data, not code).
    """
    directory = Path(directory)
    like = torch.zeros((), dtype=torch.float64)
    tensors: dict[str, Tensor] = {}
    for k, v in model.head.state_dict().items():
        tensors[f"head.{k}"] = v.detach().cpu().contiguous()
    if backbone.trainable:
        for k, v in model.backbone.state_dict().items():
            tensors[f"backbone.{k}"] = v.detach().cpu().contiguous()
    layer = pca_layer_from_sklearn(pca, None, like)  # scalers in front are folded in (block/pca/scaler_fold)
    if not isinstance(layer, PCALayer):
        raise CadcamInputError(
            "bundle: only linear transforms (PCA, IncrementalPCA, TruncatedSVD, after affine scalers) can be "
            "saved; a KernelPCA or a Normalizer is explained in memory with explain()"
        )
    tensors["pca.components"] = layer.components.contiguous()
    tensors["pca.mean"] = layer.mean.contiguous()
    if layer.explained_variance is not None:
        tensors["pca.explained_variance"] = layer.explained_variance.contiguous()
    projection = _steps(pca)[-1]
    svm_spec = {}
    for name, svm in svms.items():
        head = parse_svm(svm, like)
        if not isinstance(head, SVMHead) or head.steps:
            raise CadcamInputError(
                f"bundle: classifier {name!r} cannot be saved (CalibratedClassifierCV, or scalers other than one "
                "StandardScaler in front); explain it in memory with explain()"
            )
        blocks = []
        for i, block in enumerate(head.blocks):
            for part in ("support_vectors", "dual_coef", "intercept"):
                tensors[f"svm.{name}.block{i}.{part}"] = getattr(block, part).contiguous()
            blocks.append({"kernel": block.kernel.name, "params": block.params})
        tensors[f"svm.{name}.orientation"] = head.orientation.contiguous()
        if head.scaler_mean is not None:
            tensors[f"svm.{name}.scaler_mean"] = head.scaler_mean.contiguous()
        if head.scaler_scale is not None:
            tensors[f"svm.{name}.scaler_scale"] = head.scaler_scale.contiguous()
        estimator = type(_steps(svm.best_estimator_ if hasattr(svm, "best_estimator_") else svm)[-1]).__name__
        if estimator not in SPEC_KIND_OF_ESTIMATOR:
            raise CadcamInputError(
                f"bundle: classifier {name!r} ({estimator}) cannot be saved; bundles hold "
                f"{', '.join(SPEC_KIND_OF_ESTIMATOR)} (after one StandardScaler); explain it in memory with explain()"
            )
        svm_spec[name] = {
            "estimator": estimator,
            "scheme": head.scheme,
            "classes": np.asarray(head.classes).tolist(),
            "n_features": head.n_features,
            "blocks": blocks,
            "zero_is_positive": head.zero_is_positive,
            "break_ties": head.break_ties,
            "scaler": head.scaler_mean is not None or head.scaler_scale is not None,
        }
    with atomic_directory(directory) as tmp:
        save_file(tensors, str(tmp / TENSORS))
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "cadcam_version": __version__,
            "catalogue_sha256": CATALOGUE_SHA256,
            "config": config,
            "backbone": {
                "name": backbone.name,
                "feature_layer": config["feature_layer"],
                "input_size": backbone.input_size,
                "feature_shape": [backbone.channels, backbone.feature_size, backbone.feature_size],
                "trainable": backbone.trainable,
                "weights_source": backbone.weights_source,
                "weights_sha256": backbone.weights_sha256,
            },
            "head": {
                "widths": list(config["widths"]),
                "activation": config["activation"],
                "n_classes": len(class_names),
                "channels_last": bool(config.get("channels_last", False)),
            },
            "architecture": None
            if architecture is None
            else {"toml": architecture.text, "sha256": architecture.spec.sha256(), "name": architecture.spec.name},
            "pca": {
                "after": pca_after,
                "n_components": layer.n_components,
                "whiten": layer.explained_variance is not None,
                "explained_variance_ratio": np.asarray(projection.explained_variance_ratio_).tolist(),
                "transform": " -> ".join(type(step).__name__ for step in _steps(pca)),
            },
            "svms": svm_spec,
            "default_svm": default_svm,
            "class_names": class_names,
            "tensors": {"file": TENSORS, "sha256": _sha256(tmp / TENSORS)},
        }
        (tmp / "bundle.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return directory


def _need(doc: dict, key: str, kind: type | tuple, where: str) -> object:
    """``doc[key]``, which must exist and be of ``kind``; ``doc`` itself must be a JSON object."""
    if not isinstance(doc, dict):
        raise CadcamInputError(f"bundle: {where} must be a JSON object, got {type(doc).__name__}")
    if key not in doc:
        raise CadcamInputError(f"bundle: {where} lacks '{key}' (incomplete bundle.json)")
    if not isinstance(doc[key], kind):
        raise CadcamInputError(f"bundle: {where}.{key} has the wrong type ({type(doc[key]).__name__})")
    return doc[key]


def _tensor(tensors: dict[str, Tensor], key: str, shape: tuple[int | None, ...] | None = None) -> Tensor:
    """A tensor of the bundle; with ``shape`` (None: any size there) its shape is checked too."""
    if key not in tensors:
        raise CadcamInputError(f"bundle: {TENSORS} lacks tensor '{key}' (incomplete or tampered bundle)")
    tensor = tensors[key]
    if shape is not None and (
        tensor.dim() != len(shape) or any(want is not None and got != want for got, want in zip(tensor.shape, shape))
    ):
        expected = "(" + ", ".join("*" if v is None else str(v) for v in shape) + ")"
        raise CadcamInputError(f"bundle: tensor '{key}' has shape {tuple(tensor.shape)}, expected {expected}")
    return tensor


def _svm_classes(value: object, where: str) -> np.ndarray:
    """An SVM's labels: at least two distinct scalars (numbers or strings) of one kind."""
    if not isinstance(value, list) or len(value) < 2 or len(value) > 100_000:
        raise CadcamInputError(f"bundle: {where}.classes must list 2 to 100000 labels")
    kinds = {type(v) for v in value}
    if not (kinds <= {int} or kinds <= {str} or kinds <= {int, float}) or any(
        isinstance(v, float) and not math.isfinite(v) for v in value
    ):
        raise CadcamInputError(f"bundle: {where}.classes must be numbers or strings, one kind, got {value!r:.80}")
    if len(set(value)) != len(value):
        raise CadcamInputError(f"bundle: {where}.classes repeats a label")
    return np.asarray(value)


def _integer_in(value: object, low: int, high: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CadcamInputError(f"bundle: {where} must be an integer in {low}..{high}, got {value!r:.40}")
    return value


def _check_sizes(doc: dict) -> None:
    """Bound every size bundle.json states before anything is allocated from it."""
    bb, head = doc["backbone"], doc["head"]
    _integer_in(bb.get("input_size"), 8, 1024, "backbone.input_size")
    for i, v in enumerate(bb["feature_shape"]):
        _integer_in(v, 1, 1 << 20, f"backbone.feature_shape[{i}]")
    widths = head.get("widths")
    if not isinstance(widths, list) or not 1 <= len(widths) <= 64:
        raise CadcamInputError("bundle: head.widths must be a list of 1 to 64 layer widths")
    widths = [_integer_in(w, 1, 65536, f"head.widths[{i}]") for i, w in enumerate(widths)]
    classes = _integer_in(head.get("n_classes"), 2, 100_000, "head.n_classes")
    t, m, n = bb["feature_shape"]
    sizes = [t * m * n, *widths, classes]
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    if weights > MAX_HEAD_WEIGHTS:
        raise CadcamInputError(f"bundle: the head would hold {weights:,} weights, more than {MAX_HEAD_WEIGHTS:,}")
    for where, value, kinds in (
        ("backbone.name", bb.get("name"), (str,)),
        ("backbone.feature_layer", bb.get("feature_layer"), (str,)),
        ("backbone.weights_source", bb.get("weights_source", ""), (str,)),
        ("backbone.weights_sha256", bb.get("weights_sha256"), (str, type(None))),
        ("head.activation", head.get("activation"), (str,)),
        ("head.channels_last", head.get("channels_last", False), (bool,)),
        ("config.seed", doc["config"].get("seed", 0), (int,)),
        ("default_svm", doc.get("default_svm"), (str,)),
    ):
        if not isinstance(value, kinds) or (int in kinds and isinstance(value, bool)):
            raise CadcamInputError(f"bundle: {where} has the wrong type ({type(value).__name__})")
    _integer_in(doc["config"].get("seed", 0), 0, 2**32 - 1, "config.seed")
    if (
        not bb.get("weights_sha256")
        and bb["name"] == "vgg16"
        and not str(bb.get("weights_source", "")).startswith("random")
    ):
        raise CadcamInputError("bundle: backbone.weights_sha256 is required when the bundle names a weights file")
    names = doc.get("class_names")
    if not isinstance(names, list) or len(names) != classes or not all(isinstance(c, str) for c in names):
        raise CadcamInputError(f"bundle: class_names must list head.n_classes ({classes}) strings")
    for c in names:
        if not 0 < len(c) <= MAX_CLASS_NAME or not c.isprintable():
            raise CadcamInputError(
                f"bundle: class_names holds {c[:40]!r}; expected printable names of 1 to {MAX_CLASS_NAME} characters"
            )
    pca = doc["pca"]
    after = _integer_in(pca.get("after"), 0, len(widths), "pca.after")  # 0: on the pooled features x
    _integer_in(pca.get("n_components"), 1, widths[after - 1] if after else t * m * n, "pca.n_components")
    if not isinstance(pca.get("whiten"), bool):
        raise CadcamInputError("bundle: pca.whiten must be true or false")


def _check_svms(doc: dict, activations: set[str], kernels: dict[str, set[str]]) -> None:
    """The head's activation and every SVM's structure: known names, every kernel parameter given."""
    if doc["head"]["activation"] not in activations:
        raise CadcamInputError(
            f"bundle: head.activation {doc['head']['activation']!r:.40} is not in the catalogue ({sorted(activations)})"
        )
    svms = doc["svms"]
    if not svms or doc["default_svm"] not in svms:
        raise CadcamInputError(f"bundle: default_svm {doc['default_svm']!r:.40} is not one of {sorted(svms)[:10]}")
    for name, svm in svms.items():
        where = f"svms.{name}"
        blocks = _need(svm, "blocks", list, where)
        if not 1 <= len(blocks) <= 10_000:
            raise CadcamInputError(f"bundle: {where}.blocks must hold 1 to 10000 decision blocks")
        for i, block in enumerate(blocks):
            kernel = _need(block, "kernel", str, f"{where}.blocks[{i}]")
            params = _need(block, "params", dict, f"{where}.blocks[{i}]")
            if kernel not in kernels:
                raise CadcamInputError(f"bundle: {where} uses kernel {kernel!r:.40}, not in the catalogue")
            if set(params) != kernels[kernel]:
                raise CadcamInputError(
                    f"bundle: {where}.blocks[{i}].params must give exactly {sorted(kernels[kernel])}, "
                    f"got {sorted(map(str, params))[:10]}"
                )
        if not isinstance(svm.get("scaler", False), bool):
            raise CadcamInputError(f"bundle: {where}.scaler must be true or false")


def _check_values(tensors: dict[str, Tensor]) -> None:
    """Every tensor finite: a NaN or Inf weight gives NaN maps or a silently different prediction."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CadcamInputError(f"bundle: tensor {name!r} holds NaN or Inf values")


def _kernel_parameter(kernel: object, key: str, value: object, where: str) -> float | int:
    """A kernel parameter from bundle.json: a known name, a finite number, γ > 0, integer degree ≥ 1."""
    infos = kernel.parameters  # type: ignore[attr-defined]
    if key not in infos:
        raise CadcamInputError(f"bundle: {where}: {key!r} is not a parameter of this kernel ({sorted(infos)})")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CadcamInputError(f"bundle: {where}.{key} must be a finite number, got {value!r:.40}")
    if key == "gamma" and value <= 0:
        raise CadcamInputError(f"bundle: {where}.gamma must be > 0, got {value!r}")
    if infos[key].integer:
        if value != int(value) or not 1 <= value <= MAX_DEGREE:
            raise CadcamInputError(f"bundle: {where}.{key} must be an integer in 1..{MAX_DEGREE}, got {value!r}")
        return int(value)
    return float(value)


def read_bundle_document(directory: Path) -> dict:
    """``bundle.json``, validated: the format and version, the sections every reader needs, and
    the sha256 of the tensor file it describes. Every command that reads a bundle starts here."""
    directory = Path(directory)
    meta = directory / "bundle.json"
    if not meta.is_file():
        raise CadcamInputError(f"bundle: {directory} has no bundle.json (not a cadcam bundle)")
    if not meta.is_file() or meta.stat().st_size > MAX_JSON_BYTES:
        raise CadcamInputError(f"bundle: bundle.json is not a regular file of at most {MAX_JSON_BYTES >> 20} MiB")
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CadcamInputError(f"bundle: bundle.json is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CadcamInputError("bundle: bundle.json is not a cadcam bundle (format field)")
    if doc.get("version") != VERSION:
        raise CadcamInputError(f"bundle: format version {doc.get('version')!r}; this cadcam reads version {VERSION}")
    for key, kind in (("config", dict), ("backbone", dict), ("head", dict), ("pca", dict), ("svms", dict)):
        _need(doc, key, kind, "bundle.json")
    shape = _need(doc["backbone"], "feature_shape", list, "backbone")
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise CadcamInputError(f"bundle: backbone.feature_shape must be three positive integers, got {shape!r:.80}")
    _check_sizes(doc)
    activations, kernels = set(ACTIVATIONS), {n: set(k.parameters) for n, k in KERNELS.items()}
    tensor_info = _need(doc, "tensors", dict, "bundle.json")
    tensor_path = directory / TENSORS
    if not tensor_path.is_file():
        raise CadcamInputError(f"bundle: {TENSORS} is missing")
    if tensor_path.stat().st_size > MAX_TENSOR_BYTES:
        raise CadcamInputError(f"bundle: {TENSORS} is larger than {MAX_TENSOR_BYTES >> 30} GiB")
    if _sha256(tensor_path) != _need(tensor_info, "sha256", str, "tensors"):
        raise CadcamInputError(f"bundle: {TENSORS} does not match the sha256 recorded in bundle.json (modified?)")
    arch_doc = doc.get("architecture")
    if arch_doc is not None:
        if not isinstance(arch_doc, dict) or not isinstance(arch_doc.get("toml"), str):
            raise CadcamInputError("bundle: bundle.json.architecture must hold the spec's TOML text")
        embedded = spec_from_text(arch_doc["toml"], "bundle: architecture")
        if embedded.sha256() != arch_doc.get("sha256"):
            raise CadcamInputError("bundle: the embedded spec does not match its recorded sha256 (modified?)")
        activations |= set(embedded.activations)
        kernels |= {n: set(k.parameters) for n, k in embedded.kernels.items()}
    _check_svms(doc, activations, kernels)
    try:  # the tensor file's header only: which tensors it holds (nothing is loaded)
        with safe_open(str(tensor_path), "pt") as fh:
            names = set(fh.keys())
    except Exception as exc:  # safetensors raises its own error type for a bad header
        raise CadcamInputError(f"bundle: {TENSORS} is not a valid safetensors file ({exc})") from exc
    for name, svm in doc["svms"].items():
        present = any(f"svm.{name}.{part}" in names for part in ("scaler_mean", "scaler_scale"))
        if bool(svm.get("scaler", False)) != present:
            raise CadcamInputError(
                f"bundle: svms.{name}.scaler says {svm.get('scaler')} but the scaler tensors are "
                f"{'present' if present else 'missing'}"
            )
    return doc


def load_bundle(
    directory: Path,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    derived: str | Path | None = None,
    architecture: LoadedArchitecture | None = None,
) -> Bundle:
    """Load and validate a bundle; ``weights`` overrides the recorded VGG16 weights path.

    A bundle made from a spec that defines its own activations or kernels needs ``derived``, the
    directory ``cadcam derive SPEC --out DIR`` wrote (checked against the embedded spec), or the
    already loaded ``architecture``.
    """
    directory = Path(directory)
    doc = read_bundle_document(directory)
    tensor_path = directory / TENSORS
    try:
        tensors = load_file(str(tensor_path))
    except Exception as exc:  # safetensors raises its own error type for a bad header
        raise CadcamInputError(f"bundle: {TENSORS} is not a valid safetensors file ({exc})") from exc
    _check_values(tensors)
    config = _need(doc, "config", dict, "bundle.json")
    bb = _need(doc, "backbone", dict, "bundle.json")
    head_doc = _need(doc, "head", dict, "bundle.json")
    class_names = _need(doc, "class_names", list, "bundle.json")
    name = _need(bb, "name", str, "backbone")
    recorded = bb.get("weights_source", "")
    random_weights = name == "vgg16" and str(recorded).startswith("random")
    backbone = build_backbone(
        name,
        _need(bb, "feature_layer", str, "backbone"),
        weights=weights if weights is not None else (None if random_weights else recorded),
        random_weights=random_weights,
        input_size=_need(bb, "input_size", int, "backbone"),
        seed=int(config.get("seed", 0)),
    )
    if name == "vgg16" and bb.get("weights_sha256") and backbone.weights_sha256 != bb["weights_sha256"]:
        raise CadcamInputError("weights: the VGG16 weights differ from those the bundle was trained with (sha256)")
    if [backbone.channels, backbone.feature_size, backbone.feature_size] != bb["feature_shape"]:
        raise CadcamInputError(
            f"bundle: backbone.feature_shape {bb['feature_shape']} is not what {name} at "
            f"{backbone.input_size} px gives ({backbone.channels}, {backbone.feature_size}, {backbone.feature_size})"
        )
    arch_doc = doc.get("architecture")
    if arch_doc is not None:
        if architecture is not None and architecture.spec.sha256() != arch_doc["sha256"]:
            raise CadcamInputError(
                f"spec: the bundle was made from another spec ({arch_doc.get('name')!r}); pass that spec or none"
            )
        architecture = architecture or architecture_from_text(arch_doc["toml"], derived, "bundle: architecture")
    head = make_head(
        backbone,
        _need(head_doc, "n_classes", int, "head"),
        tuple(_need(head_doc, "widths", list, "head")),
        _need(head_doc, "activation", str, "head"),
        architecture.activation_modules() if arch_doc is not None else None,
        bool(head_doc.get("channels_last", False)),
    )
    kernels = {**KERNELS, **(architecture.code.kernels if arch_doc is not None else {})}
    model = CNN(backbone.features, head)
    try:
        head.load_state_dict({k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")})
        if backbone.trainable:
            model.backbone.load_state_dict(
                {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
            )
    except RuntimeError as exc:
        raise CadcamInputError(f"bundle: weights do not fit the recorded architecture ({exc})") from exc
    model.to(device).eval()
    pca_doc = _need(doc, "pca", dict, "bundle.json")
    widths = list(head_doc["widths"])
    after = _integer_in(pca_doc.get("after"), 0, len(widths), "pca.after")
    reads = widths[after - 1] if after else next(m for m in model.head if isinstance(m, nn.Linear)).in_features
    b = _integer_in(pca_doc.get("n_components"), 1, reads, "pca.n_components")
    pca = PCALayer(
        _tensor(tensors, "pca.components", (b, reads)),
        _tensor(tensors, "pca.mean", (reads,)),
        _tensor(tensors, "pca.explained_variance", (b,)) if pca_doc.get("whiten") is True else None,
    )
    if pca.explained_variance is not None and bool((pca.explained_variance <= 0).any()):
        raise CadcamInputError("bundle: tensor 'pca.explained_variance' must be positive (it is divided by)")
    svms = {}
    for svm_name, s in _need(doc, "svms", dict, "bundle.json").items():
        blocks = []
        for i, block in enumerate(_need(s, "blocks", list, f"svms.{svm_name}")):
            kernel = _need(block, "kernel", str, f"svms.{svm_name}.blocks[{i}]")
            if kernel not in kernels:
                raise CadcamInputError(f"bundle: svms.{svm_name} uses kernel {kernel!r}, not in the catalogue")
            where = f"svms.{svm_name}.blocks[{i}].params"
            params = {
                k: _kernel_parameter(kernels[kernel], k, v, where)
                for k, v in _need(block, "params", dict, f"svms.{svm_name}.blocks[{i}]").items()
            }
            prefix = f"svm.{svm_name}.block{i}"
            support = _tensor(tensors, f"{prefix}.support_vectors", (None, b))
            dual = _tensor(tensors, f"{prefix}.dual_coef", (None, support.shape[0]))
            intercept = _tensor(tensors, f"{prefix}.intercept", (dual.shape[0],))
            blocks.append(DecisionBlock(kernels[kernel], support, dual, intercept, params))
        scheme = _need(s, "scheme", str, f"svms.{svm_name}")
        if scheme not in ("binary", "ovr", "ovo"):
            raise CadcamInputError(f"bundle: svms.{svm_name}.scheme {scheme!r} is not binary/ovr/ovo")
        classes = _svm_classes(s.get("classes"), f"svms.{svm_name}")
        decisions = sum(block.dual_coef.shape[0] for block in blocks)
        orientation = _tensor(tensors, f"svm.{svm_name}.orientation", (len(classes), decisions))
        scaler = [
            _tensor(tensors, f"svm.{svm_name}.{part}", (b,)) if f"svm.{svm_name}.{part}" in tensors else None
            for part in ("scaler_mean", "scaler_scale")
        ]
        if bool(s.get("scaler", False)) != any(t is not None for t in scaler):
            raise CadcamInputError(
                f"bundle: svms.{svm_name}.scaler says {s.get('scaler')} but the scaler tensors are "
                f"{'present' if any(t is not None for t in scaler) else 'missing'}"
            )
        if scaler[1] is not None and bool((scaler[1] == 0).any()):
            raise CadcamInputError(
                f"bundle: tensor 'svm.{svm_name}.scaler_scale' must not hold zeros (it is divided by)"
            )
        if _integer_in(s.get("n_features"), 1, 1 << 20, f"svms.{svm_name}.n_features") != b:
            raise CadcamInputError(f"bundle: svms.{svm_name}.n_features must be the number of PCA components ({b})")
        svms[svm_name] = SVMHead(
            scheme,
            blocks,
            orientation,
            classes,
            scaler[0],
            scaler[1],
            b,
            bool(s.get("zero_is_positive", False)),
            bool(s.get("break_ties", False)),
        )
    default_svm = _need(doc, "default_svm", str, "bundle.json")
    if default_svm not in svms:
        raise CadcamInputError(f"bundle: default_svm {default_svm!r} is not one of {sorted(svms)}")
    return Bundle(
        model,
        backbone,
        pca,
        int(_need(pca_doc, "after", int, "pca")),
        svms,
        default_svm,
        [str(c) for c in class_names],
        doc,
    )
