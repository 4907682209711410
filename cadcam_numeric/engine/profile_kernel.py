"""A generated kernel as scikit-learn's callable ``SVC(kernel=...)``.

``SVC(kernel=ProfileKernel(code, gamma=0.5))`` fits an SVM with a spec's own kernel; the
Gram matrix is computed by the same generated code whose gradient the engine uses, in float64,
so the fitted SVM and the maps agree on what the kernel is. :func:`cadcam_numeric.engine.classifiers.parse_svm`
recognises it and reads the support vectors scikit-learn keeps for callable kernels.
"""

from __future__ import annotations

import numpy as np
import torch

from cadcam_numeric.catalogue_types import KernelCode

__all__ = ["ProfileKernel"]


class ProfileKernel:
    """K(X, Y)[i, j] = K(y_j, x_i) from a generated ``KernelCode`` with fixed parameters."""

    def __init__(self, code: KernelCode, **parameters: float) -> None:
        missing = set(code.parameters) - set(parameters)
        unknown = set(parameters) - set(code.parameters)
        if missing or unknown:
            raise TypeError(
                f"kernel {code.name!r} takes parameters {sorted(code.parameters)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        self.code = code
        self.parameters = {k: float(v) for k, v in parameters.items()}

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The Gram matrix K(x_i, y_j) (scikit-learn's callable-kernel contract), float64."""
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
        yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
        with torch.no_grad():
            return self.code.kernel(xt, yt, **self.parameters).numpy()

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.parameters.items())
        return f"ProfileKernel({self.code.name}{', ' + params if params else ''})"
