"""``cadcam evaluate``: every map family of a bundle scored on a data source — deletion and insertion AUC,
ROAD, Average Drop / Increase in Confidence and, where the source has boxes (the default ``localisation``
set: digits in cluttered canvases), the pointing game and IoU — beside a random-map and a centre-prior
baseline, written as a method × metric table (Markdown, CSV, JSON) with 95 % bootstrap intervals and
paired Wilcoxon tests of each class map against Grad-CAM, and curves."""

from __future__ import annotations

import argparse
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome

HELP = "method x metric table (deletion/insertion, ROAD, drop/increase, pointing game, IoU) with baselines"
NAME = "evaluate"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    options.add(p, "bundle", "out", required=("bundle", "out"))
    options.add(p, "data", data="localisation")
    p.add_argument(
        "--images",
        "--n",
        dest="n",
        type=options.count_or_all,
        default=100,
        help="number of images, or `all` for every image of the source (default: %(default)s; under torchrun "
        "write --images: torchrun reads --n as its own --nnodes)",
    )
    p.add_argument(
        "--steps", type=options.positive_int, default=16, help="deletion/insertion steps (default: %(default)s)"
    )
    p.add_argument(
        "--all-images",
        action="store_true",
        help="keep misclassified images too (default: correct predictions only, as Decom-CAM)",
    )
    p.add_argument(
        "--target",
        type=options.non_negative_int,
        default=None,
        help="explain this CNN class in every image (default: predicted)",
    )
    p.add_argument("--svm-target", default=None, help="explain this SVM label in every image (default: predicted)")
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated: deletion, insertion, road, drop-increase, pointing, localisation (default: all "
        "but road, which makes an evaluation about ten times longer; pointing and localisation where the source "
        "has boxes). Every table also gets a random-map and a "
        "centre-Gaussian row, 95%% bootstrap intervals and Wilcoxon tests against Grad-CAM "
        "(evaluation_statistics.md)",
    )
    options.add(
        p,
        *("svm", "batch_size", "shard_size", "workers", "distributed", "seed", "device", "weights", "derived"),
        batch_size=128,
        shard_size=256,
        workers=0,
    )
    p.set_defaults(func=run)


def _print_summary(summary: dict, threads: str) -> None:
    kept = "correctly classified images" if summary["correct_only"] else "images"
    print(
        f"{summary['images']} {kept} of {summary['data']} (CNN accuracy {summary['cnn_accuracy']:.3f} "
        f"over {summary['candidates']} candidates), {summary['seconds']:.0f} s with {threads}\n"
    )
    if summary["asked"] != "all" and summary["images"] < summary["asked"]:
        print(f"note: {summary['asked']} images were asked for; the source held only {summary['images']}\n")
    for warning in summary["warnings"]:
        print(f"{warning}\n")
    for skipped in summary["skipped"]:
        print(f"skipped {skipped['id']}: {skipped['reason']}")
    print(Path(summary["files"]["md"]).read_text())
    for name, path in summary["files"].items():
        print(f"{name:7} {path}")


def run(args: argparse.Namespace) -> Outcome:
    from cadcam_numeric.devices import use_cpu_threads
    from cadcam_numeric.engine.targets import PREDICTED, ClassTarget, SVMClassTarget
    from cadcam_numeric.pipeline.evaluate import run_evaluation

    threads = use_cpu_threads()

    summary = run_evaluation(
        Path(args.bundle),
        Path(args.out),
        data=args.data,
        n=args.n,
        steps=args.steps,
        svm=args.svm,
        seed=int(args.seed),
        device=args.device,
        weights=args.weights,
        correct_only=not args.all_images,
        derived=args.derived,
        targets=None if args.target is None else ClassTarget(args.target),
        svm_targets=PREDICTED if args.svm_target is None else SVMClassTarget(args.svm_target),  # as --help says
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        workers=args.workers,
        distributed=args.distributed,
        metrics=args.metrics,
    )
    if "files" in summary:  # rank 0 (or the only process) writes and prints the results
        _print_summary(summary, threads)
    return Outcome.DONE
