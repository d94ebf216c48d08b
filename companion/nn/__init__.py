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

The per-channel layers subclass PyTorch's own base classes (``BatchNorm1d`` is a
``torch.nn.BatchNorm1d``, every batch norm here a ``torch.nn.modules.batchnorm._BatchNorm``,
``InstanceNorm2d`` a ``torch.nn.InstanceNorm2d``) and override only ``forward``: constructor,
buffers, ``reset_parameters`` and old-checkpoint loading are PyTorch's, so PyTorch's tools find them.

PyTorch's tools on these layers (each row is tested in ``tests/test_nn_torch_tools.py``):

=========================================== =====================================================
tool                                        status
=========================================== =====================================================
``isinstance(m, _BatchNorm)``               True for all batch norms (plain, ghost, renorm)
``torch.optim.swa_utils.update_bn``         works; ghost: the average over ghost batches
``SyncBatchNorm.convert_sync_batchnorm``    replaces the layer by torch's ``SyncBatchNorm`` (same
                                            state, same math for plain batch norm); ghost batches
                                            and the renorm correction are lost: convert only
                                            plain batch norm, or use ``companion.distributed``
``torch.func.replace_all_batch_norm_modules_`` works (buffers removed); batch renorm then raises
+ ``torch.func.vmap``                       (it needs running statistics); the NaN check is
                                            skipped under vmap
``torch.jit.script``                        works for every layer, same outputs and errors
``torch.nn.utils.fuse_conv_bn_eval``,       works (they read the running statistics only)
``fuse_linear_bn_eval``
``torch.ao.quantization.fuse_modules``      needs ``fuse_custom_config_dict={"additional_fuser_
                                            method_mapping": fusion.fuser_method_mapping()}``:
                                            torch looks fusers up by exact type; without it,
                                            it raises "did not find fuser method"
``load_state_dict`` of old checkpoints      works: ``num_batches_tracked`` is filled in (version < 2)
=========================================== =====================================================

Error contract: in training, NaN or infinity in the input, or a spread whose variance overflows
the dtype, raises ``ValueError`` before any running statistic moves; it is detected on the
statistics (a few values per channel or per sample), not by an extra pass over the input. In eval
mode the batch norms apply a fixed elementwise map and do not check (a NaN stays where it is).
Float16 and bfloat16 input is computed in float32 and returned in its own dtype; an empty batch
gives an empty output, as in PyTorch.
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
