"""Parameters, buffers and argument checks shared by batch and instance normalization.

Subclasses ``torch.nn.modules.batchnorm._NormBase``: the same constructor, the same parameter and
buffer names (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``),
so a ``state_dict`` moves between these layers and PyTorch's in both directions, old checkpoints
included.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.modules import batchnorm as _torch_norm

from companion import _checks
from companion.nn._stats import channel_view


def affine_per_channel(
    normalized: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor]
) -> torch.Tensor:
    """:math:`\\gamma \\hat x + \\beta` with one :math:`\\gamma, \\beta` per channel (dim 1); either may be None."""
    out = normalized
    if weight is not None:
        out = out * channel_view(weight, out.dim())
    if bias is not None:
        out = out + channel_view(bias, out.dim())
    return out


def register_affine(
    module: nn.Module,
    shape: int | tuple[int, ...],
    enabled: bool,
    bias: bool,
    factory: dict,
) -> None:
    """Give ``module`` a learnable ``weight`` (gamma) and ``bias`` (beta) of ``shape``, or register
    them as ``None`` (PyTorch's convention, so that ``state_dict`` keys match)."""
    if enabled:
        module.weight = nn.Parameter(torch.empty(shape, **factory))
        if bias:
            module.bias = nn.Parameter(torch.empty(shape, **factory))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def reset_affine(module: nn.Module) -> None:
    """Set ``module.weight`` to 1 and ``module.bias`` to 0 where they exist."""
    if module.weight is not None:
        nn.init.ones_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class _NormBase(_torch_norm._NormBase):
    """Common base of the per-channel layers: affine parameters and running statistics.

    A subclass of PyTorch's own ``torch.nn.modules.batchnorm._NormBase``: the constructor (after
    companion's argument checks), the buffers, ``reset_parameters``, ``extra_repr`` and the state-dict
    back-fill of ``num_batches_tracked`` for checkpoints saved before PyTorch added it (metadata
    ``version`` < 2, ``_load_from_state_dict``) are PyTorch's. Only the forward passes are companion's,
    written from elementary tensor operations.

    Parameters
    ----------
    num_features : int
        Number of channels C (dimension 1 of the input).
    eps : float
        Added to the variance inside the square root.
    momentum : float in [0, 1] or None
        Weight of the newest batch in the running averages; ``None`` averages all batches equally.
    affine : bool
        Learn a per-channel scale ``weight`` (gamma, init 1) and shift ``bias`` (beta, init 0).
    track_running_stats : bool
        Keep ``running_mean`` (init 0), ``running_var`` (init 1) and ``num_batches_tracked``
        (init 0); otherwise the three buffers are ``None``.
    device, dtype
        Where and in which floating-point type the parameters and buffers live.
    bias : bool, keyword-only
        With ``affine=True``, learn ``bias`` too (as in PyTorch 2.13).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            _checks.positive_int("num_features", num_features),
            _checks.positive_float("eps", eps),
            _checks.momentum(momentum),
            _checks.boolean("affine", affine),
            _checks.boolean("track_running_stats", track_running_stats),
            device,
            dtype,
            bias=_checks.boolean("bias", bias),
        )

    def _check_input_dim(self, input: torch.Tensor) -> None:
        raise NotImplementedError

    def _check_input(self, input: torch.Tensor) -> None:
        """Refuse non-float tensors, a wrong number of dimensions and a wrong number of channels (dim 1)."""
        _checks.float_tensor("input", input)
        self._check_input_dim(input)
        _checks.tensor_size("input", input, 1, self.num_features, "num_features")

    def _affine(self, normalized: torch.Tensor) -> torch.Tensor:
        """Apply ``gamma * normalized + beta`` per channel (the identity when ``affine=False``)."""
        return affine_per_channel(normalized, self.weight, self.bias)

    def _normalize_with_running_stats(self, input: torch.Tensor) -> torch.Tensor:
        """Eval-mode output: :math:`\\gamma (x - \\hat\\mu) / \\sqrt{\\hat\\sigma^2 + \\epsilon} + \\beta`.

        No NaN check here: eval mode is a fixed elementwise map, a NaN input gives NaN at that
        position only and changes no state (checking would cost a pass over the data).
        """
        running_mean, running_var = self.running_mean, self.running_var
        assert running_mean is not None and running_var is not None
        mean = channel_view(running_mean, input.dim())
        var = channel_view(running_var, input.dim())
        return self._affine((input - mean) * torch.rsqrt(var + self.eps))
