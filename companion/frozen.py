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

from torch.nn.modules.batchnorm import _BatchNorm

from companion import _checks
from companion.nn import BatchRenorm1d, BatchRenorm2d, GhostBatchNorm1d, GhostBatchNorm2d
from companion.nn._stats import channel_view, restore_dtype, working_copy

__all__ = ["FrozenBatchNorm", "FrozenBatchNorm1d", "FrozenBatchNorm2d", "FrozenBatchNorm3d", "freeze_batchnorm"]

# companion.nn.BatchNorm1d/2d are instances of torch.nn.BatchNorm1d/2d
_ONE_D = (nn.BatchNorm1d, GhostBatchNorm1d, BatchRenorm1d)
_TWO_D = (nn.BatchNorm2d, GhostBatchNorm2d, BatchRenorm2d)


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
        out = working_copy(input) * channel_view(scale, input.dim()) + channel_view(shift, input.dim())
        return restore_dtype(out, input)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class FrozenBatchNorm1d(_FrozenBatchNorm):
    """Frozen batch norm for (N, C) features or (N, C, L) sequences (module docstring)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [2, 3], "(N, C) or (N, C, L)")


class FrozenBatchNorm2d(_FrozenBatchNorm):
    """Frozen batch norm for (N, C, H, W) images, like torchvision's ``FrozenBatchNorm2d``."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [4], "(N, C, H, W)")


class FrozenBatchNorm3d(_FrozenBatchNorm):
    """Frozen batch norm for (N, C, D, H, W) volumes (frozen ``torch.nn.BatchNorm3d``)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [5], "(N, C, D, H, W)")


class FrozenBatchNorm(_FrozenBatchNorm):
    """Frozen batch norm for any (N, C, *) input, like ``torch.nn.SyncBatchNorm`` accepts."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"input must be at least 2-D (N, C, *), got {input.dim()}-D input")


def _frozen_class(module: nn.Module) -> type[_FrozenBatchNorm] | None:
    """The frozen class replacing ``module``, or None when it is not a batch norm layer.

    A batch norm layer is any ``torch.nn.modules.batchnorm._BatchNorm``: torch's BatchNorm1d/2d/3d
    and SyncBatchNorm, and every batch norm of ``companion.nn`` (plain, ghost, renorm). The frozen
    class accepts the shapes the layer accepted; SyncBatchNorm and unknown subclasses get
    :class:`FrozenBatchNorm` (any (N, C, *)).
    """
    if not isinstance(module, _BatchNorm):
        return None
    if isinstance(module, _ONE_D):
        return FrozenBatchNorm1d
    if isinstance(module, _TWO_D):
        return FrozenBatchNorm2d
    if isinstance(module, nn.BatchNorm3d):
        return FrozenBatchNorm3d
    return FrozenBatchNorm


def freeze_batchnorm(model: nn.Module) -> nn.Module:
    """Return a copy of ``model`` with every batch norm layer replaced by its frozen form.

    Every batch norm layer, i.e. every ``torch.nn.modules.batchnorm._BatchNorm``: ``torch.nn``'s
    BatchNorm1d/2d/3d and SyncBatchNorm, ``companion.nn``'s BatchNorm, GhostBatchNorm and
    BatchRenorm (1d and 2d). Each becomes a :class:`FrozenBatchNorm1d` / ``2d`` / ``3d`` (or, for
    SyncBatchNorm, :class:`FrozenBatchNorm`) holding its current γ, β and running statistics: the
    eval-mode map (a ghost or renorm layer in eval mode is plain batch norm). The copy computes what
    ``model.eval()`` computes, whatever mode it is put in later; every other module is copied
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
