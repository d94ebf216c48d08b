"""Normalization layers written from tensor operations, interchangeable with ``torch.nn``'s.

Each layer takes the same constructor arguments, defaults, parameter and buffer names as its
PyTorch counterpart, so ``load_state_dict`` works in both directions, and every one is tested
against PyTorch (outputs, gradients, running statistics). None calls PyTorch's normalization
functions; gradients come from autograd. Means and variances are computed in two passes around
a shift taken from the data (see :mod:`companion.nn._stats`), so a constant channel gives
exactly ``beta``.

Layers (statistics over ... ; PyTorch counterpart):

* ``BatchNorm1d``, ``BatchNorm2d``: the batch and positions, per channel; ``torch.nn.BatchNorm1d/2d``.
* ``GhostBatchNorm1d``, ``GhostBatchNorm2d``: ghost batches of ``virtual_batch_size`` samples;
  ``torch.nn.BatchNorm`` applied chunk by chunk.
* ``BatchRenorm1d``, ``BatchRenorm2d``: the batch, corrected toward the running statistics
  (Ioffe 2017); none in PyTorch, equal to batch norm when ``r_max=1, d_max=0``.
* ``LayerNorm``: each sample's trailing dimensions; ``torch.nn.LayerNorm``.
* ``GroupNorm``: each sample's groups of channels; ``torch.nn.GroupNorm``.
* ``InstanceNorm2d``: each sample's channel, over H and W; ``torch.nn.InstanceNorm2d``.
* ``RMSNorm``: each sample's trailing dimensions, without centering; ``torch.nn.RMSNorm``.
"""

from companion.nn.batchnorm import BatchNorm1d, BatchNorm2d
from companion.nn.ghost import GhostBatchNorm1d, GhostBatchNorm2d
from companion.nn.groupnorm import GroupNorm
from companion.nn.instancenorm import InstanceNorm2d
from companion.nn.layernorm import LayerNorm
from companion.nn.renorm import BatchRenorm1d, BatchRenorm2d
from companion.nn.rmsnorm import RMSNorm

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchRenorm1d",
    "BatchRenorm2d",
    "GhostBatchNorm1d",
    "GhostBatchNorm2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "RMSNorm",
]
