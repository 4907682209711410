"""``cadcam derive``: prove every block Jacobian and theorem, then check the installed
``cadcam_numeric/generated/`` against a fresh generation (exit 1 with the diff on drift; it never
writes there — only ``python -m derivations generate`` does). ``cadcam derive SPEC --out DIR``: derive,
prove, generate and verify a spec's own module into DIR."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.cli.boundary import Outcome
from cadcam_numeric.cli.rows import print_rows
from cadcam_numeric.errors import CadcamInputError

HELP = "prove, and check cadcam_numeric/generated against a fresh generation; or derive a TOML spec"
NAME = "derive"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP, description=options.described(__doc__))
    p.add_argument("spec", nargs="?", default=None, help="TOML architecture spec (then --out DIR is required)")
    options.add(p, "out", "cases")
    p.set_defaults(func=run)


def installed_generated_dir() -> Path:
    """The ``generated/`` folder of the cadcam_numeric that is imported: the code that actually runs."""
    import cadcam_numeric.generated

    return Path(cadcam_numeric.generated.__file__).resolve().parent


def _derive_spec(args: argparse.Namespace) -> Outcome:
    from cadcam_numeric.spec.derive import derive_spec
    from cadcam_numeric.verification.errors import ATOL, RTOL

    result = derive_spec(args.spec, args.out, cases=args.cases)
    d = result.derivation
    print(f"spec:     {d.spec.name}")
    activations = sorted(a.name for a in d.catalogue.activations) or "none"
    print(f"custom:   activations {activations}, kernels {sorted(k.name for k in d.catalogue.kernels) or 'none'}")
    seconds = result.timings["derive_and_prove_s"]
    print(f"proofs:   {sum(p.holds for p in d.proofs)}/{len(d.proofs)} hold ({seconds:.1f} s)")
    for p in d.proofs:
        if not p.holds:
            print(f"  NOT PROVED: {p.name}: {p.statement}", file=sys.stderr)
    if d.holds:
        print_rows(result.rows, RTOL, ATOL)
    if not result.ok:
        print("refused: nothing was written (a proof or a check failed)", file=sys.stderr)
        return Outcome.CHECK_FAILED
    for path in result.written:
        print(f"wrote {path}")
    return Outcome.DONE


def _proved() -> bool:
    from derivations.prove_all import all_proofs
    from derivations.theorems import all_theorems

    start = time.perf_counter()
    proofs = list(all_proofs())
    bad = [p.name for p in proofs if not p.holds]
    print(
        f"proofs:   {len(proofs) - len(bad)}/{len(proofs)} proofs hold (activation lemmas, block Jacobians, Table 2) "
        f"({time.perf_counter() - start:.1f} s)"
    )
    theorems = all_theorems()
    print(f"theorems: {sum(t.holds for t in theorems)}/{len(theorems)} proved ({', '.join(t.key for t in theorems)})")
    bad += [t.key for t in theorems if not t.holds]
    if bad:
        print(f"not proved: {bad}", file=sys.stderr)
    return not bad


def _in_sync() -> bool:
    from derivations.codegen.render import check

    start = time.perf_counter()
    target = installed_generated_dir()
    diff = check(target)  # regenerates in a temporary directory; writes nothing here
    if diff:
        sys.stdout.write(diff)
        print(
            f"check:    DRIFT: {target} differs from a fresh generation (diff above). Nothing was written: "
            "if the catalogue changed on purpose, run `python -m derivations generate` in a source checkout",
            file=sys.stderr,
        )
        return False
    print(f"check:    {target} is in sync with a fresh generation ({time.perf_counter() - start:.1f} s)")
    return True


def run(args: argparse.Namespace) -> Outcome:
    if args.spec:
        if not args.out:
            raise CadcamInputError("--out: cadcam derive SPEC needs an output directory (--out DIR)")
        return _derive_spec(args)
    if args.out:
        raise CadcamInputError(
            "--out: only with a SPEC (cadcam derive SPEC --out DIR); plain derive regenerates nothing"
        )
    try:
        import derivations.codegen.render  # noqa: F401  SymPy, Jinja2 and ruff are only needed here
    except ImportError as exc:
        raise CadcamInputError(f"cadcam derive needs the derivation dependencies (sympy, jinja2, ruff): {exc}") from exc
    return Outcome.DONE if _proved() and _in_sync() else Outcome.CHECK_FAILED
