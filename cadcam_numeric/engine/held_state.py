"""How :class:`~cadcam_numeric.engine.closed_form.ClosedForm` holds what it read: a *template* of
the parsed head, transform and classifier in which every tensor is replaced by the name of the
buffer that holds it (:class:`Held`), and :func:`map_leaves` to go from one to the other. The
module's buffers are then the one copy of the state (``.to()``, ``load_state_dict()`` act on them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace

from torch import nn

from cadcam_numeric.catalogue_types import ActivationCode, KernelCode
from cadcam_numeric.engine.head import flatten_modules
from cadcam_numeric.engine.pooling import Pooling
from cadcam_numeric.errors import CadcamInputError

__all__ = ["Held", "expected_feature_shape", "map_leaves"]


@dataclass(frozen=True)
class Held:
    """In the template: the name of the buffer that holds this tensor."""

    name: str


def map_leaves(obj: object, leaf: Callable[[str, object], object], name: str, kind: type) -> object:
    """``obj`` (dataclasses, lists, tuples, dicts) with every value ``v`` of type ``kind`` at path
    ``name`` replaced by ``leaf(name, v)``; every other value kept. Paths join field names with ``__``.

    >>> map_leaves({"a": [1, "x"]}, lambda path, v: path, "s", int)
    {'a': ['s__a__0', 'x']}
    """
    if isinstance(obj, kind):
        return leaf(name, obj)
    if isinstance(obj, Pooling | nn.Module | str | ActivationCode | KernelCode) or obj is None:
        return obj  # code and fixed structure: no tensors of the state in them
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return obj
    if is_dataclass(obj) and not isinstance(obj, type):
        return replace(
            obj,
            **{
                f.name: map_leaves(getattr(obj, f.name), leaf, f"{name}__{f.name}", kind) for f in fields(obj) if f.init
            },
        )
    if isinstance(obj, list | tuple):
        return type(obj)(map_leaves(v, leaf, f"{name}__{i}", kind) for i, v in enumerate(obj))
    if isinstance(obj, dict):
        return {k: map_leaves(v, leaf, f"{name}__{k}", kind) for k, v in obj.items()}
    return obj


def expected_feature_shape(
    head: nn.Module, feature_shape: tuple[int, int, int] | None, pca: object | None
) -> tuple[int, int, int]:
    """(T, M, N') of the features: given, or read from a head whose pooling fixes its output size
    (``AdaptiveAvgPool2d(k)``/``AdaptiveMaxPool2d(k)``: T = D₀ / k², any M, N′ ≥ k), with D₀ the first
    Linear's ``in_features`` (or, for a head without one, the width the PCA was fitted on).

    >>> from torch import nn
    >>> expected_feature_shape(nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 3)), None, None)
    (3, 2, 2)
    """
    if feature_shape is not None:
        if len(feature_shape) != 3 or not all(isinstance(v, int) and v > 0 for v in feature_shape):
            raise CadcamInputError(f"feature_shape: expected (T, M, N') positive integers, got {feature_shape!r}")
        return tuple(feature_shape)
    modules = flatten_modules(head) if isinstance(head, nn.Sequential) else []
    pool = modules[0] if modules and isinstance(modules[0], nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) else None
    linear = next((m for m in modules if isinstance(m, nn.Linear)), None)
    width = linear.in_features if linear is not None else getattr(pca, "n_features_in_", None)
    size = pool.output_size if pool is not None else None
    size = (size, size) if isinstance(size, int) else size
    if pool is None or not isinstance(width, int) or size is None or None in size or width % (size[0] * size[1]):
        raise CadcamInputError(
            "feature_shape: this head's pooling does not fix the size of what it flattens; pass "
            "feature_shape=(T, M, N') of the feature maps"
        )
    return width // (size[0] * size[1]), size[0], size[1]
