"""Hypothesis strategies shared by the property tests (float64 throughout)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from cadcam_numeric.catalogue_types import ParameterInfo

EDGE_VALUES = [0.0, -0.0, 1.0, -1.0, 1e3, -1e3, 1e-8, -1e-8, 20.0, 30.0, -30.0]


@st.composite
def parameter_values(draw, parameters: dict[str, ParameterInfo]) -> dict[str, float]:
    """Random parameters inside each entry's declared range."""
    out = {}
    for name, info in parameters.items():
        if info.integer:
            out[name] = draw(st.integers(int(info.low), int(info.high)))
        else:
            out[name] = draw(st.floats(info.low, info.high, allow_nan=False, allow_infinity=False))
    return out


@st.composite
def input_tensors(draw, extra_points: tuple[float, ...] = ()) -> torch.Tensor:
    """A float64 tensor of random shape (1–3 dims) mixing ordinary values, edge values and kinks."""
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    n = int(np.prod(shape))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 40.0]))
    values = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    specials = draw(st.lists(st.sampled_from(EDGE_VALUES + list(extra_points)), max_size=n))
    for i, v in enumerate(specials):
        values[i] = v
    return values.reshape(shape)


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-10, atol: float = 1e-12, what: str = ""
) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")
