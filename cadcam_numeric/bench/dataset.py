"""``cadcam bench --dataset``: explain-and-store over a dataset against the backbone alone on the
same DataLoader; one process and two (torchrun, gloo); peak memory for 1,000 vs 10,000 images; and
deletion + insertion at 16 steps against its floor, 33 forward passes of the same images.

Everything is measured in this run, on this machine, as ratios of times taken in the same run
(the machine is shared and noisy: never compare across runs). The model is a bundle's (``bundle``)
or, by default, small_vgg trained for one epoch on digits with PCA and the four SVMs fitted; the
images are PNG files the bench writes (digits at the model's input size), read by the DataLoader's
workers exactly as ``cadcam explain folder:…`` reads a user's folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cadcam_numeric.engine.explain import explain, target_scores
from cadcam_numeric.engine.maps import normalise, upsample
from cadcam_numeric.methods.decom import gaussian_blur
from cadcam_numeric.metrics import deletion_insertion
from cadcam_numeric.pipeline.batches import default_workers, shard_batches, shard_count
from cadcam_numeric.pipeline.bundle import load_bundle
from cadcam_numeric.pipeline.distributed import torchrun_command
from cadcam_numeric.pipeline.explain_store import explain_to_store
from cadcam_numeric.pipeline.small_demo import small_demo_bundle
from cadcam_numeric.pipeline.sources import open_source

__all__ = ["DatasetBench", "dataset_markdown", "run_dataset_bench"]

#: the peak-memory wrapper: run a command, print the largest resident set of it and its children (KiB)
_PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


@dataclass
class DatasetBench:
    device: str
    model: str
    input_size: int
    images: int
    workers: int
    batch_size: int
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _write_pngs(folder: Path, n: int, size: int) -> Path:
    """``n`` PNG files of scikit-learn's digits at ``size`` pixels, one sub-folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(n):
        k = i % len(digits.images)
        image = Image.fromarray(np.round(digits.images[k] * (255 / 16)).astype(np.uint8)).resize((size, size))
        target = folder / str(digits.target[k])
        target.mkdir(parents=True, exist_ok=True)
        image.save(target / f"{i:06d}.png")
    return folder


#: images per shard in the bench's runs: several shards, so that two processes both have work
SHARD_SIZE = 128


def _backbone_only(bundle_dir: Path, source: str, device: torch.device, batch_size: int, workers: int) -> float:
    """Seconds to read every image through the same loader and run the backbone, nothing else."""
    bundle = load_bundle(bundle_dir, device=device)
    src = open_source(source, bundle.backbone.input_size)
    shards = list(range(shard_count(len(src), SHARD_SIZE)))
    t0 = time.perf_counter()
    with torch.no_grad():
        for batch in shard_batches(src, shards, SHARD_SIZE, batch_size, device, workers):
            bundle.model.backbone(batch.images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _store_seconds(bundle_dir: Path, source: str, out: Path, device: torch.device, batch: int, workers: int) -> float:
    """Seconds of explain-and-store over the same source and loader, from the loader's start to the
    last shard written (what the backbone-only loop times too; loading the bundle excluded)."""
    run = explain_to_store(
        bundle_dir, source, out, shard_size=SHARD_SIZE, batch_size=batch, workers=workers, device=str(device),
        progress=False,
    )  # fmt: skip
    return run.stream_seconds


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cadcam_numeric", *args]


def _distributed_seconds(bundle_dir: Path, source: str, out: Path, batch: int, workers: int) -> float | None:
    """explain-and-store under ``torchrun --nproc-per-node 2`` (gloo): the slowest rank's streaming
    seconds (loader start to last shard, as the one-process row; printed to the millisecond)."""
    command = torchrun_command(
        2, "explain", source, "--bundle", str(bundle_dir), "--out", str(out), "--batch-size", str(batch),
        "--workers", str(workers), "--device", "cpu", "--shard-size", str(SHARD_SIZE),
    )  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"2 processes[^,]*?, [\d.]+ s, ([\d.]+) s of it streaming\)", done.stdout)
    return float(found.group(1)) if done.returncode == 0 and found else None


