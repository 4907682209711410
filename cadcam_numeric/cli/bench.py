"""``cadcam bench``: explain against the backbone alone, autograd, torch.func and pytorch-grad-cam on
VGG16 at 200 px (``--heads-only``: the cost of each transform and classifier block). Timings on a shared
machine are noisy: compare ratios measured in one run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.errors import CadcamInputError

HELP = "explain vs the backbone alone, autograd, torch.func and pytorch-grad-cam"
NAME = "bench"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    p.add_argument("--quick", action="store_true", help="batches 1 and 2, one timed run: under 2 min on 2 cores")
    p.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8,32; +256 on a GPU)")
    p.add_argument(
        "--repeats", type=options.positive_int, default=None, help="timed runs after a warm-up (default 3; quick 1)"
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="default: %(default)s")
    p.add_argument(
        "--heads-only",
        action="store_true",
        help="only the backbone and the head variants (the cost of each transform/classifier block)",
    )
    p.add_argument(
        "--model",
        default="vgg16",
        help="vgg16 (default: the paper's pipeline, every route) or a timm ViT — vit_small_patch16_224, "
        "vit_tiny_patch16_224, deit_small_patch16_224 — at 224 px (quick: 64): forward, explain, a PCA → SVC "
        "probe and pytorch-grad-cam (needs timm)",
    )
    options.add(p, "device", "no_report", "out", "json")
    p.set_defaults(func=run)


def parse_batches(text: str | None) -> tuple[int, ...] | None:
    """``--batches 1,8,32`` -> (1, 8, 32); None when not given."""
    if not text:
        return None
    try:
        batches = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise CadcamInputError(f"--batches: expected comma-separated integers, got {text!r}") from None
    if min(batches) < 1:
        raise CadcamInputError(f"--batches: expected positive integers, got {text!r}")
    return batches


def write_results(out: str | None, stem: str, doc: dict, markdown: str) -> None:
    """``stem.json`` and ``stem.md`` under ``out`` (each whole or not at all), when ``--out`` was given."""
    from cadcam_numeric.atomic import atomic_write_text

    if out:
        atomic_write_text(Path(out) / f"{stem}.json", json.dumps(doc, indent=2))
        atomic_write_text(Path(out) / f"{stem}.md", markdown)
        print(f"wrote {Path(out) / f'{stem}.json'} and {Path(out) / f'{stem}.md'}", file=sys.stderr)


def _report_builder(out: Path, verify: bool) -> object:
    """The report build the bench times (the CLI is where this package and ``reports`` meet)."""
    from reports.build import build_report

    return build_report(out, verify=verify, cases=20 if verify else 5)


def run_vit(args: argparse.Namespace) -> Outcome:
    """``--model`` a ViT: the routes of :mod:`cadcam_numeric.bench.vit`."""
    if args.heads_only or args.dtype != "float32":
        raise CadcamInputError("--model: a ViT is timed in float32 end to end; --heads-only and --dtype are for vgg16")
    from cadcam_numeric.bench.vit import ViTBenchConfig, run_vit_bench, vit_markdown

    config = ViTBenchConfig(
        model=args.model,
        batches=parse_batches(args.batches),
        repeats=args.repeats if args.repeats is not None else (1 if args.quick else 3),
        quick=args.quick,
        device=args.device,
    )
    result = run_vit_bench(config, log=lambda m: print(m, file=sys.stderr))
    markdown = vit_markdown(result)
    write_results(args.out, "bench_vit", result.to_json(), markdown)
    print(json.dumps(result.to_json(), indent=2) if args.json else markdown)
    return Outcome.DONE


def run(args: argparse.Namespace) -> Outcome:
    if args.model != "vgg16":
        return run_vit(args)
    try:
        from cadcam_numeric.bench.suite import BenchConfig, run_suite, to_markdown
    except ImportError as exc:  # pytorch-grad-cam is the peer the bench times against
        raise CadcamInputError(
            f"bench: needs the test extra ({exc.name or exc}); install it with pip install -e '.[test]'"
        ) from exc
    config = BenchConfig(
        batches=parse_batches(args.batches),
        repeats=args.repeats if args.repeats is not None else (1 if args.quick else 3),
        quick=args.quick,
        device=args.device,
        dtype=args.dtype,
        with_report=not args.no_report,
        heads_only=args.heads_only,
    )
    result = run_suite(config, log=lambda m: print(m, file=sys.stderr), report_builder=_report_builder)
    markdown = to_markdown(result)
    write_results(args.out, "bench", result.to_json(), markdown)
    print(json.dumps(result.to_json(), indent=2) if args.json else markdown)
    return Outcome.DONE
