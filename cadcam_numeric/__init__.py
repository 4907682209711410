"""cadcam's numeric package: code generated from the SymPy derivations, and what runs on it.

Imports no SymPy. ``cadcam_numeric.generated`` holds the generated activations, kernels and
block Jacobians; :mod:`cadcam_numeric.chain` composes them along a head.
"""

from cadcam_numeric.generated import CATALOGUE_SHA256

__version__ = "0.1.0"

__all__ = ["CATALOGUE_SHA256", "__version__"]
