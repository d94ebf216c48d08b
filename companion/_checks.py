"""Argument checks shared by the companion modules.

Each raises early with a message that names the argument and says what was expected, so that a
learner sees "eps must be a positive float, got 0" rather than a NaN three cells later.
"""

from __future__ import annotations

import numbers
from typing import List

import numpy as np
import torch


def positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int > 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number > 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive float, got {value!r}")
    return float(value)


def momentum(value: object, allow_none: bool = True) -> float | None:
    """Return a momentum in [0, 1] (or ``None`` for a cumulative average), else raise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        expected = "a float in [0, 1] or None" if allow_none else "a float in [0, 1]"
        raise ValueError(f"momentum must be {expected}, got {value!r}")
    return float(value)


def float_array(name: str, x: object, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a floating-point numpy array with one of the allowed ``ndim``, else raise.

    Integer and boolean input is refused rather than silently cast, and so is NaN or infinity.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim not in ndim:
        shapes = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {shapes}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def boolean(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool, else raise (``affine=1`` is refused, not read as True)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def float_at_least(name: str, value: object, lower: float) -> float:
    """Return ``value`` as a float if it is a finite real number >= ``lower``, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < lower:
        raise ValueError(f"{name} must be a float >= {lower:g}, got {value!r}")
    return float(value)


def shape(name: str, value: object) -> tuple[int, ...]:
    """Return ``value`` as a non-empty tuple of positive ints (an int ``d`` stands for ``(d,)``)."""
    dims = (value,) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        dims = tuple(dims)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a positive int or a sequence of them, got {value!r}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d <= 0 for d in dims):
        raise ValueError(f"{name} must be a positive int or a sequence of them, got {value!r}")
    return tuple(int(d) for d in dims)


def shape_text(x: torch.Tensor) -> str:
    """``x``'s shape written as a Python tuple, e.g. ``(8, 3)`` or ``(3,)`` (TorchScript-compatible)."""
    dims = [str(d) for d in x.shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def float_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` if it is a floating-point torch tensor, else raise ``TypeError``.

    Annotated ``Tensor`` so that TorchScript compiles it; TorchScript drops the ``isinstance``
    branch statically, eager mode still refuses a list or an array.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def tensor_ndim(name: str, x: torch.Tensor, ndims: List[int], layout: str) -> None:
    """Raise ``ValueError`` unless ``x.dim()`` is one of ``ndims``.

    ``layout`` names the accepted shapes for the message, e.g. ``"(N, C) or (N, C, L)"``.
    """
    if x.dim() not in ndims:
        allowed = " or ".join([f"{d}-D" for d in ndims])
        raise ValueError(f"{name} must be {allowed} {layout}, got {x.dim()}-D input of shape {shape_text(x)}")


def tensor_size(name: str, x: torch.Tensor, dim: int, expected: int, argument: str) -> None:
    """Raise ``ValueError`` unless ``x.shape[dim] == expected``, naming the constructor ``argument``."""
    if x.shape[dim] != expected:
        raise ValueError(
            f"{name} has size {x.shape[dim]} at dim {dim}, but {argument}={expected}; "
            f"got input of shape {shape_text(x)}"
        )


@torch.jit.unused
def _under_vmap(x: torch.Tensor) -> bool:
    """True inside ``torch.func.vmap``, where a tensor's values cannot steer Python control flow."""
    return torch._C._functorch.is_batchedtensor(x)


def finite_statistics(name: str, stat: torch.Tensor, x: torch.Tensor) -> None:
    """Raise ``ValueError`` if a statistic computed from ``x`` is NaN or infinite.

    NaN or infinity anywhere in ``x`` propagates into its mean and variance, so checking the few
    statistics (one per channel or per sample) replaces a full pass over ``x``. Only when the check
    fails is ``x`` itself scanned, to tell "``x`` holds NaN/inf" from "finite but so spread that the
    variance overflows its dtype". Skipped inside ``torch.func.vmap`` (no data-dependent branches).
    """
    if not torch.jit.is_scripting():
        if _under_vmap(stat):
            return
    # fast path (one reduction, ~5x cheaper than isfinite().all()): a finite sum means every
    # entry is finite, since NaN and infinity propagate into it; an overflowing sum of finite
    # entries is told apart by the exact test
    stat = stat.detach()
    if abs(float(stat.sum())) < float("inf") or bool(torch.isfinite(stat).all()):
        return
    if bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{name} is too large for {stat.dtype}: its statistics (variance or mean square) "
            "overflow; rescale the data or use float64"
        )
    raise ValueError(f"{name} contains NaN or infinity")
