"""Batch normalization (Ioffe & Szegedy 2015, arXiv:1502.03167) from tensor operations.

For a channel c, with the batch statistics taken over every axis but the channel axis
(N for (N, C); N and L for (N, C, L); N, H and W for (N, C, H, W)), n values in all:

.. math::

    \\mu_B = \\frac{1}{n}\\sum_i x_i, \\qquad
    \\sigma_B^2 = \\frac{1}{n}\\sum_i (x_i - \\mu_B)^2, \\qquad
    y_i = \\gamma \\frac{x_i - \\mu_B}{\\sqrt{\\sigma_B^2 + \\epsilon}} + \\beta .

In training the running statistics move toward the batch's, with PyTorch's convention
``running = (1 - momentum) * running + momentum * batch``; the variance stored is the *unbiased*
one, :math:`\\frac{n}{n-1}\\sigma_B^2`, while the normalization uses the biased one. With
``momentum=None`` the factor is ``1 / num_batches_tracked``: a plain average of all batches so far.
In eval mode the running statistics replace the batch's. Gradients come from autograd.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import batchnorm as _torch_norm

from companion import _checks
from companion.nn._base import _NormBase
from companion.nn._stats import (
    blend_,
    channel_dims,
    count,
    restore_dtype,
    shifted_moments,
    unbiased,
    working_copy,
)


def check_values_per_channel(input: torch.Tensor) -> None:
    """Raise ``ValueError`` when a channel holds a single value (N times the spatial size is 1).

    A single value has zero variance: every output would be exactly ``beta`` and carry no gradient.
    """
    n = count(input, channel_dims(input.dim()))
    if n == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {_checks.shape_text(input)}"
        )


class _BatchNorm(_NormBase, _torch_norm._BatchNorm):
    """Batch normalization over dimension 1 (the channels); subclasses fix the accepted shapes.

    An instance of ``torch.nn.modules.batchnorm._BatchNorm``, so PyTorch's tools find it (see the
    package docstring's table); the forward pass is companion's.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalize ``input`` of shape (N, C, *) per channel; the output has the same shape and dtype.

        Raises ``ValueError`` in training when the batch statistics are NaN or infinite (NaN or
        infinity in ``input``, or a spread whose variance overflows), before any running statistic
        moves. An empty batch (N = 0) gives an empty output and, as in PyTorch, counts one batch in
        ``num_batches_tracked`` without moving the running statistics.
        """
        self._check_input(input)
        # Batch statistics in training, and in eval too when there are no running statistics.
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        work = working_copy(input)
        if not bn_training:
            return restore_dtype(self._normalize_with_running_stats(work), input)
        # Running statistics move only in training, and only while they are tracked.
        update = self.training and self.track_running_stats
        if input.numel() == 0:
            if update:
                self._count_batch()
            return restore_dtype(self._affine(work), input)
        return restore_dtype(self._normalize_with_batch_stats(work, update), input)

    def _batch_moments(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, deviations and biased variance per channel, checked: one value per channel or a
        NaN/infinite statistic raises ``ValueError``."""
        check_values_per_channel(input)
        mean, centered, var = shifted_moments(input, channel_dims(input.dim()))
        _checks.finite_statistics("input", var, input)
        return mean, centered, var

    def _normalize_with_batch_stats(self, input: torch.Tensor, update: bool) -> torch.Tensor:
        """Training-mode output; when ``update``, fold this batch's statistics into the running ones."""
        return self._normalize_chunk(input, update)

    def _normalize_chunk(self, input: torch.Tensor, update: bool) -> torch.Tensor:
        """Batch norm of ``input`` with its own statistics (the whole batch, or one ghost batch)."""
        mean, centered, var = self._batch_moments(input)
        if update:
            self._update_running_stats(mean, unbiased(var, count(input, channel_dims(input.dim()))))
        return self._affine(centered * torch.rsqrt(var + self.eps))

    def _count_batch(self) -> float:
        """Add 1 to ``num_batches_tracked``; return the weight of this batch in the running averages."""
        num_batches_tracked = self.num_batches_tracked
        if num_batches_tracked is None:
            return 0.0
        with torch.no_grad():
            num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:
            return 1.0 / float(num_batches_tracked)
        return momentum

    def _update_running_stats(self, mean: torch.Tensor, var_unbiased: torch.Tensor) -> None:
        """Count one more batch and blend its mean and unbiased variance into the running statistics."""
        factor = self._count_batch()
        running_mean, running_var = self.running_mean, self.running_var
        if running_mean is not None and running_var is not None:
            blend_(running_mean, mean, factor)
            blend_(running_var, var_unbiased, factor)


class BatchNorm1d(_BatchNorm, nn.BatchNorm1d):
    """Batch normalization of (N, C) features or (N, C, L) sequences, per channel over N (and L).

    Same constructor, defaults, parameters and buffers as :class:`torch.nn.BatchNorm1d`, and an
    instance of it (``isinstance(layer, torch.nn.BatchNorm1d)`` is True; only ``forward`` differs):
    ``BatchNorm1d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
    device=None, dtype=None, *, bias=True)``.

    Examples
    --------
    >>> bn = BatchNorm1d(3)
    >>> bn(torch.randn(8, 3)).shape
    torch.Size([8, 3])
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [2, 3], "(N, C) or (N, C, L)")


class BatchNorm2d(_BatchNorm, nn.BatchNorm2d):
    """Batch normalization of (N, C, H, W) images, per channel over N, H and W.

    Same constructor, defaults, parameters and buffers as :class:`torch.nn.BatchNorm2d`, and an
    instance of it (only ``forward`` differs).
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [4], "(N, C, H, W)")
