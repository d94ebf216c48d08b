"""Moments and running averages shared by the normalization layers.

The mean and variance are computed in two passes around a *shift* taken from the data itself:
with ``K`` one entry of each group being reduced (the first one),

.. math::

    \\mu = K + \\frac{1}{n}\\sum_i (x_i - K), \\qquad
    c_i = (x_i - K) - \\frac{1}{n}\\sum_j (x_j - K), \\qquad
    \\sigma^2 = \\frac{1}{n}\\sum_i c_i^2 .

Mathematically ``K`` cancels. Numerically it buys two things:

* a constant group gives ``x_i - K = 0`` exactly, so every deviation ``c_i`` is exactly 0 and the
  layer returns exactly ``beta`` (a plain float32 mean of ``n`` copies of 12345.678 is off by one
  unit in the last place for some ``n``, and that residual divided by ``sqrt(eps)`` is of order 1);
* data with a large mean and a small spread (mean 1e4, std 1 in float32) are first brought near
  zero, and ``x_i - K`` is exact there (Sterbenz lemma), so the deviations lose no digits.

``K`` is detached: it cancels in the result, so autograd gives the usual gradients.

Half precision: float16 and bfloat16 input is computed in float32 (:func:`working_copy`) and the
result is cast back (:func:`restore_dtype`), as PyTorch's kernels do: the output has the input's
dtype, the statistics are float32. Every function here is TorchScript-compatible.
"""

from __future__ import annotations

from typing import List

import torch


def working_copy(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is float16 or bfloat16 (statistics in 16 bits lose too much), else ``x``."""
    if x.dtype == torch.float16 or x.dtype == torch.bfloat16:
        return x.float()
    return x


def restore_dtype(out: torch.Tensor, input: torch.Tensor) -> torch.Tensor:
    """``out`` cast back to ``input``'s dtype when :func:`working_copy` promoted it."""
    if input.dtype == torch.float16 or input.dtype == torch.bfloat16:
        return out.to(input.dtype)
    return out


def shifted_moments(
    x: torch.Tensor, dims: List[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, deviations from the mean and biased variance of ``x`` over ``dims``.

    Parameters
    ----------
    x : Tensor, any shape
        Floating-point input.
    dims : list of int
        The dimensions reduced over (non-negative indices).

    Returns
    -------
    mean : Tensor, shape of ``x`` with ``dims`` set to 1
        :math:`\\mu`, exactly the common value when a group is constant.
    centered : Tensor, shape of ``x``
        :math:`x - \\mu`, exactly 0 in a constant group.
    var : Tensor, shape of ``mean``
        Biased variance :math:`\\frac{1}{n}\\sum_i (x_i - \\mu)^2`.
    """
    shift = x.detach()
    for dim in dims:
        shift = shift.narrow(dim, 0, 1)
    shifted = x - shift
    shifted_mean = shifted.mean(dim=dims, keepdim=True)
    centered = shifted - shifted_mean
    var = (centered * centered).mean(dim=dims, keepdim=True)
    return shift + shifted_mean, centered, var


def count(x: torch.Tensor, dims: List[int]) -> int:
    """Number of entries of ``x`` reduced together when reducing over ``dims``."""
    n = 1
    for dim in dims:
        n *= x.shape[dim]
    return n


def unbiased(var: torch.Tensor, n: int) -> torch.Tensor:
    """Bessel's correction: ``var * n / (n - 1)`` turns a biased variance of ``n`` values into an unbiased one."""
    return var * (n / (n - 1))


def blend_(running: torch.Tensor, batch: torch.Tensor, factor: float) -> None:
    """In place: ``running = (1 - factor) * running + factor * batch`` (PyTorch's momentum convention)."""
    with torch.no_grad():
        running.mul_(1.0 - factor).add_(batch.detach().reshape(running.shape).to(running.dtype), alpha=factor)


def channel_view(param: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape a per-channel vector of shape (C,) to (1, C, 1, ..., 1), to broadcast against (N, C, *)."""
    shape = [1, -1] + [1] * (ndim - 2)
    return param.reshape(shape)


def channel_dims(ndim: int) -> List[int]:
    """Batch norm's reduction dims for an ndim-D (N, C, *) input: every dim but the channel dim 1."""
    return [0] + list(range(2, ndim))
