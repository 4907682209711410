"""``cadcam verify [SPEC]``: every generated function (or a spec's own code and chain) against PyTorch
autograd on random float64 cases; exit 1 when one differs beyond its tolerance."""

from __future__ import annotations

import argparse
import json

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.cli.rows import print_rows

HELP = "check the generated code (or a spec's) against PyTorch autograd"
NAME = "verify"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    p.add_argument("spec", nargs="?", default=None, help="TOML architecture spec: check its own code and chain")
    options.add(p, "derived", "cases", "seed", "json")
    p.set_defaults(func=run)


def _rows(args: argparse.Namespace) -> list:
    from cadcam_numeric.spec.architecture import load_architecture_file, read_spec_file
    from cadcam_numeric.spec.code import module_from_source, render_custom_source, verify_custom
    from cadcam_numeric.verification.catalogue import verify_all

    if not args.spec:
        return verify_all(cases=args.cases, seed=args.seed)
    if args.derived:  # the generated module in DIR, refused unless it regenerates byte for byte
        arch = load_architecture_file(args.spec, args.derived)
        spec, code = arch.spec, arch.code
    else:  # nothing derived yet: check what `cadcam derive SPEC` would write
        _, spec = read_spec_file(args.spec)
        code = module_from_source(render_custom_source(spec), spec.sha256())
    return verify_custom(spec, code, cases=args.cases, seed=args.seed)


def run(args: argparse.Namespace) -> Outcome:
    from cadcam_numeric.verification.errors import ATOL, RTOL

    rows = _rows(args)
    if args.json:
        doc = {"rtol": RTOL, "atol": ATOL, "seed": args.seed, "rows": [r.to_json() for r in rows]}
        print(json.dumps(doc, indent=2))
    else:
        print_rows(rows, RTOL, ATOL)
    return Outcome.DONE if all(r.passed for r in rows) else Outcome.CHECK_FAILED
