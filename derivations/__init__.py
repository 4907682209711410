"""cadcam's symbolic core: the catalogue, block-Jacobian proofs, theorems and code generation.

SymPy is the single source of truth for every derivative the numeric package evaluates.
This package imports no torch. Run ``python -m derivations --help`` for the commands.

The catalogue names below load lazily, so that importing a SymPy-free submodule (the spec
schema, :mod:`derivations.architecture`) does not import SymPy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "KERNELS",
    "PCA_VARIANTS",
    "Activation",
    "Kernel",
    "PCAVariant",
    "activation_by_name",
    "kernel_by_name",
]

_HOME = {
    "ACTIVATIONS": "derivations.activations",
    "Activation": "derivations.activations",
    "activation_by_name": "derivations.activations",
    "KERNELS": "derivations.kernels",
    "Kernel": "derivations.kernels",
    "kernel_by_name": "derivations.kernels",
    "PCA_VARIANTS": "derivations.pca",
    "PCAVariant": "derivations.pca",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'derivations' has no attribute {name!r}")
