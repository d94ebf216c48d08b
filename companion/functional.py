"""Batch norm and layer norm in numpy, as forward/backward pairs.

Each ``*_forward(x, ...)`` returns ``(out, cache)`` and each ``*_backward(dout, cache)`` returns
``(dx, dgamma, dbeta)``, the CS231n convention. Batch norm's backward pass is written twice: once
stage by stage along the computational graph (the readable reference) and once in closed form
(the fast one). The running-statistics helpers spell out PyTorch's and Keras' update rules so
the two can be compared line by line.

Shapes
------
Batch norm normalizes every channel over all the other axes:

- ``(N, D)``: over the batch, per feature (``BatchNorm1d``);
- ``(N, C, L)`` and ``(N, C, H, W)``: over the batch and the positions, per channel
  (``BatchNorm1d`` on sequences, ``BatchNorm2d``).

Layer norm normalizes every example over all its own axes: ``(N, D)`` over ``D``, ``(N, C, H, W)``
over ``(C, H, W)``, with ``gamma`` and ``beta`` of shape ``x.shape[1:]``, like
``torch.nn.LayerNorm(x.shape[1:])``.

Numerics
--------
The statistics are computed in the input's dtype (float32 stays float32) by the *shifted
two-pass* algorithm: subtract one sample of each group (a shift ``K``), average the shifted data,
subtract that average, then average the squared deviations. Never ``E[x²] − E[x]²``, which
cancels catastrophically when the mean is large compared with the spread. The shift makes the
deviations of a constant channel exactly zero, so such a channel comes out exactly ``beta``.
Outputs and gradients have x's dtype (``gamma``, ``beta`` and ``dout`` are cast to it).

Speed
-----
Batch norm does a few flops per value, so its time is the time to move the data: every pass over
the array counts, and numpy cannot fuse operations. Batch norm's forward pass allocates only its
output and makes six passes over the data (subtract the shift, sum, centre, sum of squares, then
scale and shift in place); the compact backward allocates only ``dx`` and makes seven. Per-channel
sums are matrix products with a vector of ones (BLAS reads the data once, at memory speed), and
per-channel factors are laid out as a ``(C, H·W)`` plane, one example's worth, so that numpy's
inner loops run over contiguous memory instead of a ``(C, 1, 1)`` broadcast (about twice as fast
per pass on a float32 ``(N, C, H, W)`` array, measured). NaN and infinity are detected on the
per-channel statistics (they propagate into them), not by an extra pass over the input. Torch
tensors are accepted where they carry no autograd graph; one that requires grad is refused by name.
``benchmarks/`` measures all of this against PyTorch's fused kernels and a plain copy.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
import torch

from companion._checks import momentum as _check_momentum
from companion._checks import positive_float

__all__ = [
    "NormCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_compact",
    "layernorm_forward",
    "layernorm_backward",
    "update_running_stats_torch",
    "update_running_stats_keras",
]


class NormCache(NamedTuple):
    """What a forward pass keeps for its backward pass.

    Like PyTorch's autograd, the cache keeps a reference to the input ``x`` (no copy) and the
    statistics, and the backward pass recomputes ``x − mean`` from them: modify ``x`` in place
    between the forward and the backward pass and the gradient is wrong.

    Attributes
    ----------
    x : ndarray
        The input of the forward pass.
    shift, offset : ndarray, size 1 along ``axes``
        The shifted two-pass statistics: ``shift`` is the first value of each group, ``offset``
        the mean of ``x − shift``; the mean is ``shift + offset``.
    var : ndarray
        The biased variance of each group (divided by ``count``): shape (C,) for batch norm (one per
        channel), (N,) for layer norm (one per example).
    inv_std : ndarray, shape of var
        ``1 / sqrt(var + eps)``.
    gamma : ndarray
        The scale, in x's dtype: shape (C,) for batch norm, ``x.shape[1:]`` for layer norm.
    eps : float
        The constant added to the variance.
    axes : tuple of int
        The axes reduced over.
    """

    x: np.ndarray
    shift: np.ndarray
    offset: np.ndarray
    var: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray
    eps: float
    axes: tuple[int, ...]

    @property
    def mean(self) -> np.ndarray:
        """The mean of each group, shape of ``var``."""
        return (self.shift + self.offset).reshape(self.var.shape)

    @property
    def count(self) -> int:
        """Number of values behind each statistic: ``N`` (or ``N·L``, ``N·H·W``) for batch norm."""
        return self.x.size // self.var.size

    def deviations(self) -> np.ndarray:
        """``x − mean`` as a new array, computed as in the forward pass: ``(x − shift) − offset``."""
        deviations = self.x - self.shift
        deviations -= self.offset
        return deviations

    @property
    def x_hat(self) -> np.ndarray:
        """The normalized input ``(x − mean) / sqrt(var + eps)`` (recomputed on each access)."""
        return self.deviations() * self.inv_std.reshape(self.offset.shape)


# ----------------------------------------------------------------------------- checks


def _numpy(name: str, value: object) -> np.ndarray:
    """``value`` as a numpy array; a torch tensor that requires grad is refused by name.

    ``np.asarray`` would fail on it with torch's "Can't call numpy() on Tensor that requires grad";
    silently detaching would hide that this numpy code breaks the autograd graph.
    """
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            raise TypeError(
                f"{name} is a torch tensor that requires grad; these functions work on numpy arrays: "
                f"pass {name}.detach().numpy()"
            )
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _check_x(x: object, ndims: tuple[int, ...]) -> np.ndarray:
    """Return x as a float array with an allowed ndim (NaN/inf are caught later, cheaply)."""
    arr = _numpy("x", x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"x must be a floating-point array, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        shapes = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"x must be {shapes}, got shape {arr.shape}")
    return arr


def _check_eps(eps: object, dtype: np.dtype) -> float:
    eps = positive_float("eps", eps)
    if dtype.type(eps) == 0:
        raise ValueError(f"eps must be representable in {dtype}: {eps!r} rounds to 0")
    return eps


def _check_param(name: str, value: object, shape: tuple[int, ...], what: str, dtype: np.dtype) -> np.ndarray:
    """Return gamma or beta as an array of x's dtype with the expected shape, else raise."""
    arr = _numpy(name, value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} to match {what}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr.astype(dtype, copy=False)


