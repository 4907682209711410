# GENERATED FILE - DO NOT EDIT BY HAND.
# Written by `python -m derivations generate` from the catalogue in `derivations/`
# and the template derivations/codegen/templates/init.py.j2;
# `python -m derivations check` fails on any difference from a fresh generation.
# catalogue sha256: c9f43f59232ee47cfc1994e1f95fcdaaccf404d7c06a6bfa8dc14312e6b5adc5
# generator: SymPy 1.14.0, formatted by ruff 0.17.6
"""Code generated from the SymPy derivations: activations, kernels, block Jacobians."""

from cadcam_numeric.generated.activations import ACTIVATIONS
from cadcam_numeric.generated.kernels import KERNELS

CATALOGUE_SHA256 = "c9f43f59232ee47cfc1994e1f95fcdaaccf404d7c06a6bfa8dc14312e6b5adc5"
SYMPY_VERSION = "1.14.0"

__all__ = ["ACTIVATIONS", "CATALOGUE_SHA256", "KERNELS", "SYMPY_VERSION"]
