"""The ``cadcam`` command line.

cadcam derive   prove every block Jacobian and theorem, regenerate the numeric code, check drift
cadcam verify   check every generated function against PyTorch autograd (table or --json)
"""

from __future__ import annotations

import argparse
import json
import sys
import time

__all__ = ["main"]


def _derive(args: argparse.Namespace) -> int:
    try:
        from derivations.codegen.render import DEFAULT_OUTPUT, check, write
        from derivations.prove_all import all_proofs
        from derivations.theorems import all_theorems
    except ImportError as exc:  # SymPy / Jinja2 are only needed here
        print(f"cadcam derive needs the derivation dependencies (sympy, jinja2, ruff): {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    proofs = list(all_proofs())
    bad = [p.name for p in proofs if not p.holds]
    print(
        f"proofs:   {len(proofs) - len(bad)}/{len(proofs)} block-Jacobian and Table 2 proofs hold "
        f"({time.perf_counter() - start:.1f} s)"
    )
    theorems = all_theorems()
    print(f"theorems: {sum(t.holds for t in theorems)}/{len(theorems)} proved ({', '.join(t.key for t in theorems)})")
    if bad or not all(t.holds for t in theorems):
        print(f"not proved: {bad + [t.key for t in theorems if not t.holds]}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    for path in write(DEFAULT_OUTPUT):
        print(f"generated {path}")
    diff = check(DEFAULT_OUTPUT)
    print(f"generate + check: {'in sync' if not diff else 'DRIFT'} ({time.perf_counter() - t0:.1f} s)")
    return 0 if not diff else 1


def _verify(args: argparse.Namespace) -> int:
    from cadcam_numeric.verify import ATOL, RTOL, verify_all

    rows = verify_all(cases=args.cases, seed=args.seed)
    if args.json:
        print(
            json.dumps({"rtol": RTOL, "atol": ATOL, "seed": args.seed, "rows": [r.to_json() for r in rows]}, indent=2)
        )
    else:
        print(f"{'function':52} {'reference':38} {'cases':>5} {'max abs':>9} {'max rel':>9}  result")
        for r in rows:
            print(
                f"{r.function:52} {r.reference:38} {r.cases:5d} {r.max_abs_error:9.1e} {r.max_rel_error:9.1e}  "
                f"{'pass' if r.passed else 'FAIL'}"
            )
        failed = sum(not r.passed for r in rows)
        print(f"{len(rows) - failed} passed, {failed} failed (float64, rtol {RTOL:g}, atol {ATOL:g})")
    return 0 if all(r.passed for r in rows) else 1


def _bench(args: argparse.Namespace) -> int:
    import torch

    from cadcam_numeric.bench import run_benchmark

    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    rows = run_benchmark(batch=args.batch, repeats=args.repeats, device=args.device, dtype=dtype)
    if args.json:
        print(json.dumps([r.to_json() for r in rows], indent=2))
        return 0
    print(
        "| features | device | dtype | batch | closed form (ms) | autograd, 5 backwards (ms) | speed-up "
        "| max rel. diff |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.layout} | {r.device} | {r.dtype} | {r.batch} | {r.closed_form_ms:.1f} | {r.autograd_ms:.1f} | "
            f"{r.speedup:.1f}x | {r.max_weight_rel_diff:.1e} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cadcam", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    der = sub.add_parser("derive", help="prove, regenerate cadcam_numeric/generated and check it")
    der.set_defaults(func=_derive)
    ver = sub.add_parser("verify", help="check the generated code against PyTorch autograd")
    ver.add_argument("--json", action="store_true", help="machine-readable output")
    ver.add_argument("--cases", type=int, default=20, help="random cases per function (default: %(default)s)")
    ver.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    ver.set_defaults(func=_verify)
    ben = sub.add_parser("bench", help="closed-form maps vs autograd on VGG16-sized features")
    ben.add_argument("--batch", type=int, default=32, help="images per batch (default: %(default)s)")
    ben.add_argument("--repeats", type=int, default=5, help="timed runs, median reported (default: %(default)s)")
    ben.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ben.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ben.add_argument("--json", action="store_true", help="machine-readable output")
    ben.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
