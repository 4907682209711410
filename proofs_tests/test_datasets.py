"""Issue 16: whole datasets. ``cadcam explain SOURCE`` streams into a map store that holds exactly
what :func:`explain` gives on the same batches, resumes after ``kill -9`` to the same bytes, and is
the same bytes when two gloo processes (torchrun) write it; ``cadcam evaluate`` streams and splits
the same way; bad sources get clear messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cadcam_numeric import explain
from cadcam_numeric.cli import main
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.pipeline import MapStore
from cadcam_numeric.pipeline.bundle import load_bundle
from cadcam_numeric.pipeline.data import load_data, to_model_input
from cadcam_numeric.pipeline.distributed import torchrun_command
from cadcam_numeric.pipeline.explain_store import explain_to_store
from cadcam_numeric.pipeline.small_demo import small_demo_bundle

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    """small_vgg trained one epoch on digits, PCA and the four SVMs fitted for real."""
    return small_demo_bundle(tmp_path_factory.mktemp("b") / "bundle")


def _files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cadcam_numeric", *args]


def test_the_store_holds_what_explain_gives_on_the_same_batches(bundle_dir, tmp_path):
    """Every map and index column equals explain() on the batch it was computed in, bit for bit."""
    run = explain_to_store(bundle_dir, "digits", tmp_path / "s", shard_size=50, batch_size=16, workers=0)
    store = MapStore(tmp_path / "s")
    assert run.images == len(store) == 360 and run.computed == 8 and run.skipped == [] and store.skipped == []
    bundle = load_bundle(bundle_dir)
    svm = bundle.svms[bundle.default_svm]
    test = load_data("digits").test
    assert store.ids == [f"test/{i:06d}" for i in range(360)]
    assert [int(v) for v in store.index["label"]] == test.labels.tolist()
    starts = [start for shard in range(8) for start in range(50 * shard, min(50 * shard + 50, 360), 16)]
    for start in starts:  # every batch: 16 images, a shard's short last one (48-49), the source's (350-359)
        stop = min(start + 16, (start // 50 + 1) * 50, 360)
        images = to_model_input(test.images[start:stop], bundle.backbone.input_size)
        with torch.no_grad():
            r = explain(bundle.model.backbone(images), bundle.model.head, bundle.pca, 2, svm)
        column = svm.class_index(np.asarray(r.svm_prediction), "svm")
        probability = torch.softmax(r.logits.double(), 1).max(1).values  # in float64, not the store's way
        for j, i in enumerate(range(start, stop)):
            stored = store[i]
            assert (stored["shard"], stored["offset"]) == (i // 50, i % 50)
            assert stored["label_index"] == int(test.labels[i])
            for name in ("gradcam", "pca_positive", "pca_negative", "svm"):
                assert np.array_equal(stored[name], getattr(r, name)[j].numpy()), (name, i)
            assert stored["cnn_prediction"] == int(r.cnn_prediction[j])
            assert abs(stored["cnn_probability"] - probability[j].item()) < 1e-6
            assert stored["svm_prediction"] == str(r.svm_prediction[j].item())
            assert np.float32(stored["svm_score"]) == np.float32(r.svm_scores[j, column[j]].item())
            pca = [np.float32(stored[f"pca_{b + 1}"]) for b in range(3)]
            assert pca == [np.float32(v) for v in r.pca_scores[j].tolist()]
    assert store["test/000007"]["offset"] == 7
    with pytest.raises(KeyError, match="no image with id"):
        store["test/999999"]
    with pytest.raises(IndexError):
        store[360]


def test_float16_maps_and_the_parquet_index(bundle_dir, tmp_path):
    """float16 maps are stored over their largest magnitude, so a map of any size keeps 11
    significant bits: no overflow above 65,504 and no flush to zero below 6e-8."""
    explain_to_store(bundle_dir, "localisation:70", tmp_path / "h", shard_size=32, workers=0, float16=True)
    explain_to_store(bundle_dir, "localisation:70", tmp_path / "f", shard_size=32, workers=0)
    half, full = MapStore(tmp_path / "h"), MapStore(tmp_path / "f")
    for i in (0, 31, 32, 69):
        for name in ("gradcam", "pca_positive", "pca_negative", "svm"):
            a, b = half[i][name], full[i][name]
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
            largest = np.abs(b).max(axis=(-2, -1), keepdims=True)
            assert (np.abs(a - b) <= largest * 2.0**-11).all(), (name, i)
    assert np.array_equal(half.index, full.index)  # the index does not depend on the maps' storage
    with np.load(tmp_path / "h" / "shards" / "shard-00000.npz") as shard:
        assert shard["svm"].dtype == np.float16 and np.abs(shard["svm"]).max() == 1
        assert shard["pca_positive_scale"].shape == (32, 3)


@pytest.mark.parametrize("factor", [1e6, 1e-9])
def test_float16_keeps_maps_far_outside_its_range(bundle_dir, tmp_path, monkeypatch, factor):
    """Maps 1e6 or 1e-9 times their size (float16 overflows above 65,504 and flushes below 6e-8)
    come back from a float16 store to 11 significant bits of each map's largest value."""
    import dataclasses

    import cadcam_numeric.pipeline.explain_store as explain_store

    real = explain_store._explain_batch

    def scaled(*args):
        r = real(*args)
        return dataclasses.replace(
            r, **{n: getattr(r, n) * factor for n in ("gradcam", "pca_positive", "pca_negative", "svm")}
        )

    monkeypatch.setattr(explain_store, "_explain_batch", scaled)
    explain_to_store(bundle_dir, "localisation:20", tmp_path / "h", workers=0, float16=True, progress=False)
    explain_to_store(bundle_dir, "localisation:20", tmp_path / "f", workers=0, progress=False)
    half, full = MapStore(tmp_path / "h"), MapStore(tmp_path / "f")
    compared = 0
    for i in range(20):
        for name in ("gradcam", "pca_positive", "pca_negative", "svm"):
            a, b = half[i][name], full[i][name]
            largest = np.abs(b).max(axis=(-2, -1), keepdims=True)  # 0 for a map the ReLU zeroed
            assert np.isfinite(a).all() and (np.abs(a - b) <= largest * 2.0**-11).all(), (name, i)
            compared += int((largest > 0).sum())
    assert compared > 100  # nonzero maps, far outside float16's range, were compared


