"""Root-mean-square normalization (Zhang & Sennrich 2019, arXiv:1910.07467) from tensor operations.

Layer norm without the centering: each sample is divided by the root mean square of its trailing
``normalized_shape`` values,

.. math::

    y_j = \\gamma_j \\frac{x_j}{\\sqrt{\\frac{1}{D}\\sum_k x_k^2 + \\epsilon}} ,

with :math:`\\gamma` of shape ``normalized_shape`` and no bias. As in PyTorch, ``eps=None`` means
``torch.finfo(input.dtype).eps`` (1.19e-7 in float32, 2.2e-16 in float64). The output is invariant
to rescaling a sample (up to eps) but not to shifting it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from companion import _checks
from companion.nn._stats import restore_dtype, working_copy
from companion.nn.layernorm import check_trailing_shape


def machine_epsilon(dtype: torch.dtype) -> float:
    """``torch.finfo(dtype).eps`` of a float32 or float64 working dtype (``finfo`` does not script)."""
    if dtype == torch.float64:
        return 2.220446049250313e-16
    return 1.1920928955078125e-07


class RMSNorm(nn.Module):
    """Divide each sample by the RMS of its last ``len(normalized_shape)`` dimensions.

    Same constructor, defaults and parameters as :class:`torch.nn.RMSNorm`:
    ``RMSNorm(normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None)``.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _checks.shape("normalized_shape", normalized_shape)
        self.eps = None if eps is None else _checks.positive_float("eps", eps)
        self.elementwise_affine = _checks.boolean("elementwise_affine", elementwise_affine)
        if self.elementwise_affine:
            self.weight = nn.Parameter(torch.empty(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1."""
        if self.elementwise_affine:
            nn.init.ones_(self.weight)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalize ``input`` of shape (*, *normalized_shape); the output has the same shape and dtype.

        Float16/bfloat16 input is normalized in float32 (``eps=None`` then means float32's
        machine epsilon, as in PyTorch); a NaN or infinite mean square raises ``ValueError``.
        """
        _checks.float_tensor("input", input)
        normalized_shape = list(self.normalized_shape)
        check_trailing_shape(input, normalized_shape)
        work = working_copy(input)
        eps = self.eps
        if eps is None:
            eps = machine_epsilon(work.dtype)
        if input.numel() > 0:
            dims = list(range(input.dim() - len(normalized_shape), input.dim()))
            mean_square = (work * work).mean(dim=dims, keepdim=True)
            _checks.finite_statistics("input", mean_square, input)
            work = work * torch.rsqrt(mean_square + eps)
        weight = self.weight
        if weight is not None:
            work = work * weight
        return restore_dtype(work, input)
