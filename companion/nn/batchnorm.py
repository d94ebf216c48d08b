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

from companion import _checks
from companion.nn._base import _NormBase
from companion.nn._stats import blend_, count, shifted_moments, unbiased


def check_values_per_channel(input: torch.Tensor) -> None:
    """Raise ``ValueError`` when a channel holds a single value (N times the spatial size is 1).

    A single value has zero variance: every output would be exactly ``beta`` and carry no gradient.
    """
    n = count(input, (0, *range(2, input.dim())))
    if n == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {input.size()}"
        )


class _BatchNorm(_NormBase):
    """Batch normalization over dimension 1 (the channels); subclasses fix the accepted shapes."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalize ``input`` of shape (N, C, *) per channel; the output has the same shape."""
        self._check_input(input)
        # Batch statistics in training, and in eval too when there are no running statistics.
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        if not bn_training:
            return self._normalize_with_running_stats(input)
        # Running statistics move only in training, and only while they are tracked.
        update = self.training and self.track_running_stats and self.running_mean is not None
        return self._normalize_with_batch_stats(input, update)

    def _normalize_with_batch_stats(self, input: torch.Tensor, update: bool) -> torch.Tensor:
        """Training-mode output; when ``update``, fold this batch's statistics into the running ones."""
        check_values_per_channel(input)
        dims = (0, *range(2, input.dim()))
        mean, centered, var = shifted_moments(input, dims)
        if update:
            self._update_running_stats(mean, unbiased(var, count(input, dims)))
        return self._affine(centered * torch.rsqrt(var + self.eps))

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var_unbiased: torch.Tensor) -> None:
        """Count one more batch and blend its mean and unbiased variance into the running statistics."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        blend_(self.running_mean, mean, factor)
        blend_(self.running_var, var_unbiased, factor)


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) features or (N, C, L) sequences, per channel over N (and L).

    Same constructor, defaults, parameters and buffers as :class:`torch.nn.BatchNorm1d`:
    ``BatchNorm1d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
    device=None, dtype=None, *, bias=True)``.

    Examples
    --------
    >>> bn = BatchNorm1d(3)
    >>> bn(torch.randn(8, 3)).shape
    torch.Size([8, 3])
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, (2, 3), "(N, C) or (N, C, L)")


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) images, per channel over N, H and W.

    Same constructor, defaults, parameters and buffers as :class:`torch.nn.BatchNorm2d`.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, (4,), "(N, C, H, W)")
