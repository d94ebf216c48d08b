"""Instance normalization (Ulyanov, Vedaldi & Lempitsky 2016, arXiv:1607.08022) from tensor operations.

Each channel of each image is normalized over its own H x W positions:

.. math::

    y_{n,c,h,w} = \\gamma_c \\frac{x_{n,c,h,w} - \\mu_{n,c}}{\\sqrt{\\sigma^2_{n,c} + \\epsilon}} + \\beta_c .

PyTorch's defaults differ from batch norm's: ``affine=False`` and ``track_running_stats=False``.
With ``track_running_stats=True`` the buffers follow PyTorch's rule: each step blends in the
batch average of the per-instance means and of the per-instance *unbiased* variances, and eval
mode normalizes with them. Two PyTorch quirks are kept for parity: ``momentum=None`` leaves the
running statistics unchanged (PyTorch passes a factor of 0), and ``num_batches_tracked`` is never
incremented. Two deliberate differences: an empty batch (N = 0) leaves the running statistics
unchanged (PyTorch turns them into NaN), and a wrong channel count raises ``ValueError`` even
with ``affine=False`` (PyTorch only warns then).
"""

from __future__ import annotations

import torch
from torch import nn

from companion import _checks
from companion.nn._base import _NormBase
from companion.nn._stats import blend_, restore_dtype, shifted_moments, unbiased, working_copy


class InstanceNorm2d(_NormBase, nn.InstanceNorm2d):
    """Normalize each channel of each (C, H, W) image over its H x W positions.

    Same constructor, defaults, parameters and buffers as :class:`torch.nn.InstanceNorm2d`, and an
    instance of it (only ``forward`` differs): ``InstanceNorm2d(num_features, eps=1e-5,
    momentum=0.1, affine=False, track_running_stats=False, device=None, dtype=None, *, bias=True)``.
    Input (N, C, H, W), or (C, H, W) for one image.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [3, 4], "(C, H, W) or (N, C, H, W)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalize ``input`` of shape (N, C, H, W) or (C, H, W); the output has the same shape and dtype."""
        _checks.float_tensor("input", input)
        self._check_input_dim(input)
        _checks.tensor_size("input", input, input.dim() - 3, self.num_features, "num_features")
        work = working_copy(input)
        if input.dim() == 3:
            out = self._forward_batched(work.unsqueeze(0)).squeeze(0)
        else:
            out = self._forward_batched(work)
        return restore_dtype(out, input)

    def _forward_batched(self, input: torch.Tensor) -> torch.Tensor:
        """Normalize (N, C, H, W) input; PyTorch's rule decides between instance and running statistics."""
        use_input_stats = self.training or not self.track_running_stats
        if not use_input_stats:
            return self._normalize_with_running_stats(input)
        if input.shape[2] * input.shape[3] == 1:
            raise ValueError(
                f"Expected more than 1 spatial element when training, got input size {_checks.shape_text(input)}"
            )
        if input.numel() == 0:  # PyTorch would turn the running statistics into NaN; they stay
            return self._affine(input)
        mean, centered, var = shifted_moments(input, [2, 3])
        _checks.finite_statistics("input", var, input)
        running_mean, running_var = self.running_mean, self.running_var
        if running_mean is not None and running_var is not None:
            # PyTorch updates whenever it uses instance statistics and has buffers
            momentum = self.momentum
            factor = 0.0 if momentum is None else momentum
            n = input.shape[2] * input.shape[3]
            blend_(running_mean, mean.mean(dim=0), factor)
            blend_(running_var, unbiased(var, n).mean(dim=0), factor)
        return self._affine(centered * torch.rsqrt(var + self.eps))
