"""The ``cadcam`` command line: one module per command (its ``add_parser`` and ``run`` side by side),
options defined once (:mod:`.options`), and one error boundary (:mod:`.boundary`).

Building the parser imports no torch: ``cadcam --help`` answers at once, and each command loads what it
needs when it runs.

cadcam demo           the whole pipeline on the embedded digits, then the derivation report
cadcam train          the same pipeline on a data source of yours
cadcam explain        maps for image files, folders or a data source from a bundle
cadcam evaluate       deletion/insertion AUC, pointing game and IoU for every map family
cadcam report         the LaTeX/PDF derivation report
cadcam derive         prove every block Jacobian and theorem; check the installed generated code
cadcam verify         every generated function against PyTorch autograd
cadcam export         a bundle's whole model as one ONNX / torch.export file, loaded back and checked
cadcam accepted       what explain accepts
cadcam bench          timings against the backbone, autograd and pytorch-grad-cam
cadcam bench-dataset  explain-and-store throughput over whole image sets
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from cadcam_numeric.cli import (
    accepted,
    bench,
    bench_dataset,
    demo,
    derive,
    evaluate,
    explain,
    export,
    report,
    train,
    verify,
)
from cadcam_numeric.cli.boundary import run_command, sigterm_as_interrupt

__all__ = ["COMMANDS", "build_parser", "main"]

#: the sub-commands, in the order ``cadcam --help`` lists them
COMMANDS = (demo, train, explain, evaluate, report, derive, verify, export, accepted, bench, bench_dataset)


class OneSentenceParser(argparse.ArgumentParser):
    """An argument parser whose refusals are one sentence naming the argument (exit 2), as the error
    boundary's are, instead of the usage block and then the sentence."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``cadcam`` argument parser: every command and option."""
    parser = OneSentenceParser(
        prog="cadcam",
        description="Class activation maps of CNNs whose heads hold PCA, SVMs and other scikit-learn classifiers "
        "(PCA-Grad-CAM, SVM-Grad-CAM, Grad-CAM, Eigen-CAM, Decom-CAM), in closed form: derived by SymPy, "
        "generated, and verified against autograd.",
        epilog="`cadcam COMMAND --help` describes a command. Exit status: 0 done; 1 a check failed, or an internal "
        "error (--debug shows it); 2 bad input; 3 report without PDF (no LaTeX); 130 interrupted, 143 terminated.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="on an unexpected error, show the Python traceback instead of one line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Bad input → exit 2 and one sentence naming the argument; an output directory the
    command created is removed again when the command fails (:func:`.boundary.run_command`)."""
    args = build_parser().parse_args(argv)
    from derivations.budget import shared_budget  # SymPy-free

    with sigterm_as_interrupt(), shared_budget():  # one SymPy time budget for the whole command
        return run_command(args)
