"""Let ``torch.ao.quantization.fuse_modules`` fuse companion's batch norm layers.

``fuse_modules`` looks its fuser up by the *exact* types of the modules (``type(m)``, not
``isinstance``), so it knows ``(Conv2d, torch.nn.BatchNorm2d)`` but not
``(Conv2d, companion.nn.BatchNorm2d)`` and raises "did not find fuser method". Pass the extra
mapping built here; the fusers are PyTorch's own (``fuse_conv_bn``, ``fuse_conv_bn_relu``,
``fuse_linear_bn``), which read only ``running_mean``, ``running_var``, ``eps``, ``weight`` and
``bias`` in eval mode (through ``torch.nn.utils.fuse_conv_bn_eval`` / ``fuse_linear_bn_eval``).

>>> from torch.ao.quantization import fuse_modules
>>> fused = fuse_modules(model.eval(), [["0", "1"]],
...                      fuse_custom_config_dict={"additional_fuser_method_mapping": fuser_method_mapping()})
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["fuser_method_mapping"]


def fuser_method_mapping() -> dict[tuple[type[nn.Module], ...], Callable[..., nn.Module]]:
    """``{(layer type, companion batch norm type[, nn.ReLU]): PyTorch fuser}`` for every foldable pair.

    Conv1d with the 1-D layers (``BatchNorm1d``, ``GhostBatchNorm1d``, ``BatchRenorm1d``), Conv2d
    with the 2-D ones, each optionally followed by ``nn.ReLU``; ``Linear`` with the 1-D ones. In eval
    mode ghost batch norm and batch renormalization compute exactly batch norm's map, so they fuse
    the same way. (Imported lazily: ``torch.ao.quantization`` is a large import.)
    """
    from torch.ao.quantization.fuser_method_mappings import fuse_conv_bn, fuse_conv_bn_relu, fuse_linear_bn

    from companion.nn.batchnorm import BatchNorm1d, BatchNorm2d
    from companion.nn.ghost import GhostBatchNorm1d, GhostBatchNorm2d
    from companion.nn.renorm import BatchRenorm1d, BatchRenorm2d

    mapping: dict[tuple[type[nn.Module], ...], Callable[..., nn.Module]] = {}
    for conv, norms in ((nn.Conv1d, (BatchNorm1d, GhostBatchNorm1d, BatchRenorm1d)),
                        (nn.Conv2d, (BatchNorm2d, GhostBatchNorm2d, BatchRenorm2d))):
        for norm in norms:
            mapping[(conv, norm)] = fuse_conv_bn
            mapping[(conv, norm, nn.ReLU)] = fuse_conv_bn_relu
    for norm in (BatchNorm1d, GhostBatchNorm1d, BatchRenorm1d):
        mapping[(nn.Linear, norm)] = fuse_linear_bn
    return mapping
