"""``cadcam report``: the LaTeX/PDF derivation report — architecture, every block Jacobian and its proof,
Theorems 1–2, the autograd verification table and, with ``--bundle``, the fitted model's Table 3, figures
and evaluation. The spec is ``--spec``, else the bundle's, else the paper's
(``derivations/examples/paper_head.toml``). Exit 3 when LaTeX is missing (the ``.tex`` is written)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.errors import CadcamInputError

HELP = "the LaTeX/PDF derivation report (exit 3 when LaTeX is missing: .tex only)"
NAME = "report"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    options.add(p, "out", "spec", "derived", "bundle", "cases", required=("out",))
    p.add_argument("--no-verify", action="store_true", help="leave the autograd verification table out")
    p.set_defaults(func=run)


def _command_line(args: argparse.Namespace) -> str:
    """The command that rebuilds this report (printed in it)."""
    parts = ["cadcam report"]
    parts += [
        f"--{flag} {value}"
        for flag, value in (("spec", args.spec), ("derived", args.derived), ("bundle", args.bundle))
        if value
    ]
    return " ".join([*parts, f"--out {args.out}"])


def run(args: argparse.Namespace) -> Outcome:
    try:
        from reports.build import build_report
        from reports.view import view_of_architecture
    except ImportError as exc:
        raise CadcamInputError(f"needs the derivation dependencies (sympy, jinja2): {exc}") from exc
    from cadcam_numeric.pipeline.bundle import read_bundle_document
    from cadcam_numeric.spec.architecture import load_architecture_file

    if args.bundle and args.spec:  # without --spec the report reads (and validates) the bundle itself
        read_bundle_document(Path(args.bundle))
    view = None
    if args.spec:
        arch = load_architecture_file(args.spec, args.derived)
        view = view_of_architecture(arch.spec, arch.code)
    build = build_report(
        Path(args.out),
        view,
        Path(args.bundle) if args.bundle else None,
        verify=not args.no_verify,
        cases=args.cases,
        command=_command_line(args),
        derived=Path(args.derived) if args.derived else None,
    )
    print(build.message)
    return Outcome.DONE if build.pdf is not None else Outcome.TEX_ONLY
