# GENERATED FILE - DO NOT EDIT BY HAND.
# Written by `python -m derivations generate` from the catalogue in `derivations/`;
# `python -m derivations check` fails on any difference from a fresh generation.
# catalogue sha256: 341fec101652ec99f8e89a22923090adaebecb627aab4b85ede7352e710b3813
# generator: SymPy 1.14.0, formatted by ruff 0.17.6
"""Code generated from the SymPy derivations: activations, kernels, block Jacobians."""

from cadcam_numeric.generated.activations import ACTIVATIONS
from cadcam_numeric.generated.kernels import KERNELS

CATALOGUE_SHA256 = "341fec101652ec99f8e89a22923090adaebecb627aab4b85ede7352e710b3813"
SYMPY_VERSION = "1.14.0"

__all__ = ["ACTIVATIONS", "CATALOGUE_SHA256", "KERNELS", "SYMPY_VERSION"]