def _peak_rss_mib(bundle_dir: Path, source: str, out: Path, batch: int, workers: int) -> float:
    command = _command(
        "explain", source, "--bundle", str(bundle_dir), "--out", str(out), "--batch-size", str(batch),
        "--workers", str(workers), "--device", "cpu",
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, *command], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def _deletion_insertion_ratio(bundle_dir: Path, device: torch.device, n: int, steps: int) -> tuple[float, float]:
    """Seconds of deletion + insertion at ``steps`` for one map of ``n`` localisation images, and of
    2·steps+1 forward passes of the same images (the floor: every curve point is one forward)."""
    bundle = load_bundle(bundle_dir, device=device)
    src = open_source(f"localisation:{n}", bundle.backbone.input_size)
    images = torch.stack([src[i].image for i in range(n)]).to(device)
    model, head, pca, layer = bundle.model, bundle.model.head, bundle.pca, bundle.pca_after
    svm = bundle.svms[bundle.default_svm]
    size = bundle.backbone.input_size
    with torch.no_grad():
        features = torch.cat([model.backbone(images[i : i + 256]) for i in range(0, n, 256)])
    maps = torch.cat(
        [
            normalise(upsample(explain(features[i : i + 256], head, pca, layer, svm).gradcam, (size, size)))
            for i in range(0, n, 256)
        ]
    )
    cls = torch.cat([model(images[i : i + 256]).argmax(1) for i in range(0, n, 256)])
    baseline = gaussian_blur(images, max(1.0, size / 16))

    def score(x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = target_scores(model.backbone(x), head, pca, layer, svm).logits
        return torch.softmax(logits, 1)[torch.arange(len(i)), cls[i]]

    t0 = time.perf_counter()
    deletion_insertion(score, images, maps, baseline, steps)
    curves = time.perf_counter() - t0
    index = torch.arange(n, device=device)
    t0 = time.perf_counter()
    for _ in range(2 * steps + 1):
        for i in range(0, n, 64):
            score(images[i : i + 64], index[i : i + 64])
    return curves, time.perf_counter() - t0


def run_dataset_bench(
    bundle: Path | None = None,
    sizes: tuple[int, int] = (1000, 10000),
    device: str = "cpu",
    batch_size: int = 32,
    workers: int | None = None,
    evaluate_images: int = 1000,
    steps: int = 16,
    repeats: int = 3,
    log: Callable[[str], None] = print,
) -> DatasetBench:
    """The dataset benchmark (module docstring); the one-process throughputs are the best of
    ``repeats`` alternated runs."""
    dev = torch.device(device)
    workers = default_workers() if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="cadcam-bench-dataset-") as tmp:
        work = Path(tmp)
        model = str(bundle)
        if bundle is None:
            log("training the benchmark bundle (small_vgg, 1 epoch on digits)")
            bundle, model = small_demo_bundle(work / "bundle"), "small_vgg (1 epoch on digits, PCA + 4 SVMs)"
        size = load_bundle(bundle).backbone.input_size
        small, large = sizes
        log(f"writing {large:,} PNG images of {size} px")
        _write_pngs(work / "large", large, size)
        _write_pngs(work / "small", small, size)
        result = DatasetBench(device, model, size, small, workers, batch_size)
        source = f"folder:{work / 'small'}"
        log(f"backbone alone and explain-and-store over {small:,} images, best of {repeats}")
        _backbone_only(bundle, source, dev, batch_size, workers)  # warm-up (file cache, first allocations)
        backbone, one = float("inf"), float("inf")
        for r in range(repeats):  # alternated, so that both see the same machine
            backbone = min(backbone, _backbone_only(bundle, source, dev, batch_size, workers))
            one = min(one, _store_seconds(bundle, source, work / f"s1-{r}", dev, batch_size, workers))
        result.rows.append(_row("backbone forward only (same DataLoader)", small, backbone, backbone))
        result.rows.append(_row("explain all maps + write the store, 1 process", small, one, backbone))
        if dev.type == "cpu":
            log("explain and store, 2 processes (torchrun, gloo)")
            two = _distributed_seconds(bundle, source, work / "s2", batch_size, max(0, workers // 2))
            if two is None:
                result.notes.append("the 2-process run failed (torchrun); see `cadcam explain --distributed`")
            else:
                result.rows.append(_row("explain all maps + write the store, 2 processes", small, two, backbone))
        log(f"peak memory, {small:,} vs {large:,} images")
        for n, folder in ((small, "small"), (large, "large")):
            rss = _peak_rss_mib(bundle, f"folder:{work / folder}", work / f"rss{n}", batch_size, workers)
            result.rows.append({"measure": f"peak RSS, explain + store of {n:,} images", "value": f"{rss:.0f} MiB"})
        log(f"deletion + insertion, {evaluate_images:,} images, {steps} steps")
        curves, floor = _deletion_insertion_ratio(bundle, dev, evaluate_images, steps)
        result.rows.append(
            {
                "measure": f"deletion + insertion, one map, {evaluate_images:,} images, {steps} steps",
                "value": f"{curves:.3g} s",
                "ratio": f"{curves / floor:.2f}× {2 * steps + 1} forwards ({floor:.3g} s)",
            }
        )
    return result


def _row(what: str, n: int, seconds: float, backbone: float) -> dict:
    return {
        "measure": what,
        "value": f"{n / seconds:.0f} images/s",
        "ratio": f"{backbone / seconds:.2f}× the backbone's throughput",
    }


def dataset_markdown(result: DatasetBench) -> str:
    lines = [
        f"Dataset bench on {result.device}: {result.model} ({result.input_size} px), batch {result.batch_size}, "
        f"{result.workers} DataLoader worker(s)",
        "",
        "| measure | value | ratio |",
        "|---|---|---|",
    ]
    lines += [f"| {r['measure']} | {r['value']} | {r.get('ratio', '')} |" for r in result.rows]
    lines += ["", *result.notes]
    return "\n".join(lines).rstrip() + "\n"
