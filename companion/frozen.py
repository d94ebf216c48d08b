r"""Frozen batch norm: a batch norm layer reduced to the per-channel affine map it computes in eval mode.

Fine-tuning a pretrained network with small batches is where batch norm misbehaves: its batch
statistics are noisy, and its running statistics keep moving in training mode even when every
parameter has ``requires_grad=False``. The usual cure (torchvision's ``FrozenBatchNorm2d``,
detectron2's ``FrozenBatchNorm2d.convert_frozen_batchnorm``) replaces each batch norm layer by a
module holding the four tensors as *buffers*, with no training mode at all:

.. math::

    y = \gamma \, \frac{x - \hat\mu}{\sqrt{\hat\sigma^2 + \epsilon}} + \beta
      = x \cdot s + t, \qquad
    s = \frac{\gamma}{\sqrt{\hat\sigma^2 + \epsilon}}, \quad t = \beta - \hat\mu \, s,

with :math:`\hat\mu, \hat\sigma^2` the running statistics. ``model.train()`` changes nothing, no
statistic is ever updated, no parameter is trained, and a batch of one is fine.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from companion import _checks
from companion.nn import BatchNorm1d, BatchNorm2d
from companion.nn._stats import channel_view

__all__ = ["FrozenBatchNorm1d", "FrozenBatchNorm2d", "freeze_batchnorm"]


class _FrozenBatchNorm(nn.Module):
    """Eval-mode batch norm with every tensor a buffer; subclasses fix the accepted shapes.

    Parameters
    ----------
    num_features : int
        Number of channels C (dimension 1 of the input).
    eps : float
        Added to the running variance inside the square root.

    Buffers ``weight`` (γ, init 1), ``bias`` (β, init 0), ``running_mean`` (init 0) and
    ``running_var`` (init 1), each of shape (C,): the names of batch norm's state_dict, so a
    ``torch.nn.BatchNorm*`` state_dict loads directly (its ``num_batches_tracked`` is ignored).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = _checks.positive_int("num_features", num_features)
        self.eps = _checks.positive_float("eps", eps)
        self.register_buffer("weight", torch.ones(self.num_features))
        self.register_buffer("bias", torch.zeros(self.num_features))
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))

    @classmethod
    def from_batchnorm(cls, bn: nn.Module) -> _FrozenBatchNorm:
        """A frozen copy of batch norm layer ``bn`` (torch's or companion's), in its mode-free eval form.

        ``affine=False`` counts as γ = 1, β = 0. Raises ``ValueError`` if ``bn`` keeps no running
        statistics: such a layer normalizes with batch statistics even in eval mode, and no fixed
        map reproduces it.
        """
        if getattr(bn, "running_mean", None) is None or getattr(bn, "running_var", None) is None:
            raise ValueError(
                f"bn must keep running statistics to be frozen (track_running_stats=True), "
                f"got {type(bn).__name__} without them"
            )
        frozen = cls(bn.num_features, bn.eps).to(device=bn.running_mean.device, dtype=bn.running_mean.dtype)
        with torch.no_grad():
            frozen.running_mean.copy_(bn.running_mean)
            frozen.running_var.copy_(bn.running_var)
            if bn.weight is not None:
                frozen.weight.copy_(bn.weight)
            if bn.bias is not None:
                frozen.bias.copy_(bn.bias)
        return frozen

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        state_dict.pop(prefix + "num_batches_tracked", None)  # a BatchNorm state_dict carries it
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        raise NotImplementedError

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``input * s + t`` per channel (module docstring); same shape as ``input``."""
        _checks.float_tensor("input", input)
        self._check_input_dim(input)
        _checks.tensor_size("input", input, 1, self.num_features, "num_features")
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return input * channel_view(scale, input.dim()) + channel_view(shift, input.dim())

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class FrozenBatchNorm1d(_FrozenBatchNorm):
    """Frozen batch norm for (N, C) features or (N, C, L) sequences (module docstring)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, (2, 3), "(N, C) or (N, C, L)")


class FrozenBatchNorm2d(_FrozenBatchNorm):
    """Frozen batch norm for (N, C, H, W) images, like torchvision's ``FrozenBatchNorm2d``."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, (4,), "(N, C, H, W)")


def _frozen_class(module: nn.Module) -> type[_FrozenBatchNorm] | None:
    """The frozen class replacing ``module``, or None when it is not a 1-D/2-D batch norm."""
    if isinstance(module, (nn.BatchNorm1d, BatchNorm1d)):
        return FrozenBatchNorm1d
    if isinstance(module, (nn.BatchNorm2d, BatchNorm2d)):
        return FrozenBatchNorm2d
    return None


def freeze_batchnorm(model: nn.Module) -> nn.Module:
    """Return a copy of ``model`` with every batch norm layer replaced by its frozen form.

    ``torch.nn.BatchNorm1d/2d`` and ``companion.nn.BatchNorm1d/2d`` become :class:`FrozenBatchNorm1d`
    / :class:`FrozenBatchNorm2d` holding their current γ, β and running statistics. The copy computes
    what ``model.eval()`` computes, whatever mode it is put in later; every other module is copied
    unchanged, trainable as before. ``model`` is not modified.

    Parameters
    ----------
    model : nn.Module
        Any module; a batch norm layer itself is returned frozen.

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Module``.
    ValueError
        A batch norm layer keeps no running statistics (``track_running_stats=False``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    frozen_class = _frozen_class(model)
    if frozen_class is not None:
        return frozen_class.from_batchnorm(model)
    model = copy.deepcopy(model)
    _replace_in_place(model)
    return model


def _replace_in_place(module: nn.Module) -> None:
    """Swap every batch norm child of ``module`` (recursively) for its frozen form."""
    for name, child in module.named_children():
        frozen_class = _frozen_class(child)
        if frozen_class is not None:
            setattr(module, name, frozen_class.from_batchnorm(child))
        else:
            _replace_in_place(child)
