"""Parameters, buffers and argument checks shared by batch and instance normalization.

Mirrors ``torch.nn.modules.batchnorm._NormBase``: the same constructor, the same parameter and
buffer names (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``),
so a ``state_dict`` moves between these layers and PyTorch's in both directions.
"""

from __future__ import annotations

import torch
from torch import nn

from companion import _checks
from companion.nn._stats import channel_view


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


class _NormBase(nn.Module):
    """Common base of the per-channel layers: affine parameters and running statistics.

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

    _version = 2  # PyTorch's version number for this state_dict layout

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
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = _checks.positive_int("num_features", num_features)
        self.eps = _checks.positive_float("eps", eps)
        self.momentum = _checks.momentum(momentum)
        self.affine = _checks.boolean("affine", affine)
        self.track_running_stats = _checks.boolean("track_running_stats", track_running_stats)
        _checks.boolean("bias", bias)
        register_affine(self, self.num_features, self.affine, bias, factory)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features, **factory))
            self.register_buffer("running_var", torch.ones(self.num_features, **factory))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Set ``running_mean`` to 0, ``running_var`` to 1 and ``num_batches_tracked`` to 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics and set ``weight`` to 1 and ``bias`` to 0."""
        self.reset_running_stats()
        reset_affine(self)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
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
        out = normalized
        if self.weight is not None:
            out = out * channel_view(self.weight, out.dim())
        if self.bias is not None:
            out = out + channel_view(self.bias, out.dim())
        return out

    def _normalize_with_running_stats(self, input: torch.Tensor) -> torch.Tensor:
        """Eval-mode output: :math:`\\gamma (x - \\hat\\mu) / \\sqrt{\\hat\\sigma^2 + \\epsilon} + \\beta`."""
        mean = channel_view(self.running_mean, input.dim())
        var = channel_view(self.running_var, input.dim())
        return self._affine((input - mean) * torch.rsqrt(var + self.eps))
