"""``cadcam demo``: the whole pipeline on scikit-learn's embedded 8×8 digits (no download) — train the
CNN, fit PCA and the SVMs, write the bundle, figures and Table 3 — then the derivation report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.cli.options import add
from cadcam_numeric.cli.pipeline_run import add_pipeline_options, run_pipeline_command

HELP = "the whole pipeline on the embedded digits (no download), then the report"
NAME = "demo"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    add_pipeline_options(p)
    add(p, "no_report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> Outcome:
    run_pipeline_command(args, "digits")
    if args.no_report:
        return Outcome.DONE
    try:
        from reports.build import build_report
    except ImportError as exc:  # SymPy/Jinja2 are dependencies; a broken install still keeps the pipeline's output
        print(f"report skipped: {exc}", file=sys.stderr)
        return Outcome.DONE
    out = Path(args.out)
    command = f"cadcam report --bundle {out / 'bundle'} --out {out / 'report'}"
    if args.spec and args.derived:
        command += f" --derived {args.derived}"
    build = build_report(out / "report", bundle=out / "bundle", command=command, derived=args.derived)
    print(f"\nreport: {build.message}")
    return Outcome.DONE
