"""``cadcam explain``: maps from a bundle. Up to 12 image files or a small folder give a figure
(``maps.png``) and the maps (``maps.npz``); more images, or a data source, give a map store — shards and
an index, resumable, unreadable images skipped and listed (``--strict`` stops at the first);
``torchrun -m cadcam_numeric explain ... --distributed`` spreads a store over many processes."""

from __future__ import annotations

import argparse
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.errors import CadcamInputError

HELP = "maps for image files, folders or a whole data source from a bundle"
NAME = "explain"
#: skipped images printed; the rest are in skipped.csv
SHOWN_SKIPPED = 20


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    p.add_argument(
        "images",
        nargs="+",
        metavar="SOURCE",
        help="image files and/or folders, or one data source: folder:PATH, files:LIST.txt, digits, mnist:ROOT, "
        "fashion-mnist:ROOT, cifar10:ROOT, medmnist:FILE.npz, localisation[:N]",
    )
    options.add(p, "bundle", "out", required=("bundle", "out"))
    p.add_argument("--store", action="store_true", help="write a map store even for 12 images or fewer")
    p.add_argument("--float16", action="store_true", help="store the maps as float16 (half the disk)")
    p.add_argument("--strict", action="store_true", help="stop at an unreadable image (default: skip and list it)")
    options.add(
        p,
        *("method", "svm", "shard_size", "batch_size", "workers", "distributed", "seed"),
        *("device", "weights", "spec", "derived"),
        shard_size=1024,
        batch_size=32,
    )
    p.set_defaults(func=run)


def _print_store_run(run, threads: str) -> None:
    print(
        f"{run.images} images explained into {run.out} ({run.computed} shards computed, {run.kept} kept from "
        f"an earlier run, {run.world} process{'es' if run.world > 1 else ''} with {threads}, {run.seconds:.1f} s, "
        f"{run.stream_seconds:.3f} s of it streaming)"
    )
    for i, reason in run.skipped[:SHOWN_SKIPPED]:
        print(f"skipped {i}: {reason}")
    if len(run.skipped) > SHOWN_SKIPPED:
        print(f"… and {len(run.skipped) - SHOWN_SKIPPED} more; all are listed in {run.out / 'skipped.csv'}")
    for name, path in run.files.items():
        print(f"{name:8} {path}")
    print(f"read it with: from cadcam_numeric.pipeline import MapStore; MapStore({str(run.out)!r})")


def run(args: argparse.Namespace) -> Outcome:
    from cadcam_numeric.devices import use_cpu_threads
    from cadcam_numeric.pipeline.explain_cli import FigureRun, explain_sources

    threads = use_cpu_threads()

    common = {
        "svm": args.svm,
        "method": args.method,
        "weights": args.weights,
        "device": args.device,
        "derived": args.derived,
        "spec": args.spec,
    }
    store = {
        "shard_size": args.shard_size,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "float16": args.float16,
        "strict": args.strict,
        "distributed": args.distributed,
        "seed": int(args.seed),
    }
    result = explain_sources(
        Path(args.bundle), args.images, Path(args.out), force_store=args.store, store=store, **common
    )
    if isinstance(result, FigureRun):
        for image, reason in result.skipped:
            print(f"skipped {image}: {reason}")
        for name, path in result.files.items():
            print(f"{name:6} {path}")
        return Outcome.DONE
    if result.rank == 0:
        _print_store_run(result, threads)
    if result.images == 0:
        raise CadcamInputError(f"images: none of the {len(result.skipped)} images could be read (see skipped.csv)")
    return Outcome.DONE
