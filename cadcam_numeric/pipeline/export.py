"""``cadcam export``: a bundle's whole model — backbone and closed form — as one graph file (ONNX
or a ``torch.export`` program), a JSON description beside it, and a check of the file written.

The check loads what was written (ONNX Runtime, ``torch.export.load``) and runs it on images other
than the export example, against the eager model; an output further from eager than
:data:`TOLERANCE` of max(1, its largest magnitude) fails the export (the float32 tolerance of
``proofs_tests/test_closed_form.py``), and neither file is left. An image-resolution map is held
against the eager upsampling and scaling of the file's *own* feature-resolution map, within
:data:`IMAGE_TOLERANCE`: against eager's image map, min–max scaling would divide the feature maps'
float32 rounding by each map's range, a bound no fixed number gives.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cadcam_numeric import __version__
from cadcam_numeric.atomic import atomic_write, atomic_write_text
from cadcam_numeric.engine.closed_form import ClosedForm
from cadcam_numeric.engine.explain import METHODS
from cadcam_numeric.engine.explaining_model import ExplainingModel, image_maps
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.bundle import bundle_sha256, load_bundle
from cadcam_numeric.pipeline.data import IMAGENET_MEAN, IMAGENET_STD, to_model_input

__all__ = ["ExportCheck", "export_bundle", "tolerance"]

FORMATS = ("onnx", "pt2")
#: images the check runs (a batch size other than the export example's, so the batch is dynamic)
CHECK_BATCH, EXAMPLE_BATCH = 3, 2
TOLERANCE = 1e-5
IMAGE_TOLERANCE = 1e-4


def tolerance(output: str) -> float:
    """The check's tolerance for an output: :data:`IMAGE_TOLERANCE` for ``image_*``, else :data:`TOLERANCE`."""
    return IMAGE_TOLERANCE if output.startswith("image_") else TOLERANCE


@dataclass(frozen=True)
class ExportCheck:
    """What the check of the written file found: the largest difference from eager per output,
    relative to max(1, that output's largest magnitude), and whether every one is within its
    :func:`tolerance`."""

    path: Path
    description: Path
    differences: dict[str, float]

    @property
    def ok(self) -> bool:
        return all(d <= tolerance(k) for k, d in self.differences.items())


def _images(batch: int, size: int, seed: int) -> torch.Tensor:
    """Random model-ready images (uint8 noise through :func:`to_model_input`), (batch, 3, size, size)."""
    pixels = torch.randint(
        0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )
    return to_model_input(pixels, size)


def _write_graph(model: ExplainingModel, example: torch.Tensor, path: Path, fmt: str) -> None:
    batch = torch.export.Dim("batch", min=1)
    if fmt == "onnx":
        atomic_write(
            path,
            lambda tmp: torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=True,
                dynamic_shapes=({0: batch},),
                verbose=False,
                external_data=False,  # one self-contained file: no side file named after the temporary one
            ),
        )
    else:
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        atomic_write(path, lambda tmp: torch.export.save(program, str(tmp)))


def _run_written(path: Path, fmt: str, images: torch.Tensor) -> list[np.ndarray]:
    """The outputs of the file as written, loaded afresh, in the graph's output order."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: images.numpy()})
    loaded = torch.export.load(str(path)).module()
    return [v.detach().numpy() for v in loaded(images).values()]


def _difference(got: np.ndarray, want: torch.Tensor) -> float:
    """max |got − want| / max(1, max |want|) (integers and booleans: 0 if equal, else inf)."""
    want = want.detach()
    got_t = torch.as_tensor(got)
    if got_t.shape != want.shape:
        return float("inf")
    if not want.is_floating_point():
        return 0.0 if torch.equal(got_t.to(want.dtype), want) else float("inf")
    scale = max(float(want.abs().max()), 1.0) if want.numel() else 1.0
    return float((got_t.double() - want.double()).abs().max()) / scale if want.numel() else 0.0


def _differences(got: dict[str, np.ndarray], eager: dict[str, torch.Tensor], size: int) -> dict[str, float]:
    """Each output's :func:`_difference`: feature-resolution outputs from eager's; image maps from
    :func:`image_maps` of the file's own feature maps (module docstring)."""
    if list(got) != list(eager):
        return {"outputs": float("inf")}
    own = {k: torch.as_tensor(v) for k, v in got.items() if not k.startswith("image_")}
    rescaled = image_maps(own, (size, size)) if all(v.shape == eager[k].shape for k, v in own.items()) else {}
    return {k: _difference(g, rescaled.get(k, eager[k])) for k, g in got.items()}


