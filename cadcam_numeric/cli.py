"""The ``cadcam`` command line.

cadcam demo      the whole pipeline on the embedded digits, then the derivation report
cadcam train     the same pipeline on a data source
cadcam explain   maps for image files from a bundle
cadcam evaluate  deletion/insertion AUC, pointing game and IoU for every map
cadcam report    the LaTeX/PDF derivation report
cadcam derive    prove every block Jacobian and theorem; check the installed generated code against a fresh
                 generation (exit 1 with the diff on drift; only `python -m derivations generate` writes)
cadcam verify    check every generated function against PyTorch autograd (table or --json)
cadcam bench     timings against the backbone, autograd and pytorch-grad-cam
cadcam export    a bundle's whole model as one ONNX / torch.export file, loaded back and checked
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cadcam_numeric.atomic import OutputClaim, claim_directory
from cadcam_numeric.engine.explain import METHOD_LABELS
from cadcam_numeric.errors import CadcamInputError

__all__ = ["build_parser", "main"]


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = _at_least(1)
non_negative_int = _at_least(0)


def _count_or_all(text: str) -> int | None:
    """``all`` (None: every image) or an integer >= 1."""
    if text.strip().lower() == "all":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'all', got {text!r}") from None


_count_or_all.__name__ = "integer >= 1 or 'all'"


def _print_rows(rows: list) -> None:
    from cadcam_numeric.verification.errors import ATOL, RTOL

    print(f"{'function':52} {'reference':42} {'cases':>5} {'max abs':>9} {'max rel':>9}  result")
    for r in rows:
        print(
            f"{r.function:52} {r.reference:42} {r.cases:5d} {r.max_abs_error:9.1e} {r.max_rel_error:9.1e}  "
            f"{'pass' if r.passed else 'FAIL'}"
        )
    failed = sum(not r.passed for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed (float64, rtol {RTOL:g}, atol {ATOL:g})")


def _derive_spec(args: argparse.Namespace) -> int:
    from cadcam_numeric.spec.derive import derive_spec

    if not args.out:
        raise CadcamInputError("--out: cadcam derive SPEC needs an output directory (--out DIR)")
    result = derive_spec(args.spec, args.out, cases=args.cases)
    d = result.derivation
    print(f"spec:     {d.spec.name}")
    print(
        f"custom:   activations {sorted(a.name for a in d.catalogue.activations) or 'none'}, "
        f"kernels {sorted(k.name for k in d.catalogue.kernels) or 'none'}"
    )
    held = sum(p.holds for p in d.proofs)
    print(f"proofs:   {held}/{len(d.proofs)} hold ({result.timings['derive_and_prove_s']:.1f} s)")
    for p in d.proofs:
        if not p.holds:
            print(f"  NOT PROVED: {p.name}: {p.statement}", file=sys.stderr)
    if d.holds:
        _print_rows(result.rows)
    if not result.ok:
        print("refused: nothing was written (a proof or a check failed)", file=sys.stderr)
        return 1
    for path in result.written:
        print(f"wrote {path}")
    return 0


def _derive(args: argparse.Namespace) -> int:
    if args.spec:
        return _derive_spec(args)
    if args.out:
        raise CadcamInputError(
            "--out: only with a SPEC (cadcam derive SPEC --out DIR); plain derive regenerates the package"
        )
    try:
        from derivations.codegen.render import check
        from derivations.prove_all import all_proofs
        from derivations.theorems import all_theorems
    except ImportError as exc:  # SymPy / Jinja2 are only needed here
        raise CadcamInputError(f"cadcam derive needs the derivation dependencies (sympy, jinja2, ruff): {exc}") from exc
    start = time.perf_counter()
    proofs = list(all_proofs())
    bad = [p.name for p in proofs if not p.holds]
    print(
        f"proofs:   {len(proofs) - len(bad)}/{len(proofs)} proofs hold (activation lemmas, block Jacobians, Table 2) "
        f"({time.perf_counter() - start:.1f} s)"
    )
    theorems = all_theorems()
    print(f"theorems: {sum(t.holds for t in theorems)}/{len(theorems)} proved ({', '.join(t.key for t in theorems)})")
    if bad or not all(t.holds for t in theorems):
        print(f"not proved: {bad + [t.key for t in theorems if not t.holds]}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    target = installed_generated_dir()
    diff = check(target)  # regenerates in a temporary directory; writes nothing here
    if diff:
        sys.stdout.write(diff)
        print(
            f"check:    DRIFT: {target} differs from a fresh generation (diff above). Nothing was written: "
            "if the catalogue changed on purpose, run `python -m derivations generate` in a source checkout",
            file=sys.stderr,
        )
        return 1
    print(f"check:    {target} is in sync with a fresh generation ({time.perf_counter() - t0:.1f} s)")
    return 0


def installed_generated_dir() -> Path:
    """The ``generated/`` folder of the cadcam_numeric that is imported: the code that actually runs."""
    import cadcam_numeric.generated

    return Path(cadcam_numeric.generated.__file__).resolve().parent


def _accepted(args: argparse.Namespace) -> int:
    from cadcam_numeric.engine.accepted import accepted_table

    print(accepted_table(), end="")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from cadcam_numeric.verification.catalogue import verify_all
    from cadcam_numeric.verification.errors import ATOL, RTOL

    if args.spec:
        from cadcam_numeric.spec.architecture import load_architecture_file
        from cadcam_numeric.spec.code import module_from_source, render_custom_source, verify_custom

        if args.derived:  # the generated module in DIR, refused unless it regenerates byte for byte
            arch = load_architecture_file(args.spec, args.derived)
            spec, code = arch.spec, arch.code
        else:  # nothing derived yet: check what `cadcam derive SPEC` would write
            from cadcam_numeric.spec.architecture import read_spec_file

            _, spec = read_spec_file(args.spec)
            code = module_from_source(render_custom_source(spec), spec.sha256())
        rows = verify_custom(spec, code, cases=args.cases, seed=args.seed)
    else:
        rows = verify_all(cases=args.cases, seed=args.seed)
    if args.json:
        print(
            json.dumps({"rtol": RTOL, "atol": ATOL, "seed": args.seed, "rows": [r.to_json() for r in rows]}, indent=2)
        )
    else:
        _print_rows(rows)
    return 0 if all(r.passed for r in rows) else 1


def _report_builder(out: Path, verify: bool) -> object:
    """The report build the bench times (the CLI is where this package and ``reports`` meet)."""
    from reports.build import build_report

    return build_report(out, verify=verify, cases=20 if verify else 5)


def _bench(args: argparse.Namespace) -> int:
    from cadcam_numeric.atomic import atomic_write_text

    if args.dataset:
        return _bench_dataset(args)
    try:
        from cadcam_numeric.bench.suite import BenchConfig, run_suite, to_markdown
    except ImportError as exc:  # pytorch-grad-cam is the peer the bench times against
        raise CadcamInputError(
            f"bench: needs the test extra ({exc.name or exc}); install it with pip install -e '.[test]'"
        ) from exc

    try:
        batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else None
    except ValueError:
        raise CadcamInputError(f"--batches: expected comma-separated integers, got {args.batches!r}") from None
    if batches is not None and min(batches) < 1:
        raise CadcamInputError(f"--batches: expected positive integers, got {args.batches!r}")
    if args.repeats is not None and args.repeats < 1:
        raise CadcamInputError(f"--repeats: expected >= 1, got {args.repeats}")
    config = BenchConfig(
        batches=batches,
        repeats=args.repeats if args.repeats is not None else (1 if args.quick else 3),
        quick=args.quick,
        device=args.device,
        dtype=args.dtype,
        with_report=not args.no_report,
        heads_only=args.heads_only,
    )
    result = run_suite(config, log=lambda m: print(m, file=sys.stderr), report_builder=_report_builder)
    markdown = to_markdown(result)
    if args.out:
        out = Path(args.out)
        atomic_write_text(out / "bench.json", json.dumps(result.to_json(), indent=2))
        atomic_write_text(out / "bench.md", markdown)
        print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}", file=sys.stderr)
    print(json.dumps(result.to_json(), indent=2) if args.json else markdown)
    return 0


def _bench_dataset(args: argparse.Namespace) -> int:
    from cadcam_numeric.atomic import atomic_write_text
    from cadcam_numeric.bench.dataset import dataset_markdown, run_dataset_bench
    from cadcam_numeric.devices import select_device

    try:
        sizes = tuple(int(v) for v in args.sizes.split(","))
    except ValueError:
        raise CadcamInputError(f"--sizes: expected two comma-separated integers, got {args.sizes!r}") from None
    if len(sizes) != 2 or min(sizes) < 1:
        raise CadcamInputError(f"--sizes: expected two positive integers (e.g. 1000,10000), got {args.sizes!r}")
    device = select_device(args.device)
    result = run_dataset_bench(
        Path(args.bundle) if args.bundle else None,
        sizes,
        device=str(device),
        workers=args.workers,
        evaluate_images=args.evaluate_images,
        log=lambda m: print(m, file=sys.stderr),
    )
    markdown = dataset_markdown(result)
    if args.out:
        atomic_write_text(Path(args.out) / "bench_dataset.json", json.dumps(result.to_json(), indent=2))
        atomic_write_text(Path(args.out) / "bench_dataset.md", markdown)
    print(json.dumps(result.to_json(), indent=2) if args.json else markdown)
    return 0


def _pipeline_config(args: argparse.Namespace, data: str):
    from cadcam_numeric.pipeline.run import PipelineConfig

    return PipelineConfig(
        data=data,
        backbone=args.backbone,
        feature_layer=args.feature_layer,
        weights=args.weights,
        random_weights=args.random_weights,
        input_size=args.input_size,
        epochs=args.epochs if args.epochs is not None else 40,
        activation=args.activation,
        seed=args.seed if args.seed is not None else 0,
        device=args.device,
        download=getattr(args, "download", False),
        image_size=getattr(args, "image_size", 64),
        **_recipe(args),
    )


def _recipe(args: argparse.Namespace) -> dict[str, object]:
    """The settings ``--recipe``, ``--pca-after`` and ``--classifier`` stand for."""
    cnn_svm = args.recipe == "cnn-svm"
    settings: dict[str, object] = {
        "pca_after": args.pca_after if args.pca_after is not None else (0 if cnn_svm else 2),
        "scale_before_pca": cnn_svm,
        "classifiers": tuple(dict.fromkeys([*(["logistic"] if cnn_svm else []), *(args.classifier or [])])),
    }
    if settings["pca_after"] < 0:
        raise CadcamInputError(
            f"--pca-after: expected 0 (the pooled features) or a dense layer >= 1, got {args.pca_after}"
        )
    return settings


def _run_pipeline(args: argparse.Namespace, data: str) -> int:
    from dataclasses import replace

    from cadcam_numeric.pipeline.run import run_pipeline

    config, architecture = _pipeline_config(args, data), None
    if args.spec:
        from cadcam_numeric.spec.architecture import load_architecture_file, pipeline_overrides

        if args.pca_after is not None or args.recipe != "paper":
            raise CadcamInputError(
                "--pca-after/--recipe: the spec fixes the PCA (its [pca] table: after, kind, scaler); edit the spec"
            )
        architecture = load_architecture_file(args.spec, args.derived)
        overrides = pipeline_overrides(architecture.spec)
        explicit = {k for k in ("epochs", "seed") if getattr(args, k) is not None}
        if data != "digits" or "data" not in overrides:
            overrides["data"] = data
        config = replace(config, **{k: v for k, v in overrides.items() if k not in explicit})
    summary = run_pipeline(config, Path(args.out), architecture=architecture)
    print("\nTable 3 (macro-F1):")
    width = max(len(row["model"]) for row in summary["table3"])
    for row in summary["table3"]:
        print(f"  {row['model']:{width}}  train {row['train_macro_f1']:.3f}  test {row['test_macro_f1']:.3f}")
    print(f"\nwritten under {Path(args.out).resolve()} in {summary['timings_s']['total']:.0f} s:")
    for name, path in summary["files"].items():
        print(f"  {name:12} {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    status = _run_pipeline(args, "digits")
    if status != 0 or args.no_report:
        return status
    try:
        from reports.build import build_report
    except ImportError as exc:  # pragma: no cover - sympy/jinja2 are dependencies
        print(f"report skipped: {exc}", file=sys.stderr)
        return 0
    out = Path(args.out)
    command = f"cadcam report --bundle {out / 'bundle'} --out {out / 'report'}"
    if args.spec:
        command += f" --derived {args.derived}" if args.derived else ""
    build = build_report(out / "report", bundle=out / "bundle", command=command, derived=args.derived)
    print(f"\nreport: {build.message}")
    return 0


def _train(args: argparse.Namespace) -> int:
    return _run_pipeline(args, args.data)


def _explain(args: argparse.Namespace) -> int:
    from cadcam_numeric.pipeline.explain_cli import MAX_IMAGES_PER_FIGURE, explain_paths
    from cadcam_numeric.pipeline.sources import is_data_source, open_source

    store = args.store or args.distributed or any(is_data_source(s) for s in args.images)
    if not store:  # plain files and folders: a figure for a few images, a store for more
        store = len(open_source(args.images, 1)) > MAX_IMAGES_PER_FIGURE
    if not store:
        written = explain_paths(
            Path(args.bundle),
            [Path(p) for p in args.images],
            Path(args.out),
            svm=args.svm,
            method=args.method,
            weights=args.weights,
            device=args.device,
            derived=args.derived,
            spec=args.spec,
        )
        for name, path in written.items():
            print(f"{name:6} {path}")
        return 0
    from cadcam_numeric.pipeline.explain_store import explain_to_store

    args.resumable = True  # an interrupted store is kept: the same command resumes it
    run = explain_to_store(
        Path(args.bundle),
        args.images if len(args.images) > 1 else args.images[0],
        Path(args.out),
        svm=args.svm,
        method=args.method,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        workers=args.workers,
        float16=args.float16,
        strict=args.strict,
        distributed=args.distributed,
        device=args.device,
        weights=args.weights,
        derived=args.derived,
        spec=args.spec,
        seed=args.seed,
    )
    if run.rank == 0:
        print(
            f"{run.images} images explained into {run.out} ({run.computed} shards computed, {run.kept} kept from "
            f"an earlier run, {run.world} process{'es' if run.world > 1 else ''}, {run.seconds:.1f} s, "
            f"{run.stream_seconds:.3f} s of it streaming)"
        )
        for i, reason in run.skipped[:20]:
            print(f"skipped {i}: {reason}")
        if len(run.skipped) > 20:
            print(f"… and {len(run.skipped) - 20} more; all are listed in {run.out / 'skipped.csv'}")
        for name, path in run.files.items():
            print(f"{name:8} {path}")
        print(f"read it with: from cadcam_numeric.pipeline import MapStore; MapStore({str(run.out)!r})")
    if run.images == 0:
        raise CadcamInputError(f"images: none of the {len(run.skipped)} images could be read (see skipped.csv)")
    return 0


def _export(args: argparse.Namespace) -> int:
    """Exit 0 when the written file, loaded afresh, reproduces the eager model; 1 with the figures if not."""
    from cadcam_numeric.pipeline.export import CHECK_BATCH, export_bundle, tolerance

    check = export_bundle(
        Path(args.bundle), Path(args.out_file), fmt=args.format, classes=args.classes, method=args.method, svm=args.svm
    )
    ratio = {k: d / tolerance(k) for k, d in check.differences.items()}
    worst = max(ratio, key=ratio.get)
    figure = f"{worst}: {check.differences[worst]:.3g} of max(1, |value|), tolerance {tolerance(worst):g}"
    if not check.ok:
        print(
            f"cadcam export: the written file differs from the eager model ({figure}); nothing was kept",
            file=sys.stderr,
        )
        return 1
    print(
        f"{check.path} and {check.description}: loaded back and run on {CHECK_BATCH} new images, every output "
        f"within its tolerance of eager (closest to it: {figure})"
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    try:
        from reports.build import build_report
        from reports.view import view_of_architecture
    except ImportError as exc:
        print(f"cadcam report needs the derivation dependencies (sympy, jinja2): {exc}", file=sys.stderr)
        return 2
    from cadcam_numeric.pipeline.bundle import read_bundle_document
    from cadcam_numeric.spec.architecture import load_architecture_file

    if args.bundle and args.spec:  # without --spec the report reads (and validates) the bundle itself
        read_bundle_document(Path(args.bundle))
    view = None
    if args.spec:
        arch = load_architecture_file(args.spec, args.derived)
        view = view_of_architecture(arch.spec, arch.code)
    command = (
        "cadcam report"
        + (f" --spec {args.spec}" if args.spec else "")
        + (f" --derived {args.derived}" if args.derived else "")
        + (f" --bundle {args.bundle}" if args.bundle else "")
        + f" --out {args.out}"
    )
    build = build_report(
        Path(args.out),
        view,
        Path(args.bundle) if args.bundle else None,
        verify=not args.no_verify,
        cases=args.cases,
        command=command,
        derived=Path(args.derived) if args.derived else None,
    )
    print(build.message)
    return 0 if build.pdf is not None else 3


def _evaluate(args: argparse.Namespace) -> int:
    from cadcam_numeric.engine.targets import PREDICTED, ClassTarget, SVMClassTarget
    from cadcam_numeric.pipeline.evaluate import run_evaluation

    summary = run_evaluation(
        Path(args.bundle),
        Path(args.out),
        data=args.data,
        n=args.n,
        steps=args.steps,
        svm=args.svm,
        seed=args.seed,
        device=args.device,
        weights=args.weights,
        correct_only=not args.all_images,
        derived=args.derived,
        targets=None if args.target is None else ClassTarget(args.target),
        svm_targets=PREDICTED if args.svm_target is None else SVMClassTarget(args.svm_target),  # as --help says
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        workers=args.workers,
        distributed=args.distributed,
    )
    kept = "correctly classified images" if summary["correct_only"] else "images"
    if "files" not in summary:  # a rank other than 0: rank 0 writes and prints the results
        return 0
    print(
        f"{summary['images']} {kept} of {summary['data']} (CNN accuracy {summary['cnn_accuracy']:.3f} "
        f"over {summary['candidates']} candidates), {summary['seconds']:.0f} s\n"
    )
    if summary["asked"] != "all" and summary["images"] < summary["asked"]:
        print(f"note: {summary['asked']} images were asked for; the source held only {summary['images']}\n")
    for skipped in summary["skipped"]:
        print(f"skipped {skipped['id']}: {skipped['reason']}")
    print(Path(summary["files"]["md"]).read_text())
    for name, path in summary["files"].items():
        print(f"{name:7} {path}")
    return 0


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    from cadcam_numeric.pipeline.fitting import CLASSIFIER_KINDS

    p.add_argument("--out", required=True, help="output directory (created; files are written whole)")
    p.add_argument(
        "--backbone",
        choices=["small_vgg", "vgg16"],
        default="small_vgg",
        help="small_vgg: small VGG-style CNN trained end to end (default, CPU-friendly); "
        "vgg16: torchvision VGG16, frozen, ImageNet weights (the paper's protocol)",
    )
    p.add_argument(
        "--feature-layer",
        choices=["pool", "conv"],
        default="pool",
        help="maps at the last pooling layer (default) or the last conv layer with the pool in the head",
    )
    p.add_argument("--weights", default=None, help="VGG16 weights file (.pth state dict or .safetensors)")
    p.add_argument("--random-weights", action="store_true", help="allow VGG16 with untrained convolutions")
    p.add_argument(
        "--input-size", type=positive_int, default=None, help="input pixels (default 32 small_vgg, 200 vgg16)"
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="training epochs; the best-validation one is kept (default 40)",
    )
    p.add_argument("--activation", default="relu", help="activation of the dense layers (any catalogue entry)")
    p.add_argument(
        "--recipe",
        choices=["paper", "cnn-svm"],
        default="paper",
        help="paper: PCA on dense layer 2, four SVMs (default); cnn-svm: the usual CNN-SVM recipe, pooled "
        "features -> StandardScaler -> PCA -> SVC and LogisticRegression",
    )
    p.add_argument(
        "--pca-after",
        type=int,
        default=None,
        help="dense layer whose output PCA reads (1-based); 0: the pooled features (default 2; cnn-svm 0)",
    )
    p.add_argument(
        "--classifier",
        action="append",
        default=None,
        choices=sorted(CLASSIFIER_KINDS),
        help="also fit this classifier on the PCA scores (repeatable)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--spec", default=None, help="TOML architecture spec: its head, PCA and SVM (see README)")
    p.add_argument("--derived", default=None, help="directory `cadcam derive SPEC --out DIR` wrote (custom code)")


def build_parser() -> argparse.ArgumentParser:
    """The ``cadcam`` argument parser (every command and option)."""
    parser = argparse.ArgumentParser(
        prog="cadcam", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--debug", action="store_true", help="on an unexpected error, show the Python traceback instead of one line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="the whole pipeline on the embedded digits (no download), then the report")
    _add_pipeline_options(demo)
    demo.add_argument("--no-report", action="store_true", help="skip building the derivation report")
    demo.set_defaults(func=_demo)
    trn = sub.add_parser("train", help="the whole pipeline on a data source")
    trn.add_argument(
        "--data",
        default="digits",
        help="digits | folder:PATH | mnist:ROOT | fashion-mnist:ROOT | cifar10:ROOT | medmnist:FILE.npz",
    )
    trn.add_argument("--download", action="store_true", help="let torchvision download MNIST/CIFAR-10 (network)")
    trn.add_argument("--image-size", type=positive_int, default=64, help="size folder images are loaded at")
    _add_pipeline_options(trn)
    trn.set_defaults(func=_train)
    exp = sub.add_parser(
        "explain",
        help="maps for image files, folders or a whole data source from a bundle",
        description="A figure and .npz for up to 12 image files; for more, or a data source, a map store "
        "(shards + index, resumable; `torchrun -m cadcam_numeric explain ... --distributed` for many processes).",
    )
    exp.add_argument(
        "images",
        nargs="+",
        metavar="SOURCE",
        help="image files and/or folders, or one data source: folder:PATH, files:LIST.txt, digits, mnist:ROOT, "
        "fashion-mnist:ROOT, cifar10:ROOT, medmnist:FILE.npz, localisation[:N]",
    )
    exp.add_argument("--store", action="store_true", help="write a map store even for 12 images or fewer")
    exp.add_argument("--shard-size", type=positive_int, default=1024, help="images per shard (default: %(default)s)")
    exp.add_argument("--batch-size", type=positive_int, default=32, help="images per batch (default: %(default)s)")
    exp.add_argument(
        "--workers", type=non_negative_int, default=None, help="DataLoader worker processes (default: cores - 1)"
    )
    exp.add_argument("--float16", action="store_true", help="store the maps as float16 (half the disk)")
    exp.add_argument("--strict", action="store_true", help="stop at an unreadable image (default: skip and list it)")
    exp.add_argument("--distributed", action="store_true", help="one rank of a torchrun group (gloo/NCCL)")
    exp.add_argument("--seed", type=int, default=0, help="seed of the digits split / localisation set")
    exp.add_argument("--bundle", required=True, help="bundle directory written by demo/train")
    exp.add_argument("--out", required=True, help="output directory")
    exp.add_argument("--svm", default=None, help="which SVM of the bundle (default: the bundle's default)")
    exp.add_argument("--method", choices=list(METHOD_LABELS), default="grad-cam")
    exp.add_argument("--weights", default=None, help="VGG16 weights file, if it moved since training")
    exp.add_argument("--device", default=None)
    exp.add_argument("--derived", default=None, help="for a bundle made from a spec with its own code: DIR of derive")
    exp.add_argument("--spec", default=None, help="the TOML spec the bundle was made from (checked against it)")
    exp.set_defaults(func=_explain)
    ev = sub.add_parser("evaluate", help="method x metric table (deletion/insertion AUC, pointing game, IoU)")
    ev.add_argument("--bundle", required=True, help="bundle directory written by demo/train")
    ev.add_argument("--out", required=True, help="output directory")
    ev.add_argument(
        "--data",
        default="localisation",
        help="localisation (digits in cluttered canvases, exact boxes; default) or any --data source",
    )
    ev.add_argument(
        "--images",
        "--n",
        dest="n",
        type=_count_or_all,
        default=100,
        help="number of images, or `all` for every image of the source (default: %(default)s; under torchrun "
        "write --images: torchrun reads --n as its own --nnodes)",
    )
    ev.add_argument("--batch-size", type=positive_int, default=128, help="images per batch (default: %(default)s)")
    ev.add_argument("--shard-size", type=positive_int, default=256, help="images per shard (default: %(default)s)")
    ev.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader worker processes (default: 0)")
    ev.add_argument("--distributed", action="store_true", help="one rank of a torchrun group (gloo/NCCL)")
    ev.add_argument("--steps", type=positive_int, default=16, help="deletion/insertion steps (default: %(default)s)")
    ev.add_argument("--svm", default=None, help="which SVM of the bundle (default: the bundle's default)")
    ev.add_argument(
        "--all-images",
        action="store_true",
        help="keep misclassified images too (default: correct predictions only, as Decom-CAM)",
    )
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--weights", default=None, help="VGG16 weights file, if it moved since training")
    ev.add_argument("--device", default=None)
    ev.add_argument("--derived", default=None, help="for a bundle made from a spec with its own code: DIR of derive")
    ev.add_argument(
        "--target",
        type=non_negative_int,
        default=None,
        help="explain this CNN class in every image (default: predicted)",
    )
    ev.add_argument("--svm-target", default=None, help="explain this SVM label in every image (default: predicted)")
    ev.set_defaults(func=_evaluate)
    rep = sub.add_parser("report", help="LaTeX/PDF derivation report (exit 3 when LaTeX is missing: .tex only)")
    rep.add_argument("--out", required=True, help="output directory for report.tex / report.pdf")
    rep.add_argument(
        "--spec",
        default=None,
        help="TOML architecture spec (default: the bundle's, else the paper's: derivations/examples/paper_head.toml)",
    )
    rep.add_argument("--derived", default=None, help="for a spec with its own code: the DIR `cadcam derive` wrote")
    rep.add_argument("--bundle", default=None, help="bundle directory: adds its architecture, Table 3 and figures")
    rep.add_argument("--no-verify", action="store_true", help="skip the autograd verification table")
    rep.add_argument("--cases", type=positive_int, default=20, help="random cases per verified function")
    rep.set_defaults(func=_report)
    der = sub.add_parser(
        "derive", help="prove, and check cadcam_numeric/generated against a fresh generation; or derive a TOML spec"
    )
    der.add_argument("spec", nargs="?", default=None, help="TOML architecture spec (then --out DIR is required)")
    der.add_argument("--out", default=None, help="where the spec's module, LaTeX and summary are written")
    der.add_argument(
        "--cases", type=positive_int, default=20, help="random cases per check of the spec (default: %(default)s)"
    )
    der.set_defaults(func=_derive)
    ver = sub.add_parser("verify", help="check the generated code (or a spec's) against PyTorch autograd")
    ver.add_argument("spec", nargs="?", default=None, help="TOML architecture spec: check its own code and chain")
    ver.add_argument("--derived", default=None, help="the spec's derive directory (default: generate in memory)")
    ver.add_argument("--json", action="store_true", help="machine-readable output")
    ver.add_argument("--cases", type=positive_int, default=20, help="random cases per function (default: %(default)s)")
    ver.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    ver.set_defaults(func=_verify)
    exp_ = sub.add_parser(
        "export", help="a bundle's whole model (backbone + closed-form maps) as one ONNX or torch.export file, checked"
    )
    exp_.add_argument("--bundle", required=True, help="bundle directory (from cadcam demo / train)")
    exp_.add_argument("--out", dest="out_file", required=True, help="the file to write (its description: FILE.json)")
    exp_.add_argument("--format", choices=("onnx", "pt2"), default="onnx", help="default: %(default)s")
    exp_.add_argument("--classes", choices=("predicted", "all"), default="predicted", help="default: %(default)s")
    exp_.add_argument("--method", choices=METHOD_LABELS, default="grad-cam", help="default: %(default)s")
    exp_.add_argument("--svm", default=None, help="which of the bundle's classifiers (default: the bundle's own)")
    exp_.set_defaults(func=_export)
    acc = sub.add_parser("accepted", help="the heads, transforms and classifiers explain accepts (Markdown table)")
    acc.set_defaults(func=_accepted)
    ben = sub.add_parser(
        "bench", help="explain vs the backbone alone, autograd, torch.func and pytorch-grad-cam (VGG16, 200 px)"
    )
    ben.add_argument("--quick", action="store_true", help="batches 1 and 2, one timed run: under 2 min on 2 cores")
    ben.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8,32; +256 on a GPU)")
    ben.add_argument(
        "--repeats", type=positive_int, default=None, help="timed runs after a warm-up (default 3; quick 1)"
    )
    ben.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ben.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ben.add_argument("--no-report", action="store_true", help="do not time the report build")
    ben.add_argument(
        "--heads-only",
        action="store_true",
        help="only the backbone and the head variants (the cost of each transform/classifier block)",
    )
    ben.add_argument(
        "--dataset",
        action="store_true",
        help="explain-and-store over image files vs the backbone alone, 1 and 2 processes, peak RSS, "
        "deletion/insertion vs its floor",
    )
    ben.add_argument("--bundle", default=None, help="--dataset: the bundle to time (default: small_vgg on digits)")
    ben.add_argument("--sizes", default="1000,10000", help="--dataset: image counts compared (default: %(default)s)")
    ben.add_argument("--workers", type=non_negative_int, default=None, help="--dataset: DataLoader workers")
    ben.add_argument(
        "--evaluate-images", type=positive_int, default=1000, help="--dataset: images of the deletion/insertion timing"
    )
    ben.add_argument("--out", default=None, help="directory for bench.json and bench.md")
    ben.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown tables")
    ben.set_defaults(func=_bench)
    return parser


def _check_out(args: argparse.Namespace) -> OutputClaim | None:
    """``--out`` must be new, empty, or a folder cadcam wrote (``atomic.MARKER``). It is normalised
    once (``newdir/../yours`` is ``yours``; :func:`~cadcam_numeric.atomic.resolved_path`), claimed
    (created and marked as cadcam's) and ``args.out`` becomes that one absolute path, which the
    command, its checks and the clean-up after a failure all use. None when the command has no ``--out``."""
    out = getattr(args, "out", None)
    if out is None:
        return None
    if not out.strip() or any(ch in out for ch in "\x00\r\n"):
        raise CadcamInputError(f"--out: {out!r} is not a usable directory name")
    claim = claim_directory(Path(out), "--out")  # new, empty or cadcam's own: nothing of yours is overwritten
    args.out = str(claim.path)
    return claim


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (the same clean-up), with exit status 143 = 128 + SIGTERM."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` in the main thread (restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _sigterm_deferred() -> Iterator[None]:
    """SIGTERM held back inside the block (main thread only); one that came is delivered at its end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _unexpected(args: argparse.Namespace, exc: BaseException) -> int:
    """Anything not anticipated: exit 1 with one line (``--debug``: the traceback)."""
    if args.debug:
        raise exc
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    print(
        f"cadcam {args.command}: internal error: {type(exc).__name__}: {message[:300]} "
        "(a bug in cadcam, or input it does not anticipate; rerun with `cadcam --debug ...` for the traceback)",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run one command. The error boundary: bad input → exit 2 and one sentence naming the argument;
    an output directory the command created is removed again when the command fails."""
    args = build_parser().parse_args(argv)
    from derivations.budget import shared_budget  # SymPy-free

    with _sigterm_as_interrupt(), shared_budget():  # one SymPy time budget for the whole command
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    claim: OutputClaim | None = None
    status = 1
    try:
        with _sigterm_deferred():  # a SIGTERM while claiming arrives once `claim` is known, so it is released
            claim = _check_out(args)
        status = int(args.func(args))
        return status
    except CadcamInputError as exc:
        print(f"cadcam {args.command}: {exc}", file=sys.stderr)
        status = 2
        return status
    except BrokenPipeError:  # the reader of stdout went away (`| head`): 128 + SIGPIPE, as a shell says;
        sys.stdout = open(os.devnull, "w")  # what was written stays
        status = 141
        return status
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        where = exc.filename or getattr(args, "out", None) or "a path"
        print(f"cadcam {args.command}: cannot write or read {where} ({exc.strerror or exc})", file=sys.stderr)
        status = 2
        return status
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG):
            return _unexpected(args, exc)
        where = exc.filename or getattr(args, "out", None) or "a path"
        print(f"cadcam {args.command}: cannot write {where} ({exc.strerror})", file=sys.stderr)
        status = 2
        return status
    except KeyboardInterrupt as exc:
        status = 143 if isinstance(exc, Terminated) else 130
        how = "terminated (SIGTERM)" if status == 143 else "interrupted"
        if getattr(args, "resumable", False):
            print(
                f"cadcam {args.command}: {how}; the shards finished so far are kept in {args.out}: "
                "rerun the same command to finish the store",
                file=sys.stderr,
            )
        else:
            print(f"cadcam {args.command}: {how}; nothing half-written was kept", file=sys.stderr)
        return status
    except Exception as exc:
        from derivations.errors import DerivationInputError  # SymPy-free

        if not isinstance(exc, DerivationInputError):
            return _unexpected(args, exc)
        print(f"cadcam {args.command}: {exc}", file=sys.stderr)
        status = 2
        return status
    finally:
        # 3: report wrote its .tex, only the PDF is missing; a store that was begun is kept for resuming
        begun = claim is not None and getattr(args, "resumable", False) and (claim.path / "store.json").is_file()
        if begun and status not in (0, 130, 143) and any((claim.path / "shards").glob("shard-*.npz")):
            print(f"cadcam {args.command}: the shards finished so far are kept in {args.out}", file=sys.stderr)
        if claim is not None and status not in (0, 3, 141) and not begun:
            claim.release()  # only what this command made: a folder of yours is never removed


if __name__ == "__main__":
    raise SystemExit(main())
