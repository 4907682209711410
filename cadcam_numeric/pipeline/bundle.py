"""Bundles: everything needed to explain later, as ``bundle.json`` + ``tensors.safetensors``.

No pickle anywhere: ``bundle.json`` is the typed :class:`~cadcam_numeric.pipeline.bundle_document.BundleDocument`
(written and read, validated and migrated by that module alone); the safetensors file holds every array
(head weights, small-backbone weights, PCA, SVM support vectors and coefficients). Loading checks the
document, the sha256 of the tensor file, every expected tensor and its shape, and never executes code.
VGG16 weights are not copied (528 MB): the bundle records their path and sha256 and loading verifies
them. A bundle directory is written whole (temporary directory, then rename).

>>> from cadcam_numeric.pipeline.bundle import load_bundle
>>> from cadcam_numeric.pipeline.small_demo import small_demo_bundle
>>> import tempfile, pathlib, torch
>>> bundle = load_bundle(small_demo_bundle(pathlib.Path(tempfile.mkdtemp()) / "b"))
>>> x = bundle.preprocess(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))  # two 8×8 grey images
>>> tuple(x.shape), sorted(bundle.closed_form()(bundle.model.backbone(x)))[:3]
((2, 3, 32, 32), ['class_weights', 'cnn_prediction', 'finite'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from torch import Tensor, nn

from cadcam_numeric.atomic import atomic_directory
from cadcam_numeric.engine.chain import PCALayer
from cadcam_numeric.engine.classifiers import parse_svm
from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.pca import pca_layer_from_sklearn
from cadcam_numeric.engine.svm import DecisionBlock, SVMHead
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import CATALOGUE_SHA256, KERNELS
from cadcam_numeric.pipeline.backbones import CNN, Backbone, build_backbone
from cadcam_numeric.pipeline.bundle_document import (
    TENSORS,
    ArchitectureSection,
    BackboneSection,
    BundleDocument,
    ClassifierSection,
    DecisionBlockSection,
    HeadSection,
    InputsSection,
    PCASection,
    file_sha256,
    read_bundle_document,
    write_bundle_document,
)
from cadcam_numeric.pipeline.data import to_model_input
from cadcam_numeric.pipeline.training import make_head
from cadcam_numeric.spec.architecture import SPEC_KIND_OF_ESTIMATOR, LoadedArchitecture, architecture_from_text
from cadcam_numeric.version import __version__

__all__ = ["Bundle", "bundle_sha256", "load_bundle", "read_bundle_document", "save_bundle"]


@dataclass
class Bundle:
    """A loaded bundle: the CNN (``model.backbone``, ``model.head``), the PCA layer and the classifiers
    as the engine reads them, and the document they were built from."""

    model: CNN
    backbone: Backbone
    pca: PCALayer
    svms: dict[str, SVMHead]
    document: BundleDocument

    @property
    def pca_after(self) -> int:
        """Where the PCA reads (0: the pooled features; else that dense layer, 1-based)."""
        return self.document.pca.after

    @property
    def default_svm(self) -> str:
        """The classifier the bundle explains with when none is named."""
        return self.document.default_svm

    @property
    def class_names(self) -> list[str]:
        """The CNN's class names, in the order of its outputs."""
        return list(self.document.class_names)

    def svm_named(self, name: str | None) -> tuple[str, SVMHead]:
        """``(name, head)`` of the SVM called ``name`` (None: the bundle's default); refused by name."""
        name = name or self.default_svm
        if name not in self.svms:
            raise CadcamInputError(f"svm: {name!r} is not in the bundle; it has {sorted(self.svms)}")
        return name, self.svms[name]

    def preprocess(self, images: Tensor) -> Tensor:
        """What the bundle's model was trained on, from images as read from files.

        uint8 (N, C, H, W), C = 1 or 3 -> float (N, 3, S, S): divided by 255, grey repeated to RGB,
        bilinear resize to the input size S, ImageNet mean/std normalisation; on the model's device.

        Args:
            images: uint8 (N, 1 or 3, H, W).
        Returns:
            float32 (N, 3, S, S).
        """
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise CadcamInputError("images: expected a uint8 tensor (N, C, H, W), as image files are read")
        if images.shape[1] not in (1, 3):
            raise CadcamInputError(f"images: expected 1 or 3 channels, got {images.shape[1]}")
        device = next(self.model.parameters()).device
        return to_model_input(images.cpu(), self.backbone.input_size).to(device)

    def closed_form(self, svm: str | None = None, method: str = "grad-cam", classes: str = "predicted") -> ClosedForm:
        """The head's :class:`~cadcam_numeric.engine.closed_form.ClosedForm` with the PCA and the classifier
        ``svm`` (None: the bundle's default), on the model's device: ``cf(model.backbone(x))`` gives every map.
        """
        _, svm_head = self.svm_named(svm)
        cf = ClosedForm(
            self.model.head,
            self.pca,
            self.pca_after,
            svm_head,
            method=method,
            classes=classes,
            channels_last=self.document.head.channels_last,
            feature_shape=self.document.backbone.feature_shape,
        )
        return cf.to(next(self.model.parameters()).device)


