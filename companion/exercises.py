"""Exercise checkers: a learner passes their own function, the checker compares it with the
reference on several inputs and prints one clear verdict.

Example
-------
>>> from companion.exercises import check_function
>>> check_function(my_standardize, reference_standardize, [(x1,), (x2,)], name="standardize")
standardize: correct on 2 of 2 inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch


def _as_arrays(value: Any) -> list[np.ndarray]:
    """Flatten a result (array, tensor, number, or tuple of those) into a list of float arrays."""
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _as_arrays(v)]
    if isinstance(value, torch.Tensor):
        return [value.detach().cpu().double().numpy()]
    return [np.asarray(value, dtype=np.float64)]


def _describe(args: Sequence[Any]) -> str:
    shapes = [tuple(a.shape) if hasattr(a, "shape") else type(a).__name__ for a in args]
    return ", ".join(str(s) for s in shapes)


def check_function(
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: Sequence[tuple[Any, ...]],
    name: str | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> bool:
    """Compare ``candidate(*args)`` with ``reference(*args)`` for every ``args`` in ``inputs``.

    Prints one line per failing input (its shapes and the largest difference, or the exception
    raised) and a final verdict. Inputs are copied before each call, so a function that modifies
    its arguments in place cannot spoil the comparison.

    Parameters
    ----------
    candidate, reference : callable
        Functions returning an array, a tensor, a number, or a tuple of those.
    inputs : sequence of tuple
        Argument tuples to call both functions with.
    name : str, optional
        Name shown in the verdict; defaults to the candidate's ``__name__``.
    rtol, atol : float
        Tolerances of ``numpy.allclose``.

    Returns
    -------
    bool
        True when the candidate agrees with the reference on every input.
    """
    if not callable(candidate):
        raise TypeError(f"candidate must be a function, got {type(candidate).__name__}")
    if len(inputs) == 0:
        raise ValueError("inputs must hold at least one argument tuple")
    label = name or getattr(candidate, "__name__", "your function")
    passed = 0
    for args in inputs:
        copy = lambda a: a.clone() if isinstance(a, torch.Tensor) else np.copy(a) if isinstance(a, np.ndarray) else a
        expected = _as_arrays(reference(*[copy(a) for a in args]))
        try:
            got = _as_arrays(candidate(*[copy(a) for a in args]))
        except Exception as exc:  # a learner's bug is a verdict, not a crash
            print(f"  inputs of shape {_describe(args)}: raised {type(exc).__name__}: {exc}")
            continue
        if len(got) != len(expected):
            print(f"  inputs of shape {_describe(args)}: returned {len(got)} arrays, expected {len(expected)}")
            continue
        for g, e in zip(got, expected):
            if g.shape != e.shape:
                print(f"  inputs of shape {_describe(args)}: result has shape {g.shape}, expected {e.shape}")
                break
            if not np.allclose(g, e, rtol=rtol, atol=atol):
                print(f"  inputs of shape {_describe(args)}: max |difference| = {np.max(np.abs(g - e)):.2e}")
                break
        else:
            passed += 1
    verdict = "correct" if passed == len(inputs) else "not yet right"
    print(f"{label}: {verdict} on {passed} of {len(inputs)} inputs.")
    return passed == len(inputs)
