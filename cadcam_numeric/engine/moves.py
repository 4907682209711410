"""One rule for moving a fitted layer to a dtype and device: every tensor it holds, nothing else.

The engine's layers are frozen dataclasses of tensors, floats and nested layers; each one's ``to``
is :func:`moved` on itself, so a field added to a layer is moved without another line.

>>> import torch
>>> from cadcam_numeric.engine.transform import AffineStep
>>> step = AffineStep(torch.ones(2), torch.zeros(2)).to(torch.zeros(0, dtype=torch.float64))
>>> step.scale.dtype, step.offset.dtype
(torch.float64, torch.float64)
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import TypeVar

from torch import Tensor

__all__ = ["moved"]

T = TypeVar("T")


def moved(value: T, like: Tensor) -> T:
    """``value`` with each floating tensor in ``like``'s dtype and device (other tensors: device only).

    Walks tuples, lists and the fields of dataclasses that define ``to`` (the engine's layers);
    anything else (floats, NumPy arrays, generated code, parameter dicts) is returned as it is.

    Args:
        value: a tensor, a layer, or a tuple/list of them.
        like: the tensor whose dtype and device the result takes.

    Returns:
        A value of the same type and shapes; the input is not changed.
    """
    if isinstance(value, Tensor):
        return value.to(like) if value.is_floating_point() else value.to(like.device)
    if isinstance(value, tuple):
        return tuple(moved(v, like) for v in value)
    if isinstance(value, list):
        return [moved(v, like) for v in value]
    if is_dataclass(value) and not isinstance(value, type) and hasattr(value, "to"):
        return replace(value, **{f.name: moved(getattr(value, f.name), like) for f in fields(value) if f.init})
    return value
