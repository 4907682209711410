"""What ``cadcam demo`` and ``cadcam train`` share: their options, the pipeline settings they stand for,
and the run with its summary (Table 3, the files written)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from cadcam_numeric.cli import options
from cadcam_numeric.errors import CadcamInputError

__all__ = ["PIPELINE_OPTIONS", "add_pipeline_options", "run_pipeline_command"]

PIPELINE_OPTIONS = (
    "out",
    "backbone",
    "feature_layer",
    "weights",
    "random_weights",
    "input_size",
    "epochs",
    "activation",
    "recipe",
    "pca_after",
    "classifier",
    "seed",
    "device",
    "spec",
    "derived",
)


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    options.add(p, *PIPELINE_OPTIONS, required=("out",))


def _recipe(args: argparse.Namespace) -> dict[str, object]:
    """The settings ``--recipe``, ``--pca-after`` and ``--classifier`` stand for."""
    cnn_svm = args.recipe == "cnn-svm"
    pca_after = args.pca_after if args.pca_after is not None else (0 if cnn_svm else 2)
    if pca_after < 0:
        raise CadcamInputError(
            f"--pca-after: expected 0 (the pooled features) or a dense layer >= 1, got {args.pca_after}"
        )
    classifiers = tuple(dict.fromkeys([*(["logistic"] if cnn_svm else []), *(args.classifier or [])]))
    return {"pca_after": pca_after, "scale_before_pca": cnn_svm, "classifiers": classifiers}


def _config(args: argparse.Namespace, data: str):
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
        seed=int(args.seed),
        device=args.device,
        download=getattr(args, "download", False),
        image_size=getattr(args, "image_size", 64),
        **_recipe(args),
    )


def _with_spec(args: argparse.Namespace, config, data: str):
    """The spec's head, PCA and training settings over the command's defaults (options typed win)."""
    from cadcam_numeric.spec.architecture import load_architecture_file, pipeline_overrides

    if args.pca_after is not None or args.recipe != "paper":
        raise CadcamInputError(
            "--pca-after/--recipe: the spec fixes the PCA (its [pca] table: after, kind, scaler); edit the spec"
        )
    architecture = load_architecture_file(args.spec, args.derived)
    overrides = pipeline_overrides(architecture.spec)
    typed = {"epochs"} if args.epochs is not None else set()
    typed |= set() if isinstance(args.seed, options.Implicit) else {"seed"}
    if data != "digits" or "data" not in overrides:
        overrides["data"] = data
    return replace(config, **{k: v for k, v in overrides.items() if k not in typed}), architecture


def run_pipeline_command(args: argparse.Namespace, data: str) -> None:
    """Train, fit and write the bundle, figures and tables under ``--out``; print Table 3 and the files."""
    from cadcam_numeric.devices import use_cpu_threads
    from cadcam_numeric.pipeline.run import run_pipeline

    threads = use_cpu_threads()
    config, architecture = _config(args, data), None
    if args.spec:
        config, architecture = _with_spec(args, config, data)
    summary = run_pipeline(config, Path(args.out), architecture=architecture)
    print("\nTable 3 (macro-F1):")
    width = max(len(row["model"]) for row in summary["table3"])
    for row in summary["table3"]:
        print(f"  {row['model']:{width}}  train {row['train_macro_f1']:.3f}  test {row['test_macro_f1']:.3f}")
    for warning in summary["warnings"]:
        print(f"\n{warning}")
    print(f"\nwritten under {Path(args.out).resolve()} in {summary['timings_s']['total']:.0f} s, {threads}:")
    for name, path in summary["files"].items():
        print(f"  {name:12} {path}")
