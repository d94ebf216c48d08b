"""Exercise checkers: a learner passes their own function, the checker compares it with the
reference on several inputs and prints one exact verdict, then the details.

Example
-------
>>> from companion.exercises import check_function
>>> check_function(my_standardize, reference_standardize, [(x1,), (x2,)], name="standardize")
standardize: correct on 2 of 2 inputs.
>>> check_function(wrong_standardize, reference_standardize, [(x1,), (x2,)], name="standardize")
standardize: wrong on 1 of 2 inputs:
  inputs[1]: max |difference| = 2.0e-01, 15 of 15 values off (shape (5, 3))

The verdict line comes first and counts exactly; each detail line names the input by its index
in ``inputs`` and, for a numeric mismatch, the largest absolute difference. Every printed line is
at most 80 characters.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

__all__ = ["check_function"]

_WIDTH = 80


def _as_arrays(value: Any) -> list[np.ndarray]:
    """Flatten a result (array, tensor, number, or tuple/list of those) into a list of arrays.

    Real results become float64, complex ones complex128; anything else raises ``TypeError``.
    """
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _as_arrays(v)]
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().resolve_conj()
        value = value.to(torch.complex128 if value.is_complex() else torch.float64).numpy()
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        return [arr.astype(np.complex128)]
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"result is not numeric ({type(value).__name__})")
    return [arr.astype(np.float64)]


def _copy(a: Any) -> Any:
    """A copy of a tensor or array argument, so an in-place function cannot spoil the comparison."""
    if isinstance(a, torch.Tensor):
        return a.clone()
    if isinstance(a, np.ndarray):
        return np.copy(a)
    return a


def _describe(args: tuple[Any, ...]) -> str:
    """``shape (5, 3)`` or ``shapes (5, 3), (3,), float`` for an argument tuple."""
    parts = [str(tuple(a.shape)) if hasattr(a, "shape") else type(a).__name__ for a in args]
    return ("shape " if len(parts) == 1 else "shapes ") + ", ".join(parts)


def _clip(line: str) -> str:
    return line if len(line) <= _WIDTH else line[: _WIDTH - 3] + "..."


def _detail(where: str, why: str, shapes: str) -> str:
    """One detail line: the shapes are appended only when they fit in the line width."""
    line = where + why + shapes
    return line if len(line) <= _WIDTH else _clip(where + why)


def _tolerance(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_inputs(inputs: object) -> list[tuple[Any, ...]]:
    """``inputs`` as a list of argument tuples (a generator is consumed once), else raise."""
    if isinstance(inputs, (np.ndarray, torch.Tensor)):
        raise TypeError(
            f"inputs must be a list of argument tuples, got a {type(inputs).__name__} of shape "
            f"{tuple(inputs.shape)}; for one call with x write inputs=[(x,)]"
        )
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise TypeError(f"inputs must be a list of argument tuples, e.g. [(x,)], got {type(inputs).__name__}")
    inputs = list(inputs)
    if not inputs:
        raise ValueError("inputs must hold at least one argument tuple, e.g. [(x,)]")
    for i, args in enumerate(inputs):
        if not isinstance(args, tuple):
            raise TypeError(
                f"inputs[{i}] must be a tuple of arguments, got {type(args).__name__}; "
                "for one call with x write inputs=[(x,)]"
            )
    return inputs


def _mismatch(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    """Why ``got`` differs from ``expected`` beyond the tolerances, or None when it agrees.

    NaN agrees with NaN at the same position (a legitimately undefined value); infinities must
    match exactly.
    """
    if np.iscomplexobj(got) != np.iscomplexobj(expected):
        kind = "complex" if np.iscomplexobj(got) else "real"
        return f"result is {kind}, the reference's is not"
    if got.shape != expected.shape:
        return f"result has shape {got.shape}, expected {expected.shape}"
    close = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    both_finite = np.isfinite(got) & np.isfinite(expected)
    off = int((~close).sum())
    nan_off = int((np.isnan(got) != np.isnan(expected)).sum())
    diff = np.abs(got - expected)[both_finite & ~close]
    parts = [f"max |difference| = {diff.max():.1e}" if diff.size else "max |difference| = inf"]
    parts.append(f"{off} of {got.size} values off")
    if nan_off:
        parts.append(f"{nan_off} NaN mismatched")
    return ", ".join(parts)


def check_function(
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: Iterable[tuple[Any, ...]],
    name: str | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> bool:
    """Compare ``candidate(*args)`` with ``reference(*args)`` for every ``args`` in ``inputs``.

    Prints the verdict first, ``"<name>: correct on 3 of 3 inputs."`` or ``"<name>: wrong on 2 of
    3 inputs:"``, then one indented line per wrong input: its index ``inputs[i]``, then either the largest
    absolute difference (with how many values are off), the shape mismatch, or the exception
    raised, then the argument shapes when they fit in the 80-character line. A value counts as correct when
    ``|got - expected| <= atol + rtol * |expected|`` (``numpy.isclose``), or when both are NaN.
    Inputs are copied before each call, so a function that modifies its arguments in place
    cannot spoil the comparison.

    Parameters
    ----------
    candidate, reference : callable
        Functions returning an array, a tensor, a number, or a tuple/list of those.
    inputs : list (or any iterable, e.g. a generator) of tuple
        One argument tuple per call: ``[(x1,), (x2,)]`` calls ``f(x1)`` then ``f(x2)``. A bare
        array is refused (it would be unpacked row by row).
    name : str, optional
        Name shown in the verdict; defaults to the candidate's ``__name__``.
    rtol, atol : float >= 0
        Relative and absolute tolerances.

    Returns
    -------
    bool
        True when the candidate agrees with the reference on every input.

    Raises
    ------
    TypeError
        ``candidate`` or ``reference`` is not callable, ``inputs`` is not an iterable of tuples.
    ValueError
        ``inputs`` is empty, or ``rtol``/``atol`` is not a finite number >= 0.
    """
    for role, f in (("candidate", candidate), ("reference", reference)):
        if not callable(f):
            raise TypeError(f"{role} must be a function, got {type(f).__name__}")
    rtol, atol = _tolerance("rtol", rtol), _tolerance("atol", atol)
    inputs = _check_inputs(inputs)
    label = name or getattr(candidate, "__name__", "your function")
    details: list[str] = []
    for i, args in enumerate(inputs):
        where, shapes = f"  inputs[{i}]: ", f" ({_describe(args)})"
        expected = _as_arrays(reference(*[_copy(a) for a in args]))
        try:
            got = _as_arrays(candidate(*[_copy(a) for a in args]))
        except Exception as exc:  # a learner's bug is a verdict, not a crash
            message = " ".join(str(exc).split())
            details.append(_detail(where, f"raised {type(exc).__name__}: {message}", shapes))
            continue
        if len(got) != len(expected):
            details.append(_detail(where, f"returned {len(got)} arrays, expected {len(expected)}", shapes))
            continue
        for k, (g, e) in enumerate(zip(got, expected)):
            why = _mismatch(g, e, rtol, atol)
            if why is not None:
                which = f"result {k}: " if len(expected) > 1 else ""
                details.append(_detail(where, which + why, shapes))
                break
    n, wrong = len(inputs), len(details)
    if wrong == 0:
        print(_clip(f"{label}: correct on {n} of {n} inputs."))
    else:
        print(_clip(f"{label}: wrong on {wrong} of {n} inputs:"))
        print("\n".join(details))
    return wrong == 0
