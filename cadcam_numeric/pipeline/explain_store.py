"""``cadcam explain SOURCE --out DIR`` over a whole dataset: streamed, stored in shards, resumable,
on one process or many (torchrun).

Memory stays bounded: the DataLoader reads a few batches ahead and one shard's results (1,024
images by default, a few kilobytes each) are held until that shard is written. A rerun of the same
command after an interruption keeps every finished shard (each was written whole) and computes
only the rest; the store it ends with is byte for byte the one an uninterrupted run writes.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cadcam_numeric.atomic import (
    atomic_write_text,
    check_replaceable,
    claim_directory,
    partial_files,
    remove_stale_temporaries,
    resolved_path,
)
from cadcam_numeric.devices import select_device
from cadcam_numeric.engine.explain import CAMResult, explain
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline.batches import shard_batches, shard_count
from cadcam_numeric.pipeline.bundle import Bundle, bundle_sha256, load_bundle
from cadcam_numeric.pipeline.distributed import start_processes
from cadcam_numeric.pipeline.run import labels_as_numpy
from cadcam_numeric.pipeline.sources import ImageSource, open_source
from cadcam_numeric.pipeline.store import (
    INDEX_CSV,
    INDEX_PARQUET,
    MANIFEST,
    MAP_NAMES,
    SKIPPED_CSV,
    STORE_FORMAT,
    number_text,
    read_arrays,
    shard_path,
    write_arrays,
    write_parquet,
    write_table,
)
from cadcam_numeric.spec.architecture import load_architecture_file

__all__ = ["StoreRun", "explain_to_store"]

DEFAULT_SHARD_SIZE = 1024
DEFAULT_BATCH_SIZE = 32


@dataclass
class StoreRun:
    """What a run did: ``images`` explained and ``skipped`` unreadable in the whole store; shards
    ``computed`` by this process and ``kept`` from an earlier, interrupted run; its wall time, and
    ``stream_seconds`` of it spent reading, explaining and writing shards (after the bundle loaded;
    the slowest rank's when there are several)."""

    out: Path
    images: int
    skipped: list[tuple[str, str]]
    computed: int
    kept: int
    seconds: float
    rank: int = 0
    world: int = 1
    files: dict[str, Path] = field(default_factory=dict)
    stream_seconds: float = 0.0


def _source_digest(source: ImageSource) -> str:
    digest = hashlib.sha256()
    for i, label in zip(source.ids, source.labels, strict=True):
        digest.update(f"{i}\0{label}\n".encode())
    return digest.hexdigest()


def _explain_batch(bundle: Bundle, svm_name: str, method: str, images: torch.Tensor) -> CAMResult:
    with torch.no_grad():
        features = bundle.model.backbone(images)
    result = explain(features, bundle.model.head, bundle.pca, bundle.pca_after, bundle.svms[svm_name], method=method)
    for name in (*MAP_NAMES, "pca_scores", "svm_scores", "logits"):
        value = getattr(result, name)
        if value is not None and not bool(torch.isfinite(value).all()):
            raise CadcamInputError(
                f"bundle: the {name} of a batch is not finite (NaN or Inf): the bundle's weights overflow "
                f"{features.dtype} on these images"
            )
    return result


def _columns(result: CAMResult) -> dict[str, str]:
    """The index's columns and their kinds, for what this head produces."""
    columns = {"id": "str", "label": "str", "label_index": "int", "shard": "int", "offset": "int"}
    if result.logits is not None:
        columns.update(cnn_prediction="int", cnn_probability="float")
    columns.update(svm_prediction="str", svm_score="float")
    columns.update({f"pca_{b + 1}": "float" for b in range(result.pca_scores.shape[1])})
    return columns


def _shard_arrays(
    results: list[tuple[np.ndarray, CAMResult, torch.Tensor]],
    source: ImageSource,
    probe: CAMResult,
    dtype: np.dtype,
    unreadable: list[tuple[int, str]],
    class_index: dict[str, int],
) -> dict[str, np.ndarray]:
    """One shard's arrays (store module docstring) from its batches' results; ``class_index`` maps
    a label to the bundle's class index."""

    def cat(values: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
        return np.concatenate(values) if values else empty[:0]

    positions = cat([p for p, _, _ in results], np.zeros(0, np.int64))
    arrays: dict[str, np.ndarray] = {
        "id": np.array([source.ids[i] for i in positions], dtype=str),
        "label": np.array([source.labels[i] for i in positions], dtype=str),
        "label_index": np.array([class_index.get(source.labels[i], -1) for i in positions], dtype=np.int64),
    }
    if probe.logits is not None:
        arrays["cnn_prediction"] = cat([r.cnn_prediction.cpu().numpy() for _, r, _ in results], np.zeros(0, np.int64))
        probability = [torch.softmax(r.logits, 1).gather(1, r.cnn_prediction[:, None])[:, 0] for _, r, _ in results]
        arrays["cnn_probability"] = cat([p.float().cpu().numpy() for p in probability], np.zeros(0, np.float32))
    arrays["svm_prediction"] = np.array(
        [str(v) for _, r, _ in results for v in labels_as_numpy(r.svm_prediction).tolist()], dtype=str
    )
    svm_score = [r.svm_scores.gather(1, column[:, None])[:, 0] for _, r, column in results]
    arrays["svm_score"] = cat([s.float().cpu().numpy() for s in svm_score], np.zeros(0, np.float32))
    arrays["pca_scores"] = cat(
        [r.pca_scores.float().cpu().numpy() for _, r, _ in results],
        np.zeros((0, *probe.pca_scores.shape[1:]), np.float32),
    )
    for name in MAP_NAMES:
        example = getattr(probe, name)
        if example is not None:
            maps = cat(
                [getattr(r, name).float().cpu().numpy() for _, r, _ in results],
                np.zeros((0, *example.shape[1:]), np.float32),
            )
            if dtype == np.float16:  # each map over its largest magnitude: no overflow, no flush to zero
                scale = np.abs(maps).max(axis=(-2, -1)) if maps.size else np.zeros(maps.shape[:-2], np.float32)
                scale = np.where(scale > 0, scale, 1).astype(np.float32)
                arrays[f"{name}_scale"] = scale
                maps = (maps / scale[..., None, None]).astype(np.float16)
            arrays[name] = maps
    arrays["skipped_id"] = np.array([source.ids[i] for i, _ in unreadable], dtype=str)
    arrays["skipped_reason"] = np.array([m for _, m in unreadable], dtype=str)
    return arrays


def _prepare(out: Path, config: dict, columns: dict[str, str], maps: dict[str, list[int]]) -> dict:
    """Claim ``out`` and write its manifest, or check that the one there is this run's (resume)."""
    manifest = {"format": STORE_FORMAT, "complete": False, "config": config, "columns": columns, "maps": maps}
    path = out / MANIFEST
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CadcamInputError(f"out: {path} is not readable JSON ({exc}); give a new folder") from exc
        unfinished = not existing.get("complete") and not any((out / "shards").glob("shard-*.npz"))
        if unfinished:  # a run that stopped before its first shard: nothing to keep, begin again
            atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
            return manifest
        if existing.get("config") != config or existing.get("format") != STORE_FORMAT:
            changed = sorted(k for k in config if existing.get("config", {}).get(k) != config[k])
            raise CadcamInputError(
                f"out: {out} holds a store of another run (it differs in {', '.join(changed) or 'format'}); "
                "give a new folder, or the same command to resume"
            )
        return existing
    claim_directory(out)
    if any(p.name != ".cadcam-output" for p in out.iterdir()):
        raise CadcamInputError(f"out: {out} holds files of another kind; give a new or empty folder for a store")
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _remove_partial_files(out: Path) -> None:
    """What an interrupted run was writing when it stopped: cadcam's temporary files
    (``.NAME.cadcam-XXXXXXXX.tmp``) in the store and its shards folder. Only rank 0 calls this,
    before any rank writes, and only in a folder that is cadcam's (checked first by :func:`explain_to_store`)."""
    if out.is_dir() and (out / MANIFEST).is_file():
        for folder in (out, out / "shards"):
            for partial in partial_files(folder):
                partial.unlink(missing_ok=True)


def _finished(out: Path, k: int) -> bool:
    """Whether shard k was written (whole, by an earlier run or another rank) and reads back."""
    path = shard_path(out, k)
    if not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None  # every member's CRC: a damaged shard is computed again
    except (OSError, zipfile.BadZipFile):
        return False


def _finish(out: Path, manifest: dict, n_shards: int) -> tuple[int, list[tuple[str, str]], dict[str, Path]]:
    """Rank 0, after every shard is written: the index (CSV, and Parquet with pyarrow), the skipped
    list, and the manifest marked complete."""
    columns = manifest["columns"]
    rows: list[list[str]] = []
    skipped: list[tuple[str, str]] = []
    names = tuple(c for c in columns if c not in ("shard", "offset") and not c.startswith("pca_"))
    for k in range(n_shards):
        arrays = read_arrays(shard_path(out, k), (*names, "pca_scores", "skipped_id", "skipped_reason"))
        for offset in range(len(arrays["id"])):
            row = []
            for c in columns:
                if c == "shard":
                    row.append(str(k))
                elif c == "offset":
                    row.append(str(offset))
                elif c.startswith("pca_"):
                    row.append(number_text(arrays["pca_scores"][offset, int(c[4:]) - 1]))
                elif columns[c] == "str":
                    row.append(str(arrays[c][offset]))
                else:
                    row.append(number_text(arrays[c][offset].item()))
            rows.append(row)
        skipped += list(zip(arrays["skipped_id"].tolist(), arrays["skipped_reason"].tolist(), strict=True))
    files = {"index": write_table(out / INDEX_CSV, list(columns), rows)}
    parquet = write_parquet(out / INDEX_PARQUET, list(columns), rows, columns)
    if parquet is not None:
        files["parquet"] = parquet
    files["skipped"] = write_table(out / SKIPPED_CSV, ["id", "reason"], [list(s) for s in skipped])
    manifest = {**manifest, "complete": True, "images": len(rows), "skipped": len(skipped), "shards": n_shards}
    files["manifest"] = atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return len(rows), skipped, files


def _store_config(bundle_dir: Path, src: ImageSource, svm_name: str, method: str, settings: dict) -> dict:
    """What the manifest records of a run: a rerun with another configuration starts afresh."""
    return {
        "bundle_sha256": bundle_sha256(bundle_dir),
        "source": src.name,
        "source_images": len(src),
        "source_sha256": _source_digest(src),
        "svm": svm_name,
        "method": method,
        **settings,
    }


def _map_shapes(probe: CAMResult, float16: bool) -> dict[str, list[int]]:
    maps = {n: list(getattr(probe, n).shape[1:]) for n in MAP_NAMES if getattr(probe, n) is not None}
    if float16:
        maps |= {f"{n}_scale": shape[:-2] for n, shape in maps.items()}
    return maps


@dataclass
class _Stream:
    """One rank's pass over its unfinished shards: what it explains with and where it writes."""

    bundle: Bundle
    svm_name: str
    method: str
    src: ImageSource
    out: Path
    probe: CAMResult
    dtype: np.dtype
    strict: bool

    def run(self, batches, bar) -> None:
        """Explain every batch; write each shard whole once its last batch is done."""
        _, svm_head = self.bundle.svm_named(self.svm_name)
        class_index = {name: i for i, name in enumerate(self.bundle.class_names)}
        results: list[tuple[np.ndarray, CAMResult, torch.Tensor]] = []
        unreadable: list[tuple[int, str]] = []
        for batch in batches:
            if batch.unreadable and self.strict:
                position, message = batch.unreadable[0]
                raise CadcamInputError(f"source: {self.src.ids[position]}: {message} (--strict stops at the first)")
            unreadable += batch.unreadable
            if len(batch.positions):
                result = _explain_batch(self.bundle, self.svm_name, self.method, batch.images)
                column = svm_head.class_index(labels_as_numpy(result.svm_target), "svm").to(result.svm_scores.device)
                results.append((batch.positions.numpy(), result, column))
            bar.update(len(batch.positions) + len(batch.unreadable))
            if batch.last_of_shard:
                arrays = _shard_arrays(results, self.src, self.probe, self.dtype, unreadable, class_index)
                write_arrays(shard_path(self.out, batch.shard), arrays)
                results, unreadable = [], []


def _opened(bundle_dir, source, procs, svm, method, weights, derived, spec, seed):
    """The bundle, its classifier's name, the source and a probe result (the shapes of every map)."""
    architecture = load_architecture_file(spec, derived) if spec is not None else None
    bundle = load_bundle(bundle_dir, weights=weights, device=procs.device, derived=derived, architecture=architecture)
    svm_name, _ = bundle.svm_named(svm)
    size = bundle.backbone.input_size
    src = source if isinstance(source, ImageSource) else open_source(source, size, seed)
    probe = _explain_batch(bundle, svm_name, method, torch.zeros(1, 3, size, size, device=procs.device))
    return bundle, svm_name, src, probe


def explain_to_store(
    bundle_dir: Path,
    source: str | list[str] | ImageSource,
    out_dir: Path,
    *,
    svm: str | None = None,
    method: str = "grad-cam",
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    float16: bool = False,
    strict: bool = False,
    distributed: bool = False,
    device: str | None = None,
    weights: str | None = None,
    derived: str | Path | None = None,
    spec: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> StoreRun:
    """Explain every image of ``source`` with the bundle in ``bundle_dir`` into the store ``out_dir``
    (:mod:`cadcam_numeric.pipeline.store`). Unreadable images are skipped and listed, or with
    ``strict`` stop the run. ``distributed``: this process is one rank of a torchrun group. ``source`` may
    be one already opened (:func:`~cadcam_numeric.pipeline.sources.open_source` at the bundle's input size)."""
    t0 = time.perf_counter()
    out = resolved_path(out_dir)  # one path for every check, write and clean-up
    check_replaceable(out, "out")  # new, empty or cadcam's: a folder of yours holding a store.json is not touched
    procs = start_processes(select_device(device), distributed)
    try:
        bundle, svm_name, src, probe = _opened(bundle_dir, source, procs, svm, method, weights, derived, spec, seed)
        settings = {"shard_size": shard_size, "batch_size": batch_size, "dtype": "float16" if float16 else "float32"}
        config = _store_config(
            bundle_dir, src, svm_name, method, {**settings, "device": procs.device.type, "seed": seed}
        )
        n_shards = shard_count(len(src), shard_size)
        if procs.is_main:
            remove_stale_temporaries(out)
            _remove_partial_files(out)
            manifest = _prepare(out, config, _columns(probe), _map_shapes(probe, float16))
        procs.barrier()
        if not procs.is_main:
            manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        mine = procs.mine(n_shards)
        todo = [k for k in mine if not _finished(out, k)]
        total = sum(min(len(src), (k + 1) * shard_size) - k * shard_size for k in todo)
        desc = f"explain (rank {procs.rank})" if procs.world > 1 else "explain"
        t_stream = time.perf_counter()
        dtype = np.dtype(np.float16 if float16 else np.float32)
        stream = _Stream(bundle, svm_name, method, src, out, probe, dtype, strict)
        with tqdm(total=total, unit="img", desc=desc, disable=not progress or not procs.is_main, smoothing=0.1) as bar:
            stream.run(shard_batches(src, todo, shard_size, batch_size, procs.device, workers), bar)
        stream_seconds = time.perf_counter() - t_stream
        procs.barrier()
        files: dict[str, Path] = {}
        if procs.is_main:
            images, skipped, files = _finish(out, manifest, n_shards)
        summary = procs.gather((len(mine) - len(todo), len(todo), stream_seconds))
        procs.barrier()
        if not procs.is_main:
            images, skipped = int(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["images"]), []
        kept, computed = sum(s[0] for s in summary), sum(s[1] for s in summary)
        seconds, stream_seconds = time.perf_counter() - t0, max(s[2] for s in summary)  # the slowest rank's
        return StoreRun(out, images, skipped, computed, kept, seconds, procs.rank, procs.world, files, stream_seconds)
    finally:
        procs.close()
