"""``cadcam accepted``: the heads, transforms and classifiers ``explain`` accepts, as a Markdown table."""

from __future__ import annotations

import argparse

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome

HELP = "the heads, transforms and classifiers explain accepts (Markdown table)"
NAME = "accepted"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> Outcome:
    from cadcam_numeric.engine.accepted import accepted_table

    print(accepted_table(), end="")
    return Outcome.DONE
