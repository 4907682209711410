"""``python -m derivations {generate,check,prove,theorems}``.

generate   write cadcam_numeric/generated/ from the catalogue (or --out DIR)
check      regenerate into a temporary directory; exit 1 with a unified diff on any drift
prove      run every block-Jacobian and Table 2 proof; exit 1 if one does not hold
theorems   Theorems 1–2, the erratum and the kernel extensions (--json for machine output)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import sympy as sp


def _generate(args: argparse.Namespace) -> int:
    from derivations.codegen.render import catalogue_hash, write

    start = time.perf_counter()
    paths = write(Path(args.out))
    for path in paths:
        print(f"wrote {path}")
    print(f"catalogue sha256 {catalogue_hash()[:16]}…, SymPy {sp.__version__}, {time.perf_counter() - start:.1f} s")
    return 0


def _check(args: argparse.Namespace) -> int:
    from derivations.codegen.render import check

    start = time.perf_counter()
    diff = check(Path(args.dir))
    if diff:
        sys.stdout.write(diff)
        print(
            f"\nderivations check: {args.dir} differs from a fresh generation. Generated files are "
            "never edited by hand: change the catalogue in derivations/ and run "
            "`python -m derivations generate`.",
            file=sys.stderr,
        )
        return 1
    print(f"derivations check: generated code is in sync ({time.perf_counter() - start:.1f} s)")
    return 0


def _prove(args: argparse.Namespace) -> int:
    from derivations.prove_all import all_proofs

    results = []
    for result in all_proofs():
        results.append(result)
        if not args.json:
            mark = "proved" if result.holds else "FAILED"
            print(f"{mark:7} {result.seconds:6.2f} s  {result.name:40} {result.method}")
    failed = [r for r in results if not r.holds]
    if args.json:
        print(json.dumps({"sympy_version": sp.__version__, "proofs": [r.to_json() for r in results]}, indent=2))
    else:
        print(f"{len(results) - len(failed)} of {len(results)} proofs hold")
    return 1 if failed else 0


def _theorems(args: argparse.Namespace) -> int:
    from derivations.theorems import all_theorems

    theorems = all_theorems()
    if args.json:
        doc = {
            "sympy_version": sp.__version__,
            # Parse the result strings with these as local symbols: plain sympify reads
            # "gamma" as SymPy's gamma function.
            "symbols": {
                "gamma": "positive real (kernel parameter)",
                "d": "nonnegative real, d = ||p_i - p||",
                "u": "real, u = p_i^T p",
                "r": "real (coef0)",
                "sigma": "positive real, ||p_i||",
                "n": "nonnegative integer, degree = n + 2",
            },
            "theorems": [t.to_json() for t in theorems],
        }
        print(json.dumps(doc, indent=2))
    else:
        for th in theorems:
            print(f"{'proved' if th.holds else 'FAILED'}  {th.title}\n    {th.statement}")
            for key, value in th.results.items():
                print(f"      {key} = {value}")
    return 0 if all(t.holds for t in theorems) else 1


def main(argv: list[str] | None = None) -> int:
    from derivations.codegen.render import DEFAULT_OUTPUT

    parser = argparse.ArgumentParser(
        prog="python -m derivations", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the generated numeric code")
    gen.add_argument("--out", default=str(DEFAULT_OUTPUT), help="output directory (default: %(default)s)")
    gen.set_defaults(func=_generate)
    chk = sub.add_parser("check", help="fail with a diff when committed generated code drifts")
    chk.add_argument("--dir", default=str(DEFAULT_OUTPUT), help="directory to check (default: %(default)s)")
    chk.set_defaults(func=_check)
    prv = sub.add_parser("prove", help="run every symbolic block and Table 2 proof")
    prv.add_argument("--json", action="store_true", help="print JSON instead of a table")
    prv.set_defaults(func=_prove)
    thm = sub.add_parser("theorems", help="prove Theorems 1-2 and the kernel extensions")
    thm.add_argument("--json", action="store_true", help="print JSON instead of text")
    thm.set_defaults(func=_theorems)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