def _check_finite_stat(name: str, stat: np.ndarray, source: np.ndarray) -> None:
    """Raise if a statistic is NaN/inf: NaN or inf anywhere in ``source`` propagates into it.

    Checking the small statistic instead of the whole input saves a full pass over the data.
    """
    if not np.all(np.isfinite(stat)):
        if np.all(np.isfinite(source)):
            raise ValueError(f"{name} is too large for {source.dtype}: its statistics overflow")
        raise ValueError(f"{name} contains NaN or infinity")


def _check_dout(dout: object, cache: object) -> np.ndarray:
    if not isinstance(cache, NormCache):
        raise TypeError(f"cache must be the NormCache returned by a forward pass, got {type(cache).__name__}")
    arr = _numpy("dout", dout)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"dout must be a floating-point array, got dtype {arr.dtype}")
    if arr.shape != cache.x.shape:
        raise ValueError(f"dout must have the shape of x, {cache.x.shape}, got {arr.shape}")
    return arr.astype(cache.x.dtype, copy=False)


# ----------------------------------------------------------------------------- helpers


def _channel_axes(ndim: int) -> tuple[int, ...]:
    """Batch norm's reduction axes: all but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


def _per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """Shape a (C,) vector to broadcast along axis 1 of an ndim-D array: (C,), (C, 1), (C, 1, 1)."""
    return values.reshape((-1,) + (1,) * (ndim - 2))


def _per_example(values: np.ndarray, ndim: int) -> np.ndarray:
    """Shape an (N,) vector to broadcast along axis 0 of an ndim-D array: (N, 1), (N, 1, 1), ..."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