def export_bundle(
    bundle_dir: Path,
    out: Path,
    *,
    fmt: str = "onnx",
    classes: str = "predicted",
    method: str = "grad-cam",
    svm: str | None = None,
) -> ExportCheck:
    """Write the bundle's whole model (module docstring) to ``out`` and ``out`` + ``.json``, then
    check the written file against the eager model. Returns the check; on a failed check both files
    are removed (nothing unchecked is left) and the check is returned for its figures."""
    if fmt not in FORMATS:
        raise CadcamInputError(f"--format: expected one of {FORMATS}, got {fmt!r}")
    if method not in METHODS:
        raise CadcamInputError(f"--method: expected one of {METHODS}, got {method!r}")
    out = Path(out)
    _check_replaceable_file(out, fmt)
    bundle = load_bundle(Path(bundle_dir), device=torch.device("cpu"))
    svm_name, svm_head = bundle.svm_named(svm)
    shape = (bundle.backbone.channels, bundle.backbone.feature_size, bundle.backbone.feature_size)
    cf = ClosedForm(
        bundle.model.head, bundle.pca, bundle.pca_after, svm_head, method=method, classes=classes, feature_shape=shape
    )
    model = ExplainingModel(bundle.model.backbone, cf).eval()
    size = bundle.backbone.input_size
    example, images = _images(EXAMPLE_BATCH, size, 0), _images(CHECK_BATCH, size, 1)
    with torch.no_grad():
        eager = model(images)
    _write_graph(model, example, out, fmt)
    differences = _differences(dict(zip(eager, _run_written(out, fmt, images), strict=False)), eager, size)
    description = out.with_name(out.name + ".json")
    check = ExportCheck(out, description, differences)
    if not check.ok:
        out.unlink(missing_ok=True)
        return check
    doc = {
        "format": fmt,
        "input": {
            "shape": ["batch", 3, size, size],
            "dtype": "float32",
            "normalisation": {"scale": "pixels / 255", "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        },
        "class_names": bundle.class_names,
        "classifier": {"name": svm_name, "labels": [str(c) for c in np.asarray(svm_head.classes).tolist()]},
        "classes": classes,
        "method": method,
        "outputs": [{"name": k, "shape": ["batch", *v.shape[1:]], "dtype": str(v.dtype)} for k, v in eager.items()],
        "bundle_sha256": bundle_sha256(bundle_dir),
        "check": {
            "images": CHECK_BATCH,
            "tolerance": TOLERANCE,
            "image_tolerance": IMAGE_TOLERANCE,
            "differences": differences,
        },
        "versions": _versions(fmt),
    }
    if fmt == "onnx":
        doc["opset"] = _opset(out)
    atomic_write_text(description, json.dumps(doc, indent=2) + "\n")
    return check


def _check_replaceable_file(out: Path, fmt: str) -> None:
    """``out`` must be new, or an export cadcam wrote (its ``.json`` beside it names a bundle): a
    file of yours is never replaced."""
    if out.is_dir() or out.is_symlink():
        raise CadcamInputError(f"--out: {out} is a folder or a symlink; give the file to write (e.g. model.{fmt})")
    if not out.parent.is_dir():
        raise CadcamInputError(f"--out: the folder {out.parent} does not exist")
    if out.exists():
        sidecar = out.with_name(out.name + ".json")
        try:
            ours = "bundle_sha256" in json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            ours = False
        if not ours:
            raise CadcamInputError(
                f"--out: {out} exists and is not an export cadcam wrote (no {sidecar.name} beside it); give a new file"
            )


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _versions(fmt: str) -> dict[str, object]:
    versions: dict[str, object] = {
        "cadcam": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if fmt == "onnx":
        import onnx
        import onnxruntime

        versions.update(onnx=onnx.__version__, onnxruntime=onnxruntime.__version__)
    return versions
