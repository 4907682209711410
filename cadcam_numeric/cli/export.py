"""``cadcam export``: a bundle's whole model — backbone and closed-form maps, no autograd — as one ONNX or
torch.export file, loaded back and run on new images; exit 1 (nothing kept) when it differs from eager."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome

HELP = "a bundle's whole model (backbone + closed-form maps) as one ONNX or torch.export file, checked"
NAME = "export"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    options.add(p, "bundle", "out", required=("bundle", "out"), dests={"out": "out_file"})
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx", help="default: %(default)s")
    p.add_argument(
        "--classes",
        choices=("predicted", "all"),
        default="predicted",
        help="maps of the predicted class, or of every class (default: %(default)s)",
    )
    options.add(p, "method", "svm")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> Outcome:
    from cadcam_numeric.pipeline.export import CHECK_BATCH, export_bundle, tolerance

    check = export_bundle(
        Path(args.bundle), Path(args.out_file), fmt=args.format, classes=args.classes, method=args.method, svm=args.svm
    )
    ratio = {k: d / tolerance(k) for k, d in check.differences.items()}
    worst = max(ratio, key=ratio.get)
    figure = (
        f"the largest difference relative to its tolerance is {worst}'s, {check.differences[worst]:.3g} of "
        f"max(1, |value|) against {tolerance(worst):g}"
    )
    if not check.ok:
        print(
            f"cadcam export: the written file differs from the eager model ({figure}); nothing was kept",
            file=sys.stderr,
        )
        return Outcome.CHECK_FAILED
    print(
        f"{check.path} and {check.description}: loaded back and run on {CHECK_BATCH} new images, every output "
        f"within its tolerance of eager ({figure})"
    )
    return Outcome.DONE
