"""Dynamic Tanh (Zhu, Chen, He, LeCun & Liu 2025, "Transformers without Normalization",
arXiv:2503.10622): an element-wise stand-in for layer norm,

.. math::

    \\operatorname{DyT}(x)_j = \\gamma_j \\tanh(\\alpha x_j) + \\beta_j ,

with one learnable scalar :math:`\\alpha` for the whole layer and a per-feature scale
:math:`\\gamma` and shift :math:`\\beta`, initialised to 1 and 0 as layer norm's affine part. It
computes no statistic: each entry is squashed on its own, so the output is the same function in
training and in inference, and it neither looks across the batch nor across the features. The
paper initialises :math:`\\alpha` to 0.5 by default.
"""

from __future__ import annotations

import torch
from torch import nn

from companion import _checks


class DyT(nn.Module):
    """``gamma * tanh(alpha * x) + beta`` over the last dimension of size ``num_features``.

    Parameters
    ----------
    num_features : int
        Size of the last dimension of the input (``d_model``).
    alpha0 : float
        Initial value of the learnable scalar ``alpha`` (the paper's default is 0.5).
    """

    def __init__(self, num_features: int, alpha0: float = 0.5) -> None:
        super().__init__()
        self.num_features = _checks.positive_int("num_features", num_features)
        alpha0 = _checks.positive_float("alpha0", alpha0)
        self.alpha = nn.Parameter(torch.tensor(alpha0))
        self.weight = nn.Parameter(torch.ones(self.num_features))
        self.bias = nn.Parameter(torch.zeros(self.num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.float_tensor("x", x)
        if x.ndim == 0 or x.shape[-1] != self.num_features:
            raise ValueError(f"x must have a last dimension of {self.num_features}, got shape {tuple(x.shape)}")
        return self.weight * torch.tanh(self.alpha * x) + self.bias

    def extra_repr(self) -> str:
        return f"{self.num_features}, alpha={self.alpha.item():.3g}"
