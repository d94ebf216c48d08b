"""Group normalization (Wu & He 2018, arXiv:1803.08494) from tensor operations.

The C channels of each sample are split into ``num_groups`` groups of C/G consecutive channels; each
group of each sample is normalized with its own mean and biased variance, taken over its channels
and all spatial positions (n = C/G times the spatial size values):

.. math::

    y_{n,c,\\ldots} = \\gamma_c
        \\frac{x_{n,c,\\ldots} - \\mu_{n,g(c)}}{\\sqrt{\\sigma^2_{n,g(c)} + \\epsilon}} + \\beta_c .

``num_groups=1`` normalizes each sample over all its channels and positions (layer norm over
(C, H, W) but with per-channel gamma and beta); ``num_groups=C`` is instance norm. No running
statistics, no dependence on the batch. A group must hold more than one value: a single value
would always map to beta (PyTorch raises only when N = 1 too, and otherwise returns rounding noise).
"""

from __future__ import annotations

import torch
from torch import nn

from companion import _checks
from companion.nn._base import affine_per_channel, register_affine, reset_affine
from companion.nn._stats import channel_view, restore_dtype, shifted_moments, working_copy


class GroupNorm(nn.Module):
    """Normalize (N, C, *) input per sample over groups of C / ``num_groups`` channels.

    Same constructor, defaults and parameters as :class:`torch.nn.GroupNorm`:
    ``GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True)``.

    Parameters
    ----------
    num_groups : int
        Number of groups G; must divide ``num_channels``.
    num_channels : int
        Number of channels C (dimension 1 of the input).
    eps : float
        Added to the variance inside the square root.
    affine : bool
        Learn a per-channel ``weight`` (init 1) and ``bias`` (init 0), each of shape (C,).
    bias : bool, keyword-only
        With ``affine=True``, learn ``bias`` too.
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_groups = _checks.positive_int("num_groups", num_groups)
        self.num_channels = _checks.positive_int("num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(
                f"num_channels must be divisible by num_groups, got num_channels={self.num_channels} "
                f"and num_groups={self.num_groups}"
            )
        self.eps = _checks.positive_float("eps", eps)
        self.affine = _checks.boolean("affine", affine)
        _checks.boolean("bias", bias)
        register_affine(self, self.num_channels, self.affine, bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1 and ``bias`` to 0."""
        reset_affine(self)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalize ``input`` of shape (N, C, *); the output has the same shape and dtype.

        Float16/bfloat16 input is normalized in float32. NaN or infinite group statistics raise
        ``ValueError`` (checked on the N x G statistics, not on the input). N = 0 gives an empty output.
        """
        _checks.float_tensor("input", input)
        if input.dim() < 2:
            raise ValueError(
                f"input must be at least 2-D (N, C, *), got {input.dim()}-D input of shape {_checks.shape_text(input)}"
            )
        _checks.tensor_size("input", input, 1, self.num_channels, "num_channels")
        work = working_copy(input)
        if input.numel() == 0:
            return restore_dtype(self._affine(work), input)
        grouped = work.reshape(input.shape[0], self.num_groups, -1)
        if grouped.shape[2] == 1:
            raise ValueError(
                f"each group must hold more than 1 value, got 1 (num_channels/num_groups = 1 and no "
                f"spatial dimensions) for input of shape {_checks.shape_text(input)}"
            )
        _, centered, var = shifted_moments(grouped, [2])
        _checks.finite_statistics("input", var, input)
        out = (centered * torch.rsqrt(var + self.eps)).reshape(input.shape)
        return restore_dtype(self._affine(out), input)

    def _affine(self, normalized: torch.Tensor) -> torch.Tensor:
        """``gamma * normalized + beta`` per channel (the identity when ``affine=False``)."""
        return affine_per_channel(normalized, self.weight, self.bias)
