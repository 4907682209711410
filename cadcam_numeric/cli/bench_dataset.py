"""``cadcam bench-dataset``: explain-and-store over whole sets of image files against the backbone alone,
on 1 and 2 processes, with peak memory, and deletion/insertion against its floor."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.bench import write_results
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.errors import CadcamInputError

HELP = "explain-and-store throughput over image files, 1 and 2 processes"
NAME = "bench-dataset"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    options.add(p, "bundle")
    p.add_argument("--sizes", default="1000,10000", help="the two image counts compared (default: %(default)s)")
    p.add_argument(
        "--evaluate-images", type=options.positive_int, default=1000, help="images of the deletion/insertion timing"
    )
    options.add(p, "workers", "device", "out", "json")
    p.set_defaults(func=run)


def parse_sizes(text: str) -> tuple[int, int]:
    """``--sizes 1000,10000`` -> (1000, 10000)."""
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise CadcamInputError(f"--sizes: expected two comma-separated integers, got {text!r}") from None
    if len(sizes) != 2 or min(sizes) < 1:
        raise CadcamInputError(f"--sizes: expected two positive integers (e.g. 1000,10000), got {text!r}")
    return sizes


def run(args: argparse.Namespace) -> Outcome:
    from cadcam_numeric.bench.dataset import dataset_markdown, run_dataset_bench
    from cadcam_numeric.devices import select_device

    sizes = parse_sizes(args.sizes)
    result = run_dataset_bench(
        Path(args.bundle) if args.bundle else None,
        sizes,
        device=str(select_device(args.device)),
        workers=args.workers,
        evaluate_images=args.evaluate_images,
        log=lambda m: print(m, file=sys.stderr),
    )
    markdown = dataset_markdown(result)
    write_results(args.out, "bench_dataset", result.to_json(), markdown)
    print(json.dumps(result.to_json(), indent=2) if args.json else markdown)
    return Outcome.DONE