def bundle_sha256(directory: Path) -> str:
    """The sha256 of a bundle's ``bundle.json`` (which records its tensors' sha256): the bundle's identity."""
    return file_sha256(Path(directory) / "bundle.json")


def _steps(estimator: object) -> list[object]:
    return [step for _, step in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]


def _model_tensors(model: CNN, backbone: Backbone) -> dict[str, Tensor]:
    """The head's weights, and the backbone's when it was trained (small_vgg)."""
    tensors = {f"head.{k}": v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
    if backbone.trainable:
        tensors |= {f"backbone.{k}": v.detach().cpu().contiguous() for k, v in model.backbone.state_dict().items()}
    return tensors


def _pca_tensors(pca: PCA) -> tuple[PCALayer, dict[str, Tensor]]:
    """The PCA layer (scalers in front folded in: block/pca/scaler_fold) and its tensors."""
    layer = pca_layer_from_sklearn(pca, None, torch.zeros((), dtype=torch.float64))
    if not isinstance(layer, PCALayer):
        raise CadcamInputError(
            "bundle: only linear transforms (PCA, IncrementalPCA, TruncatedSVD, after affine scalers) can be "
            "saved; a KernelPCA or a Normalizer is explained in memory with explain()"
        )
    tensors = {"pca.components": layer.components.contiguous(), "pca.mean": layer.mean.contiguous()}
    if layer.explained_variance is not None:
        tensors["pca.explained_variance"] = layer.explained_variance.contiguous()
    return layer, tensors


def _estimator_name(name: str, svm: object) -> str:
    estimator = type(_steps(svm.best_estimator_ if hasattr(svm, "best_estimator_") else svm)[-1]).__name__
    if estimator not in SPEC_KIND_OF_ESTIMATOR:
        raise CadcamInputError(
            f"bundle: classifier {name!r} ({estimator}) cannot be saved; bundles hold "
            f"{', '.join(SPEC_KIND_OF_ESTIMATOR)} (after one StandardScaler); explain it in memory with explain()"
        )
    return estimator


def _classifier_record(name: str, svm: object) -> tuple[ClassifierSection, dict[str, Tensor]]:
    """A fitted classifier's section of the document and its tensors."""
    head = parse_svm(svm, torch.zeros((), dtype=torch.float64))
    if not isinstance(head, SVMHead) or head.steps:
        raise CadcamInputError(
            f"bundle: classifier {name!r} cannot be saved (CalibratedClassifierCV, or scalers other than one "
            "StandardScaler in front); explain it in memory with explain()"
        )
    tensors = {f"svm.{name}.orientation": head.orientation.contiguous()}
    for i, block in enumerate(head.blocks):
        for part in ("support_vectors", "dual_coef", "intercept"):
            tensors[f"svm.{name}.block{i}.{part}"] = getattr(block, part).contiguous()
    for part in ("scaler_mean", "scaler_scale"):
        if getattr(head, part) is not None:
            tensors[f"svm.{name}.{part}"] = getattr(head, part).contiguous()
    section = ClassifierSection(
        estimator=_estimator_name(name, svm),
        scheme=head.scheme,
        classes=tuple(np.asarray(head.classes).tolist()),
        n_features=head.n_features,
        blocks=tuple(DecisionBlockSection(block.kernel.name, dict(block.params)) for block in head.blocks),
        zero_is_positive=head.zero_is_positive,
        break_ties=head.break_ties,
        scaler=head.scaler_mean is not None or head.scaler_scale is not None,
    )
    return section, tensors


def _backbone_section(backbone: Backbone, config: dict) -> BackboneSection:
    return BackboneSection(
        name=backbone.name,
        feature_layer=config["feature_layer"],
        input_size=backbone.input_size,
        feature_shape=(backbone.channels, backbone.feature_size, backbone.feature_size),
        trainable=backbone.trainable,
        weights_source=backbone.weights_source,
        weights_sha256=backbone.weights_sha256,
    )


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
    input_shape: tuple[int, int, int] | None = None,
) -> Path:
    """Write the bundle to ``directory`` (replacing an existing one only once the new one is complete).

    ``architecture``: the spec the model was built from; its TOML text is embedded (data, not code).
    ``input_shape``: (C, H, W) of the training images as read (explain tells when its images differ).
    """
    directory = Path(directory)
    layer, pca_tensors = _pca_tensors(pca)
    tensors = _model_tensors(model, backbone) | pca_tensors
    classifiers: dict[str, ClassifierSection] = {}
    for name, svm in svms.items():
        classifiers[name], svm_tensors = _classifier_record(name, svm)
        tensors |= svm_tensors
    projection = _steps(pca)[-1]
    with atomic_directory(directory) as tmp:
        save_file(tensors, str(tmp / TENSORS))
        document = BundleDocument(
            cadcam_version=__version__,
            catalogue_sha256=CATALOGUE_SHA256,
            config=config,
            backbone=_backbone_section(backbone, config),
            head=HeadSection(
                widths=tuple(config["widths"]),
                activation=config["activation"],
                n_classes=len(class_names),
                channels_last=bool(config.get("channels_last", False)),
            ),
            pca=PCASection(
                after=pca_after,
                n_components=layer.n_components,
                whiten=layer.explained_variance is not None,
                explained_variance_ratio=tuple(np.asarray(projection.explained_variance_ratio_).tolist()),
                transform=" -> ".join(type(step).__name__ for step in _steps(pca)),
            ),
            svms=classifiers,
            default_svm=default_svm,
            class_names=tuple(class_names),
            tensors_sha256=file_sha256(tmp / TENSORS),
            architecture=None
            if architecture is None
            else ArchitectureSection(architecture.text, architecture.spec.sha256(), architecture.spec.name),
            inputs=None if input_shape is None else InputsSection(*map(int, input_shape)),
        )
        write_bundle_document(document, tmp)
    return directory


