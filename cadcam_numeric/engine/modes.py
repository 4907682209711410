"""Run a model in eval mode and give every module its own mode back (shared by the split's probe
and the model-level wrapper)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module of ``model`` in eval mode, and give each its own mode back on exit (also on
    an error): a frozen BatchNorm stays in eval mode, a model in train mode gets train mode back."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, training in modes:
            module.training = training
