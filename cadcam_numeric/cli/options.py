"""Every option of the command line, defined once: its flags, its one help text and its parsing.

A command asks for options by name (:func:`add`); it may say whether one is required and give its own
default, never its own help — so ``--seed`` means the same in every command, and
``proofs_tests/test_cli.py`` walks the parser to hold that no option has two help texts. Nothing here
imports torch: ``cadcam --help`` builds the whole parser from it.

>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add(p, "seed", "device")
>>> p.parse_args(["--seed", "3"]).seed
3
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from cadcam_numeric.names import CLASSIFIER_NAMES, METHOD_LABELS

__all__ = [
    "OPTIONS",
    "Implicit",
    "Option",
    "add",
    "count_or_all",
    "non_negative_int",
    "positive_int",
]


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


def count_or_all(text: str) -> int | None:
    """``all`` (None: every image) or an integer >= 1."""
    if text.strip().lower() == "all":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'all', got {text!r}") from None


count_or_all.__name__ = "integer >= 1 or 'all'"


class Implicit(int):
    """A default the user did not type (``--seed`` unset): an int, told apart from an explicit one by its
    type, so a spec's own setting can take its place (:mod:`cadcam_numeric.cli.pipeline_run`)."""


def described(doc: str | None) -> str:
    """A command module's docstring as its ``--help`` description (reST literals as plain backquotes)."""
    return (doc or "").replace("``", "`").strip()


@dataclass(frozen=True)
class Option:
    """One option: its flags, its help (the only one it has) and the rest of ``add_argument``'s keywords."""

    flags: tuple[str, ...]
    help: str
    kwargs: dict[str, object] = field(default_factory=dict)


_TRAINING_SOURCES = "digits, folder:PATH, mnist:ROOT, fashion-mnist:ROOT, cifar10:ROOT, medmnist:FILE.npz"

#: name -> the option's one definition
OPTIONS: dict[str, Option] = {
    "out": Option(
        ("--out",),
        "where to write: a directory, new, empty or one cadcam wrote (every file is written whole); for export, "
        "the model file (and FILE.json beside it)",
    ),
    "bundle": Option(("--bundle",), "bundle directory that `cadcam demo` or `cadcam train` wrote"),
    "device": Option(("--device",), "cpu or cuda (default: cuda when available)", {"default": None}),
    "seed": Option(("--seed",), "random seed (default: %(default)s)", {"type": int, "default": Implicit(0)}),
    "spec": Option(("--spec",), "TOML architecture spec (examples in derivations/examples/)", {"default": None}),
    "derived": Option(
        ("--derived",),
        "for a spec with its own activations or kernels: the directory `cadcam derive SPEC --out DIR` wrote",
        {"default": None},
    ),
    "svm": Option(("--svm",), "which classifier of the bundle (default: the bundle's own)", {"default": None}),
    "method": Option(
        ("--method",),
        "how maps are formed from the gradients (default: %(default)s)",
        {"choices": list(METHOD_LABELS), "default": "grad-cam"},
    ),
    "weights": Option(
        ("--weights",),
        "VGG16 weights file, .pth state dict or .safetensors (default: the path the bundle recorded)",
        {"default": None},
    ),
    "batch_size": Option(("--batch-size",), "images per batch (default: %(default)s)", {"type": positive_int}),
    "shard_size": Option(
        ("--shard-size",), "images per shard of the store (default: %(default)s)", {"type": positive_int}
    ),
    "workers": Option(
        ("--workers",),
        "DataLoader worker processes (default: evaluate 0; explain and bench-dataset one fewer than each "
        "process's share of the cores, at most 8)",
        {"type": non_negative_int, "default": None},
    ),
    "distributed": Option(
        ("--distributed",),
        "run as one rank of a torchrun group (gloo on CPU, NCCL on CUDA)",
        {"action": "store_true"},
    ),
    "json": Option(("--json",), "print JSON instead of tables", {"action": "store_true"}),
    "cases": Option(
        ("--cases",), "random cases per verified function (default: %(default)s)", {"type": positive_int, "default": 20}
    ),
    "no_report": Option(("--no-report",), "leave the derivation report out", {"action": "store_true"}),
    "data": Option(
        ("--data",),
        f"data source: {_TRAINING_SOURCES}; evaluate also localisation[:N] and files:LIST.txt (default: %(default)s)",
    ),
    # the pipeline (demo, train)
    "backbone": Option(
        ("--backbone",),
        "small_vgg: a small VGG-style CNN trained end to end (default, CPU-friendly); vgg16: torchvision VGG16, "
        "frozen, ImageNet weights (the paper's protocol)",
        {"choices": ["small_vgg", "vgg16"], "default": "small_vgg"},
    ),
    "feature_layer": Option(
        ("--feature-layer",),
        "maps at the last pooling layer (default) or at the last conv layer, with the pool in the head",
        {"choices": ["pool", "conv"], "default": "pool"},
    ),
    "random_weights": Option(
        ("--random-weights",), "allow VGG16 with untrained convolutions", {"action": "store_true"}
    ),
    "input_size": Option(
        ("--input-size",), "input pixels (default: 32 for small_vgg, 200 for vgg16)", {"type": positive_int}
    ),
    "epochs": Option(
        ("--epochs",), "training epochs; the best-validation one is kept (default: 40)", {"type": positive_int}
    ),
    "activation": Option(
        ("--activation",),
        "activation of the dense layers, any catalogue entry (default: %(default)s)",
        {"default": "relu"},
    ),
    "recipe": Option(
        ("--recipe",),
        "paper: PCA on dense layer 2, four SVMs (default); cnn-svm: the usual CNN-SVM recipe, pooled features -> "
        "StandardScaler -> PCA -> SVC and LogisticRegression",
        {"choices": ["paper", "cnn-svm"], "default": "paper"},
    ),
    "pca_after": Option(
        ("--pca-after",),
        "the dense layer whose output PCA reads (1-based); 0: the pooled features (default: 2; cnn-svm: 0)",
        {"type": int},
    ),
    "classifier": Option(
        ("--classifier",),
        "also fit this classifier on the PCA scores (repeatable)",
        {"action": "append", "choices": list(CLASSIFIER_NAMES)},
    ),
    "download": Option(
        ("--download",), "let torchvision download MNIST or CIFAR-10 (network)", {"action": "store_true"}
    ),
    "image_size": Option(
        ("--image-size",),
        "pixels folder images are loaded at (default: %(default)s)",
        {"type": positive_int, "default": 64},
    ),
}

_UNSET = object()


def add(
    parser: argparse.ArgumentParser,
    *names: str,
    required: tuple[str, ...] = (),
    dests: dict[str, str] | None = None,
    **defaults: object,
) -> None:
    """Add the options ``names`` (keys of :data:`OPTIONS`) to ``parser``.

    Args:
        parser: a sub-command's parser.
        names: option names, in the order ``--help`` lists them.
        required: the names this command cannot do without.
        dests: an attribute name of this command's own (``{"out": "out_file"}``: not a directory to claim).
        defaults: a default of this command's own (``batch_size=32``); the help shows it.
    """
    for name in names:
        option = OPTIONS[name]
        kwargs = dict(option.kwargs)
        if name in defaults:
            kwargs["default"] = defaults[name]
        if name in required:
            kwargs["required"] = True
        if dests and name in dests:
            kwargs["dest"] = dests[name]
        parser.add_argument(*option.flags, help=option.help, **kwargs)