# --- the model a document describes (the document is validated already: nothing here re-reads JSON) ---


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


def _load_tensors(directory: Path) -> dict[str, Tensor]:
    """Every tensor of the bundle, each finite (a NaN or Inf weight gives NaN maps or another prediction)."""
    try:
        tensors = load_file(str(directory / TENSORS))
    except Exception as exc:  # safetensors raises its own error type for a bad header
        raise CadcamInputError(f"bundle: {TENSORS} is not a valid safetensors file ({exc})") from exc
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CadcamInputError(f"bundle: tensor {name!r} holds NaN or Inf values")
    return tensors


def _backbone_of(doc: BundleDocument, weights: str | Path | None) -> Backbone:
    """The backbone the document names, its VGG16 weights checked by sha256, its output shape by the record."""
    bb = doc.backbone
    random_weights = bb.name == "vgg16" and bb.weights_source.startswith("random")
    backbone = build_backbone(
        bb.name,
        bb.feature_layer,
        weights=weights if weights is not None else (None if random_weights else bb.weights_source),
        random_weights=random_weights,
        input_size=bb.input_size,
        seed=doc.seed,
    )
    if bb.name == "vgg16" and bb.weights_sha256 and backbone.weights_sha256 != bb.weights_sha256:
        raise CadcamInputError("weights: the VGG16 weights differ from those the bundle was trained with (sha256)")
    made = (backbone.channels, backbone.feature_size, backbone.feature_size)
    if made != bb.feature_shape:
        raise CadcamInputError(
            f"bundle: backbone.feature_shape {list(bb.feature_shape)} is not what {bb.name} at "
            f"{backbone.input_size} px gives {made}"
        )
    return backbone


def _architecture_of(
    doc: BundleDocument, derived: str | Path | None, given: LoadedArchitecture | None
) -> LoadedArchitecture | None:
    """The embedded spec with its code (``derived``), or ``given`` when it is that same spec."""
    if doc.architecture is None:
        return None
    if given is not None and given.spec.sha256() != doc.architecture.sha256:
        raise CadcamInputError(
            f"spec: the bundle was made from another spec ({doc.architecture.name!r}); pass that spec or none"
        )
    return given or architecture_from_text(doc.architecture.toml, derived, "bundle: architecture")


