"""Layer normalization (Ba, Kiros & Hinton 2016, arXiv:1607.06450) from tensor operations.

Each sample is normalized over its trailing ``normalized_shape`` dimensions (the D values of a
(N, D) row, or the last k axes of a (*, d_1, ..., d_k) input), with its own statistics:

.. math::

    \\mu = \\frac{1}{D}\\sum_j x_j, \\qquad \\sigma^2 = \\frac{1}{D}\\sum_j (x_j - \\mu)^2, \\qquad
    y_j = \\gamma_j \\frac{x_j - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta_j ,

where :math:`\\gamma, \\beta` have shape ``normalized_shape`` (elementwise, not per channel). There
are no running statistics: training and eval compute the same function, batch-size independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import List

import torch
from torch import nn

from companion import _checks
from companion.nn._base import register_affine, reset_affine
from companion.nn._stats import restore_dtype, shifted_moments, working_copy


def check_trailing_shape(input: torch.Tensor, normalized_shape: List[int]) -> None:
    """Raise ``ValueError`` unless ``input`` ends with the dimensions ``normalized_shape``."""
    k = len(normalized_shape)
    if input.dim() < k or list(input.shape[input.dim() - k :]) != normalized_shape:
        expected = "(" + ", ".join([str(d) for d in normalized_shape]) + ("," if k == 1 else "") + ")"
        raise ValueError(
            f"input must end with normalized_shape={expected}, got input of shape {_checks.shape_text(input)}"
        )


class LayerNorm(nn.Module):
    """Normalize each sample over its last ``len(normalized_shape)`` dimensions.

    Same constructor, defaults and parameters as :class:`torch.nn.LayerNorm`.

    Parameters
    ----------
    normalized_shape : int or sequence of int
        The trailing shape to normalize over, e.g. ``D`` for a (N, D) input or ``(C, H, W)``.
    eps : float
        Added to the variance inside the square root.
    elementwise_affine : bool
        Learn ``weight`` (init 1) and ``bias`` (init 0), each of shape ``normalized_shape``.
    bias : bool
        With ``elementwise_affine=True``, learn ``bias`` too.
    device, dtype
        Where and in which floating-point type the parameters live.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.normalized_shape = _checks.shape("normalized_shape", normalized_shape)
        self.eps = _checks.positive_float("eps", eps)
        self.elementwise_affine = _checks.boolean("elementwise_affine", elementwise_affine)
        _checks.boolean("bias", bias)
        register_affine(self, self.normalized_shape, self.elementwise_affine, bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1 and ``bias`` to 0."""
        reset_affine(self)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalize ``input`` of shape (*, *normalized_shape); the output has the same shape and dtype.

        Float16/bfloat16 input is normalized in float32; NaN or infinite per-sample statistics raise
        ``ValueError``; an input with no samples gives an empty output.
        """
        _checks.float_tensor("input", input)
        normalized_shape = list(self.normalized_shape)
        check_trailing_shape(input, normalized_shape)
        work = working_copy(input)
        if input.numel() > 0:
            dims = list(range(input.dim() - len(normalized_shape), input.dim()))
            _, centered, var = shifted_moments(work, dims)
            _checks.finite_statistics("input", var, input)
            work = centered * torch.rsqrt(var + self.eps)
        weight = self.weight
        if weight is not None:
            work = work * weight
        bias = self.bias
        if bias is not None:
            work = work + bias
        return restore_dtype(work, input)
