r"""Numerical gradients by centered finite differences, to check a hand-written backward pass.

The check compares a backward pass with

.. math::
    \frac{\partial}{\partial x_i} \sum_j f(x)_j \, g_j
    \approx \sum_j \frac{f(x + h e_i)_j - f(x - h e_i)_j}{2h} \, g_j ,

whose error is :math:`O(h^2)` from truncation plus about :math:`\epsilon |f| / h` from rounding:
with float64 (:math:`\epsilon \approx 2.2 \times 10^{-16}`) and ``h = 1e-5`` both are near
1e-10, so a correct backward pass agrees to a relative error far below 1e-7. In float32
(:math:`\epsilon \approx 1.2 \times 10^{-7}`) the rounding term alone is near 1e-2, which is why
the functions here insist on float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from companion._checks import positive_float

__all__ = ["numerical_gradient", "relative_error"]


def numerical_gradient(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    dout: np.ndarray | None = None,
    h: float = 1e-5,
) -> np.ndarray:
    """Gradient of ``sum(f(x) * dout)`` with respect to ``x``, by centered differences.

    Each entry of ``x`` is perturbed in place by ``+h`` and ``-h`` in turn and restored afterwards,
    so ``f`` must read ``x`` afresh on every call (a closure over ``x`` does).

    Parameters
    ----------
    f : callable
        ``f(x) -> ndarray`` of any shape; called ``2 * x.size`` times.
    x : ndarray, float64
        The point at which to differentiate; modified during the call, restored on return.
    dout : ndarray, optional
        Upstream gradient with the shape of ``f(x)``; default all ones (the gradient of the sum).
    h : float
        Step size.

    Returns
    -------
    ndarray, shape of x, float64
        ``grad[i] = sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2 h)``.

    Raises
    ------
    TypeError
        ``x`` is not a numpy array of dtype float64.
    ValueError
        ``x`` is read-only, ``h`` is not a positive float, or ``dout`` does not have the shape of
        ``f(x)``.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array (it is perturbed in place), got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(
            f"x must have dtype float64, got {x.dtype}: finite differences in lower precision are "
            "dominated by rounding error"
        )
    if not x.flags.writeable:
        raise ValueError("x must be writeable (it is perturbed in place): pass a copy, x.copy(), and let f read it")
    h = positive_float("h", h)
    out_shape = np.shape(f(x))
    if dout is None:
        dout = np.ones(out_shape)
    else:
        dout = np.asarray(dout, dtype=np.float64)
        if dout.shape != out_shape:
            raise ValueError(f"dout must have the shape of f(x), {out_shape}, got {dout.shape}")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        plus = np.array(f(x), dtype=np.float64)  # a copy: f may return a view or reuse a buffer
        x[index] = original - h
        minus = np.array(f(x), dtype=np.float64)
        x[index] = original
        grad[index] = np.sum((plus - minus) * dout) / (2.0 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    r"""Largest difference relative to the largest magnitude: a scale-free distance of two arrays.

    .. math::
        \mathrm{err}(a, b) = \frac{\max_i |a_i - b_i|}{\max\big(\max_i (|a_i| + |b_i|),\ \text{tiny}\big)}

    with ``tiny`` the smallest positive normal float64 (so two zero arrays give 0, not NaN). Unlike
    CS231n's ``rel_error`` (the maximum of the element-wise ratios, with a floor of 1e-8), a
    component that happens to be near zero cannot dominate; the value lies in [0, 1].

    Parameters
    ----------
    a, b : array_like, same shape, finite

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Different shapes, or NaN or infinity in ``a`` or ``b`` (no distance in [0, 1] describes
        them; a NaN gradient is a bug to look at, not a small error).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    for name, arr in (("a", a), ("b", b)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinity: the relative error is undefined")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a) + np.abs(b))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b)) / scale)