def _model_of(doc: BundleDocument, backbone: Backbone, tensors: dict, arch: LoadedArchitecture | None) -> CNN:
    head = make_head(
        backbone,
        doc.head.n_classes,
        doc.head.widths,
        doc.head.activation,
        arch.activation_modules() if arch is not None else None,
        doc.head.channels_last,
    )
    model = CNN(backbone.features, head)
    try:
        head.load_state_dict({k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")})
        if backbone.trainable:
            model.backbone.load_state_dict(
                {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
            )
    except RuntimeError as exc:
        raise CadcamInputError(f"bundle: weights do not fit the recorded architecture ({exc})") from exc
    return model


def _pca_reads(head: nn.Sequential, after: int) -> int:
    """The width of what PCA reads, from the built head: the pooled features (0) or dense layer ``after``."""
    linears = [m for m in head if isinstance(m, nn.Linear)]
    return linears[after - 1].out_features if after else linears[0].in_features


def _pca_of(doc: BundleDocument, tensors: dict[str, Tensor], reads: int) -> PCALayer:
    b = doc.pca.n_components
    pca = PCALayer(
        _tensor(tensors, "pca.components", (b, reads)),
        _tensor(tensors, "pca.mean", (reads,)),
        _tensor(tensors, "pca.explained_variance", (b,)) if doc.pca.whiten else None,
    )
    if pca.explained_variance is not None and bool((pca.explained_variance <= 0).any()):
        raise CadcamInputError("bundle: tensor 'pca.explained_variance' must be positive (it is divided by)")
    return pca


def _classifier_of(name: str, section: ClassifierSection, tensors: dict, kernels: dict) -> SVMHead:
    b, blocks = section.n_features, []
    for i, block in enumerate(section.blocks):
        prefix = f"svm.{name}.block{i}"
        support = _tensor(tensors, f"{prefix}.support_vectors", (None, b))
        dual = _tensor(tensors, f"{prefix}.dual_coef", (None, support.shape[0]))
        intercept = _tensor(tensors, f"{prefix}.intercept", (dual.shape[0],))
        blocks.append(DecisionBlock(kernels[block.kernel], support, dual, intercept, dict(block.params)))
    decisions = sum(block.dual_coef.shape[0] for block in blocks)
    orientation = _tensor(tensors, f"svm.{name}.orientation", (len(section.classes), decisions))
    mean, scale = (
        _tensor(tensors, f"svm.{name}.{part}", (b,)) if f"svm.{name}.{part}" in tensors else None
        for part in ("scaler_mean", "scaler_scale")
    )
    if scale is not None and bool((scale == 0).any()):
        raise CadcamInputError(f"bundle: tensor 'svm.{name}.scaler_scale' must not hold zeros (it is divided by)")
    classes = np.asarray(section.classes)
    return SVMHead(
        section.scheme, blocks, orientation, classes, mean, scale, b, section.zero_is_positive, section.break_ties
    )


def load_bundle(
    directory: Path,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    derived: str | Path | None = None,
    architecture: LoadedArchitecture | None = None,
) -> Bundle:
    """The bundle in ``directory``: its document read and validated, then the model built from it.

    Args:
        directory: a bundle directory (``cadcam demo`` / ``cadcam train`` write ``OUT/bundle``).
        weights: the VGG16 weights file, when it moved since training (checked by sha256).
        device: where the model and the engine's tensors live.
        derived: for a bundle made from a spec with its own activations or kernels, the directory
            ``cadcam derive SPEC --out DIR`` wrote (checked against the embedded spec).
        architecture: that spec already loaded, instead of ``derived``.
    Returns:
        a :class:`Bundle`: ``model`` (backbone + head), ``pca``, ``svms``, ``preprocess(images)`` and
        ``closed_form(svm)``.
    """
    directory = Path(directory)
    doc = read_bundle_document(directory)
    tensors = _load_tensors(directory)
    backbone = _backbone_of(doc, weights)
    arch = _architecture_of(doc, derived, architecture)
    model = _model_of(doc, backbone, tensors, arch).to(device).eval()
    pca = _pca_of(doc, tensors, _pca_reads(model.head, doc.pca.after))
    kernels = {**KERNELS, **(arch.code.kernels if arch is not None else {})}
    svms = {name: _classifier_of(name, s, tensors, kernels) for name, s in doc.svms.items()}
    return Bundle(model, backbone, pca, svms, doc)
