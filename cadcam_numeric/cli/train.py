"""``cadcam train``: the pipeline of ``cadcam demo`` on a data source of yours (a folder of class
sub-folders, MNIST, Fashion-MNIST, CIFAR-10 or a MedMNIST ``.npz``), without the report."""

from __future__ import annotations

import argparse

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.cli.options import add
from cadcam_numeric.cli.pipeline_run import add_pipeline_options, run_pipeline_command

HELP = "the whole pipeline on a data source"
NAME = "train"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    add(p, "data", "download", "image_size", data="digits")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> Outcome:
    run_pipeline_command(args, args.data)
    return Outcome.DONE