def _by_channel(x: np.ndarray) -> np.ndarray:
    """x as (N, C) or, for (N, C, L) and (N, C, H, W), as (N, C, L) with the positions in one axis L.

    A view for contiguous input. Batch norm's statistics are then sums over axes 0 and 2.
    """
    return x if x.ndim == 2 else x.reshape(x.shape[0], x.shape[1], -1)


def _plane(values: np.ndarray, view: np.ndarray) -> np.ndarray:
    """Per-channel values, shape (C,), laid out like one example of ``view``: (C,) or a (C, L) plane.

    numpy's fast inner loops want operands that are contiguous or single scalars. A (C, 1) vector
    broadcast along L is neither and halves the speed of ``view *= factor``; a contiguous plane
    (1/N of the data, cheap to build) matches the layout of every example exactly.
    """
    return values if view.ndim == 2 else np.repeat(values, view.shape[2]).reshape(view.shape[1:])


def _channel_sum(a: np.ndarray) -> np.ndarray:
    """Per-channel sum of an (N, C) or (N, C, L) array, shape (C,): a matrix product with ones.

    BLAS reads the array once at memory speed; ``a.sum(axis=(0, 2))`` is slower on this layout.
    """
    if a.ndim == 2:
        return np.ones(a.shape[0], a.dtype) @ a
    return (a @ np.ones(a.shape[2], a.dtype)).sum(axis=0)


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel ``(a * b).sum(...)`` of two (N, C) or (N, C, L) arrays, shape (C,), no temporary."""
    if a.ndim == 2:
        return np.einsum("nc,nc->c", a, b)
    return np.vecdot(a, b).sum(axis=0)  # dot products along the contiguous axis L, then over N


def _sum_of_products(a: np.ndarray, b: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``(a * b).sum(axes)`` in one pass, without the temporary product (``numpy.einsum``)."""
    letters = "abcdefgh"[: a.ndim]
    kept = "".join(letters[i] for i in range(a.ndim) if i not in axes)
    return np.einsum(f"{letters},{letters}->{kept}", a, b)


