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
"""

from __future__ import annotations

import torch


def shifted_moments(
    x: torch.Tensor, dims: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, deviations from the mean and biased variance of ``x`` over ``dims``.

    Parameters
    ----------
    x : Tensor, any shape
        Floating-point input.
    dims : tuple of int
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


def count(x: torch.Tensor, dims: tuple[int, ...]) -> int:
    """Number of entries of ``x`` reduced together when reducing over ``dims``."""
    n = 1
    for dim in dims:
        n *= x.shape[dim]
    return n


def unbiased(var: torch.Tensor, n: int) -> torch.Tensor:
    """Bessel's correction: ``var * n / (n - 1)`` turns a biased variance of ``n`` values into an unbiased one."""
    return var * (n / (n - 1))


@torch.no_grad()
def blend_(running: torch.Tensor, batch: torch.Tensor, factor: float) -> None:
    """In place: ``running = (1 - factor) * running + factor * batch`` (PyTorch's momentum convention)."""
    running.mul_(1.0 - factor).add_(batch.detach().reshape(running.shape), alpha=factor)


def channel_view(param: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape a per-channel vector of shape (C,) to (1, C, 1, ..., 1), to broadcast against (N, C, *)."""
    return param.reshape(1, -1, *([1] * (ndim - 2)))
