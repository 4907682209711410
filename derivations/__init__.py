"""cadcam's symbolic core: the catalogue, block-Jacobian proofs, theorems and code generation.

SymPy is the single source of truth for every derivative the numeric package evaluates.
This package imports no torch. Run ``python -m derivations --help`` for the commands.
"""

from derivations.activations import ACTIVATIONS, Activation, activation_by_name
from derivations.kernels import KERNELS, Kernel, kernel_by_name
from derivations.pca import PCA_VARIANTS, PCAVariant

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