def _centre(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``x − mean`` (a new array), the shift and the offset: the shifted two-pass mean.

    The shift ``K`` is the first value of each group. ``x − K`` is exact when the values lie within
    a factor 2 of ``K`` (Sterbenz' lemma) and zero for a constant group; its mean, the offset, is
    small, hence accurate, and the mean of ``x`` is ``K + offset``.
    """
    first = tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))
    shift = x[first].copy()
    with np.errstate(over="ignore", invalid="ignore"):  # NaN/inf/overflow: checked just below
        deviations = x - shift
        offset = deviations.mean(axis=axes, keepdims=True)
    _check_finite_stat("x", offset, x)
    deviations -= offset
    return deviations, shift, offset


# ----------------------------------------------------------------------------- batch norm


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, NormCache]:
    r"""Batch norm in training mode: normalize with the statistics of this batch.

    .. math::
        \mu_c = \frac{1}{m}\sum_i x_{ic}, \quad
        \sigma_c^2 = \frac{1}{m}\sum_i (x_{ic} - \mu_c)^2, \quad
        y_{ic} = \gamma_c \frac{x_{ic} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c

    where ``i`` runs over the ``m`` values of channel ``c`` (all axes but axis 1) and the variance is
    the biased one (divided by ``m``), as in Ioffe & Szegedy's Algorithm 1 and PyTorch.

    Parameters
    ----------
    x : ndarray, shape (N, D), (N, C, L) or (N, C, H, W), float32 or float64
    gamma, beta : array_like, shape (D,) or (C,)
        Scale and shift; cast to x's dtype.
    eps : float
        Added to the variance inside the square root.

    Returns
    -------
    out : ndarray, shape and dtype of x
    cache : NormCache
        For :func:`batchnorm_backward`; ``cache.mean`` and ``cache.var`` (biased) are the batch
        statistics, ``cache.count`` the number ``m`` of values per channel.

    Raises
    ------
    TypeError
        x is not a floating-point array.
    ValueError
        Bad shapes, non-positive eps, NaN/inf in x, or only one value per channel.
    """
    x = _check_x(x, (2, 3, 4))
    channels = x.shape[1]
    what = f"x's {channels} {'features' if x.ndim == 2 else 'channels'}"
    gamma = _check_param("gamma", gamma, (channels,), what, x.dtype)
    beta = _check_param("beta", beta, (channels,), what, x.dtype)
    eps = _check_eps(eps, x.dtype)
    if x.size <= channels:
        raise ValueError(
            f"x must hold more than 1 value per channel to compute batch statistics, got shape {x.shape}"
        )
    count = x.size // channels

    view = _by_channel(x)  # (N, C) or (N, C, L)
    shift = (view[0, :, 0] if view.ndim == 3 else view[0]).copy()  # K: the first value of each channel
    with np.errstate(over="ignore", invalid="ignore"):  # NaN/inf/overflow: checked on the statistics
        out = view - _plane(shift, view)  # x − K, the only new array: it becomes the output in place
        offset = _channel_sum(out) / count  # mean(x − K); the mean is K + offset
        _check_finite_stat("x", offset, x)
        out -= _plane(offset, view)  # x − μ
        var = _channel_dot(out, out) / count  # biased: mean of squared deviations
    _check_finite_stat("x", var, x)
    inv_std = 1.0 / np.sqrt(var + eps)
    out *= _plane(gamma * inv_std, view)  # γ · x̂ = (x − μ) · γ/σ
    out += _plane(beta, view)
    stat_shape = (1, channels) + (1,) * (x.ndim - 2)  # size 1 along the reduced axes, like keepdims
    cache = NormCache(
        x, shift.reshape(stat_shape), offset.reshape(stat_shape), var, inv_std, gamma, eps, _channel_axes(x.ndim)
    )
    return out.reshape(x.shape), cache


def batchnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm backward, stage by stage along the computational graph.

    The forward pass, as a graph of elementary nodes (``m`` values per channel)::

        mu      = mean(x)                 # over the batch (and positions)
        xmu     = x - mu
        sq      = xmu ** 2
        var     = mean(sq)
        sqrtvar = sqrt(var + eps)
        ivar    = 1 / sqrtvar
        x_hat   = xmu * ivar
        out     = gamma * x_hat + beta

    Each stage below multiplies the upstream gradient by one node's local derivative, in reverse
    order. Where a node feeds several others (``xmu`` feeds ``sq`` and ``x_hat``; ``x`` feeds ``xmu``
    and ``mu``) the gradients of its paths add up; where a per-channel node is broadcast over the
    batch (``mu``, ``ivar``, ``gamma``, ``beta``) its gradient is a sum over the batch. Written for
    reading; :func:`batchnorm_backward_compact` computes the same thing faster.

    Parameters
    ----------
    dout : ndarray, shape of x
        Upstream gradient ∂L/∂out.
    cache : NormCache
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : ndarray, shape of x
    dgamma, dbeta : ndarray, shape (C,)
    """
    dout = _check_dout(dout, cache)
    ndim, axes, m = dout.ndim, cache.axes, cache.count
    # the forward nodes, recomputed from the cache
    gamma = _per_channel(cache.gamma, ndim)
    sqrtvar = np.sqrt(_per_channel(cache.var, ndim) + cache.eps)
    ivar = 1.0 / sqrtvar
    xmu = cache.deviations()
    x_hat = xmu * ivar

    # out = gamma * x_hat + beta:  ∂out/∂beta = 1, ∂out/∂gamma = x_hat, ∂out/∂x_hat = gamma
    dbeta = dout.sum(axis=axes)
    _check_finite_stat("dout", dbeta, dout)
    dgamma = (dout * x_hat).sum(axis=axes)
    dx_hat = dout * gamma
    # x_hat = xmu * ivar:  ∂x_hat/∂ivar = xmu (summed: ivar is shared), ∂x_hat/∂xmu = ivar
    divar = (dx_hat * xmu).sum(axis=axes, keepdims=True)
    dxmu_direct = dx_hat * ivar
    # ivar = 1 / sqrtvar:  ∂ivar/∂sqrtvar = −1 / sqrtvar²
    dsqrtvar = -divar / sqrtvar**2
    # sqrtvar = sqrt(var + eps):  ∂sqrtvar/∂var = 1 / (2 sqrtvar)
    dvar = dsqrtvar / (2.0 * sqrtvar)
    # var = mean(sq):  ∂var/∂sq = 1/m for every element
    dsq = np.broadcast_to(dvar / m, dout.shape)
    # sq = xmu²:  ∂sq/∂xmu = 2 xmu; xmu's two paths add
    dxmu = dxmu_direct + 2.0 * xmu * dsq
    # xmu = x − mu:  ∂xmu/∂x = 1, ∂xmu/∂mu = −1 (summed: mu is shared)
    dx_direct = dxmu
    dmu = -dxmu.sum(axis=axes, keepdims=True)
    # mu = mean(x):  ∂mu/∂x = 1/m for every element; x's two paths add
    dx = dx_direct + dmu / m
    return dx, dgamma, dbeta


def batchnorm_backward_compact(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Batch norm backward in closed form.

    Per channel, with means over the channel's ``m`` values and :math:`\sigma = \sqrt{\sigma^2 + \epsilon}`:

    .. math::
        \frac{\partial L}{\partial \beta} = \sum_i g_i, \quad
        \frac{\partial L}{\partial \gamma} = \sum_i g_i \hat x_i, \quad
        \frac{\partial L}{\partial x_i} = \frac{\gamma}{\sigma}
            \Big(g_i - \overline{g} - \hat x_i \, \overline{g \hat x}\Big)

    where ``g = dout``. The gradient ``dx`` is ``dout`` scaled by ``γ/σ`` with its components along
    the ones vector and along ``x̂`` removed: it sums to zero and is orthogonal to ``x̂``.

    Computed in four in-place passes over one new array that starts as ``x − K`` (``K``, the
    forward pass's shift): ``Σ g (x − μ) = Σ g (x − K) − (μ − K) Σ g``, and the per-channel
    constants of the formula are folded together.

    Parameters and returns as :func:`batchnorm_backward`.
    """
    dout = _check_dout(dout, cache)
    view, g, m = _by_channel(cache.x), _by_channel(dout), cache.count
    offset, inv_std = cache.offset.reshape(-1), cache.inv_std  # μ − K and 1/σ, shape (C,)
    dbeta = _channel_sum(g)  # Σ g
    _check_finite_stat("dout", dbeta, dout)
    dx = view - _plane(cache.shift.reshape(-1), view)  # x − K; becomes dx in place
    dgamma = (_channel_dot(g, dx) - offset * dbeta) * inv_std  # Σ g (x − μ)/σ = Σ g x̂
    proj = dgamma * inv_std / m  # mean(g x̂) / σ
    dx *= _plane(-proj, view)  # −(x − K) · mean(g x̂)/σ
    dx += _plane(proj * offset - dbeta / m, view)  # = −x̂ · mean(g x̂) − mean(g)
    dx += g
    dx *= _plane(cache.gamma * inv_std, view)  # · γ/σ
    return dx.reshape(dout.shape), dgamma, dbeta


# ----------------------------------------------------------------------------- layer norm


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, NormCache]:
    r"""Layer norm: normalize every example over all its own axes.

    For an example ``x_n`` with ``D`` values (``D = C·H·W`` for images):

    .. math::
        \mu_n = \frac{1}{D}\sum_j x_{nj}, \quad
        \sigma_n^2 = \frac{1}{D}\sum_j (x_{nj} - \mu_n)^2, \quad
        y_{nj} = \gamma_j \frac{x_{nj} - \mu_n}{\sqrt{\sigma_n^2 + \epsilon}} + \beta_j

    No batch statistics, so training and inference are the same. Equals
    ``torch.nn.functional.layer_norm(x, x.shape[1:], gamma, beta, eps)``.

    Parameters
    ----------
    x : ndarray, shape (N, D), (N, C, L) or (N, C, H, W), float32 or float64
    gamma, beta : array_like, shape ``x.shape[1:]``
        Element-wise scale and shift (one per normalized position, like ``torch.nn.LayerNorm``).
    eps : float

    Returns
    -------
    out : ndarray, shape and dtype of x
    cache : NormCache
        ``cache.mean`` and ``cache.var`` have shape (N,).
    """
    x = _check_x(x, (2, 3, 4))
    what = f"the normalized shape x.shape[1:] = {x.shape[1:]}"
    gamma = _check_param("gamma", gamma, x.shape[1:], what, x.dtype)
    beta = _check_param("beta", beta, x.shape[1:], what, x.dtype)
    eps = _check_eps(eps, x.dtype)
    axes = tuple(range(1, x.ndim))
    count = x.size // x.shape[0]

    out, shift, offset = _centre(x, axes)  # out holds x − μ; scaled in place below
    var = _sum_of_products(out, out, axes) / count
    _check_finite_stat("x", var, x)
    inv_std = 1.0 / np.sqrt(var + eps)
    out *= _per_example(inv_std, x.ndim)  # x̂
    out *= gamma
    out += beta
    return out, NormCache(x, shift, offset, var, inv_std, gamma, eps, axes)


def layernorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Layer norm backward in closed form.

    With ``g = dout · γ`` and means over each example's ``D`` values:

    .. math::
        \frac{\partial L}{\partial x_{nj}} = \frac{1}{\sigma_n}
            \Big(g_{nj} - \overline{g_n} - \hat x_{nj} \, \overline{g_n \hat x_n}\Big),

    the batch-norm formula with the roles of the axes exchanged and γ moved inside (it varies
    along the normalized axes). ``dgamma`` and ``dbeta`` sum over the batch.

    Parameters
    ----------
    dout : ndarray, shape of x
    cache : NormCache
        From :func:`layernorm_forward`.

    Returns
    -------
    dx : ndarray, shape of x
    dgamma, dbeta : ndarray, shape ``x.shape[1:]``
    """
    dout = _check_dout(dout, cache)
    axes, d = cache.axes, cache.count
    dbeta = dout.sum(axis=0)
    _check_finite_stat("dout", dbeta, dout)
    dx = cache.x_hat  # a new array; becomes dx in place
    dgamma = _sum_of_products(dout, dx, (0,))
    g = dout * cache.gamma  # ∂L/∂x̂
    mean_g = g.mean(axis=axes)
    mean_g_xhat = _sum_of_products(g, dx, axes) / d
    dx *= _per_example(-mean_g_xhat, dx.ndim)  # − x̂ · mean(g · x̂)
    dx += g
    dx -= _per_example(mean_g, dx.ndim)  # − mean(g)
    dx *= _per_example(cache.inv_std, dx.ndim)  # · 1/σ
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- running statistics


def _check_stats(**arrays: object) -> dict[str, np.ndarray]:
    """The statistics as float arrays of running_mean's shape; NaN or infinity raises (they are
    a few values per channel, so checking them is free, and a NaN would stay in the running
    statistics for good)."""
    out = {name: _numpy(name, a) for name, a in arrays.items()}
    shape = out["running_mean"].shape
    for name, arr in out.items():
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
        if arr.shape != shape:
            raise ValueError(f"{name} must have the shape of running_mean, {shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinity")
    return out


def _batch_count(value: object) -> int:
    """``num_batches_tracked`` as a positive int: an int, a numpy integer or a one-element integer
    tensor (the buffer ``bn.num_batches_tracked`` itself)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value.item())
    elif isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.integer):
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"num_batches_tracked must be a positive int (or bn.num_batches_tracked), got {value!r}")
    return int(value)


def update_running_stats_torch(
    running_mean: np.ndarray,
    running_var: np.ndarray,
    batch_mean: np.ndarray,
    batch_var_unbiased: np.ndarray,
    momentum: float | None = 0.1,
    num_batches_tracked: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""PyTorch's running-statistics update (``torch.nn.BatchNorm*`` in training mode).

    .. math::
        r \leftarrow (1 - \alpha)\, r + \alpha\, b

    with :math:`\alpha` = ``momentum`` (default 0.1), or :math:`\alpha = 1/t` when ``momentum`` is
    None, where ``t = num_batches_tracked``: the cumulative average of all batches seen.
    PyTorch feeds the UNBIASED batch variance (divided by ``m − 1``) into ``running_var`` while it
    normalizes the batch itself with the biased one; pass
    ``cache.var * cache.count / (cache.count - 1)``.

    Parameters
    ----------
    running_mean, running_var : ndarray, shape (C,)
        Current running statistics (PyTorch starts them at 0 and 1).
    batch_mean : ndarray, shape (C,)
    batch_var_unbiased : ndarray, shape (C,)
    momentum : float in [0, 1] or None
        Weight of the new batch. Note the convention: Keras' ``momentum`` is ``1 − α``.
    num_batches_tracked : int or one-element integer tensor, optional
        Required when ``momentum`` is None: the value of PyTorch's ``num_batches_tracked`` buffer
        after counting this batch (1 on the first batch); ``bn.num_batches_tracked`` itself works.

    Raises
    ------
    TypeError, ValueError
        Non-float or mismatched arrays, a tensor that requires grad, NaN or infinity in any of
        the statistics, a bad momentum or count.

    Returns
    -------
    new_running_mean, new_running_var : ndarray, shape (C,)
        New arrays; the inputs are not modified.
    """
    stats = _check_stats(
        running_mean=running_mean, running_var=running_var,
        batch_mean=batch_mean, batch_var_unbiased=batch_var_unbiased,
    )
    momentum = _check_momentum(momentum, allow_none=True)
    if momentum is None:
        if num_batches_tracked is None:
            raise ValueError("num_batches_tracked is required when momentum is None (cumulative average)")
        factor = 1.0 / _batch_count(num_batches_tracked)
    else:
        factor = momentum
    new_mean = (1.0 - factor) * stats["running_mean"] + factor * stats["batch_mean"]
    new_var = (1.0 - factor) * stats["running_var"] + factor * stats["batch_var_unbiased"]
    return new_mean, new_var


def update_running_stats_keras(
    running_mean: np.ndarray,
    running_var: np.ndarray,
    batch_mean: np.ndarray,
    batch_var: np.ndarray,
    momentum: float = 0.99,
) -> tuple[np.ndarray, np.ndarray]:
    r"""The Keras / CS231n running-statistics update.

    .. math::
        r \leftarrow \rho\, r + (1 - \rho)\, b

    with :math:`\rho` = ``momentum``, the weight of the OLD value: Keras' default 0.99 equals
    PyTorch's ``momentum=0.01``, and PyTorch's default 0.1 equals Keras' 0.9. Keras'
    ``BatchNormalization`` (default ``momentum=0.99``, ``epsilon=1e-3``) feeds the biased batch
    variance, the one it normalizes with; CS231n's assignment uses this rule with
    ``momentum=0.9`` and the biased variance too (``np.var``). The rule itself does not care which
    variance you pass.

    Parameters
    ----------
    running_mean, running_var, batch_mean, batch_var : ndarray, shape (C,)
    momentum : float in [0, 1]
        Weight of the running value.

    Returns
    -------
    new_running_mean, new_running_var : ndarray, shape (C,)
        New arrays; the inputs are not modified.
    """
    stats = _check_stats(
        running_mean=running_mean, running_var=running_var, batch_mean=batch_mean, batch_var=batch_var
    )
    rho = _check_momentum(momentum, allow_none=False)
    new_mean = rho * stats["running_mean"] + (1.0 - rho) * stats["batch_mean"]
    new_var = rho * stats["running_var"] + (1.0 - rho) * stats["batch_var"]
    return new_mean, new_var