def test_parquet_index_equals_the_csv(bundle_dir, tmp_path):
    explain_to_store(bundle_dir, "localisation:70", tmp_path / "f", shard_size=32, workers=0, progress=False)
    full = MapStore(tmp_path / "f")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(tmp_path / "f" / "index.parquet")
    assert table.column_names == list(full.index.dtype.names) and table.num_rows == 70
    assert table.column("id").to_pylist() == full.ids
    assert np.array_equal(np.asarray(table.column("svm_score")), full.index["svm_score"])


def test_a_run_killed_after_its_first_shard_resumes_to_the_same_store(bundle_dir, tmp_path):
    """SIGKILL once the first shard is written; the same command finishes the store, which then
    equals an uninterrupted run's byte for byte."""
    args = ["explain", "localisation:2000", "--bundle", str(bundle_dir), "--shard-size", "50", "--workers", "0"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--out", str(killed)), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (killed / "shards" / "shard-00000.npz").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the first shard never appeared"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = sorted((killed / "shards").glob("shard-*.npz"))
    manifest = json.loads((killed / "store.json").read_text())
    assert 1 <= len(written) < 40 and manifest["complete"] is False, "the kill came too late to test resuming"
    with pytest.raises(CadcamInputError, match="incomplete"):
        MapStore(killed)
    # what a kill in the middle of a write leaves: cadcam's temporary names, removed on resuming
    (killed / "shards" / ".shard-00039.npz.cadcam-k1ll3d00.tmp").write_bytes(b"half a shard")
    (killed / ".index.csv.cadcam-k1ll3d00.tmp").write_text("id,la")
    resumed = subprocess.run(_cli(*args, "--out", str(killed)), cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "kept from an earlier run" in resumed.stdout and f"{len(written)} kept" in resumed.stdout
    whole = tmp_path / "whole"
    assert main([*args, "--out", str(whole)]) == 0
    assert _files(killed) == _files(whole)
    assert len(MapStore(killed)) == 2000


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_command(2, *args), cwd=ROOT, capture_output=True, text=True, timeout=600)


def _one_thread(*args: str) -> int:
    """The one-process run with one thread, as torchrun gives each of its processes
    (``OMP_NUM_THREADS=1``): PyTorch does not promise the same bits for another thread count."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(_cli(*args), cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.returncode


def test_two_gloo_processes_give_the_one_process_results(bundle_dir, tmp_path):
    """torchrun with 2 CPU processes (gloo): the same store bytes, and the same evaluation table."""
    args = ["explain", "localisation:300", "--bundle", str(bundle_dir), "--shard-size", "40", "--workers", "0"]
    two = _torchrun(*args, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 processes" in two.stdout
    _one_thread(*args, "--out", str(tmp_path / "one"))
    assert _files(tmp_path / "two") == _files(tmp_path / "one")

    for name, extra in (("all", ["--images", "24", "--all-images"]), ("correct", ["--images", "6"])):
        # correct only: one process stops at the batch holding the 6th correct image, each of the two
        # ranks computes whole shards; the first 6 correct images, and the candidates, are the same
        evaluate = ["evaluate", "--bundle", str(bundle_dir), "--data", "digits", "--steps", "3",
                    "--shard-size", "5", "--batch-size", "4", *extra]  # fmt: skip
        two = _torchrun(*evaluate, "--out", str(tmp_path / f"{name}2"))
        assert two.returncode == 0, two.stderr[-3000:]
        _one_thread(*evaluate, "--out", str(tmp_path / f"{name}1"))
        one_json, two_json = (json.loads((tmp_path / f"{name}{k}" / "evaluation.json").read_text()) for k in (1, 2))
        assert (one_json.pop("processes"), two_json.pop("processes")) == (1, 2)
        for summary in (one_json, two_json):
            summary.pop("seconds"), summary.pop("files")
        assert one_json == two_json and one_json["images"] == int(extra[1])
        csv1, csv2 = ((tmp_path / f"{name}{k}" / "evaluation.csv").read_bytes() for k in (1, 2))
        assert csv1 == csv2
    assert one_json["candidates"] > 6  # the early stop and the cut at the last kept image were exercised


def _png_folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        (root / str(i % 3)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / str(i % 3) / f"{i:02d}.png")
    return root


def test_bad_sources_and_unreadable_images(bundle_dir, tmp_path, capsys, monkeypatch):
    b = ["--bundle", str(bundle_dir)]
    assert main(["explain", f"folder:{tmp_path / 'nope'}", *b, "--out", str(tmp_path / "o1")]) == 2
    assert f"folder {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    assert main(["explain", f"files:{tmp_path / 'list.txt'}", *b, "--out", str(tmp_path / "o2")]) == 2
    assert "file list" in capsys.readouterr().err
    assert main(["explain", "digits", str(tmp_path), *b, "--out", str(tmp_path / "o3")]) == 2
    assert "must be the only SOURCE" in capsys.readouterr().err

    folder = _png_folder(tmp_path / "imgs", 14)  # more than 12 images: a store, not a figure
    (folder / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    assert main(["explain", str(folder), *b, "--out", str(tmp_path / "ok"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "14 images explained" in out and "skipped" in out and "broken.png" in out
    store = MapStore(tmp_path / "ok")
    assert len(store) == 14 and [s[0] for s in store.skipped] == [str(folder / "1" / "broken.png")]
    assert "cannot read" in store.skipped[0][1]
    assert main(["explain", f"folder:{folder}", *b, "--out", str(tmp_path / "strict"), "--strict"]) == 2
    assert "1/broken.png" in capsys.readouterr().err and (tmp_path / "strict" / "store.json").is_file()
    (folder / "1" / "broken.png").unlink()  # the fix: no shard was finished, so the run begins again
    assert main(["explain", f"folder:{folder}", *b, "--out", str(tmp_path / "strict"), "--strict"]) == 0
    assert len(MapStore(tmp_path / "strict")) == 14
    (folder / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    broken = tmp_path / "broken"
    for i in range(13):
        (broken / f"{i}.png").parent.mkdir(exist_ok=True)
        (broken / f"{i}.png").write_bytes(b"not a png")
    assert main(["explain", str(broken), *b, "--out", str(tmp_path / "none")]) == 2
    assert "none of the 13 images could be read" in capsys.readouterr().err
    assert main(["explain", "folder:", *b, "--out", str(tmp_path / "o4")]) == 2
    assert "folder: needs a path" in capsys.readouterr().err
    assert main(["explain", f"fodler:{folder}", *b, "--out", str(tmp_path / "o7")]) == 2
    assert "'fodler' is not a source kind" in capsys.readouterr().err
    (tmp_path / "digits").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "digits", *b, "--out", str(tmp_path / "o5")]) == 2
    assert "both a data source and a path" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["explain", "localisation:3", *b, "--out", str(tmp_path / "o6")]) == 2
    assert "add --distributed" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")

    listing = tmp_path / "list.txt"
    listing.write_text("# two images\nimgs/0/00.png\n\nimgs/1/01.png\n")
    assert main(["explain", f"files:{listing}", *b, "--out", str(tmp_path / "listed")]) == 0
    assert MapStore(tmp_path / "listed").ids == ["imgs/0/00.png", "imgs/1/01.png"]
    assert main(["explain", f"files:{listing}", *b, "--out", str(tmp_path / "listed"), "--float16"]) == 2
    assert "holds a store of another run (it differs in dtype)" in capsys.readouterr().err
    with pytest.raises(CadcamInputError, match="not a map store"):
        MapStore(tmp_path)

    labelled = tmp_path / "labelled"  # evaluate scores a folder's held-out test split: test/ here
    for split, cls, i in [(split, cls, i) for split in ("train", "test") for cls in ("1", "2") for i in range(3)]:
        (labelled / split / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(labelled / split / cls / f"{i}.png")
    ev = ["evaluate", *b, "--steps", "2", "--all-images", "--images", "all"]
    assert main([*ev, "--data", f"folder:{labelled}", "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["images"] == 6
    assert main(["explain", f"folder:{labelled}", *b, "--out", str(tmp_path / "ex"), "--store"]) == 0
    explained = MapStore(tmp_path / "ex")  # explain takes every image, labelled by its class folder
    assert len(explained) == 12 and sorted(set(explained.index["label"])) == ["1", "2"]
    assert main([*ev, "--data", f"files:{listing}", "--out", str(tmp_path / "ev2")]) == 2
    assert "evaluate needs labelled images" in capsys.readouterr().err
    assert main([*ev, "--data", str(labelled / "test"), "--out", str(tmp_path / "ev3")]) == 2
    assert f"write --data folder:{labelled / 'test'}" in capsys.readouterr().err
    few = ["evaluate", *b, "--steps", "2", "--all-images", "--images", "9", "--data", f"folder:{labelled}"]
    assert main([*few, "--out", str(tmp_path / "ev4")]) == 0
    assert "9 images were asked for; the source held only 6" in capsys.readouterr().out
    summary = json.loads((tmp_path / "ev4" / "evaluation.json").read_text())
    assert (summary["asked"], summary["images"], summary["candidates"]) == (9, 6, 6)


def test_the_dataset_bench_measures_every_row(bundle_dir):
    """`cadcam bench-dataset` on a small source: every row is measured (no timing is asserted)."""
    from cadcam_numeric.bench.dataset import dataset_markdown, run_dataset_bench

    result = run_dataset_bench(
        bundle_dir, sizes=(40, 80), workers=0, evaluate_images=16, steps=4, repeats=1, log=lambda m: None
    )
    measures = [r["measure"] for r in result.rows]
    assert measures == [
        "backbone forward only (same DataLoader)",
        "explain all maps + write the store, 1 process",
        "explain all maps + write the store, 2 processes",
        "peak RSS, explain + store of 40 images",
        "peak RSS, explain + store of 80 images",
        "deletion + insertion, one map, 16 images, 4 steps",
    ], result.notes
    assert all(float(r["value"].split()[0]) > 0 for r in result.rows)
    assert "× 9 forwards" in dataset_markdown(result)  # 2·4 + 1 forward passes: the floor at 4 steps
