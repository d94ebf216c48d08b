"""Ghost batch normalization (Hoffer, Hubara & Soudry 2017, arXiv:1705.08741).

A large batch is cut, in order along dimension 0, into *ghost batches* of ``virtual_batch_size``
samples (``torch.split``: the last one holds the remainder and may be smaller). Each ghost batch is
normalized with its own mean and biased variance, exactly as batch norm would normalize it alone:
the noise of small-batch statistics comes back while the large batch still feeds the optimizer.

Running statistics: one update per ghost batch, in order, with the layer's momentum, and
``num_batches_tracked`` counts ghost batches. With ghost means :math:`\\mu_1, \\dots, \\mu_L`,

.. math::

    \\hat\\mu \\leftarrow (1-m)^L \\hat\\mu + \\sum_{l=1}^{L} m (1-m)^{L-l} \\mu_l ,

and likewise for the unbiased variances: the sequential form of the rule in Hoffer et al.'s
Algorithm 1. The whole training step is therefore identical to ``torch.nn.BatchNorm`` applied to the
ghost batches one after another. ``momentum=None`` averages all ghost batches seen so far equally.

Every ghost batch must hold more than one value per channel; a last ghost batch of a single
sample of shape (1, C) raises ``ValueError`` (use ``drop_last=True`` or another
``virtual_batch_size``). In eval mode the layer is ordinary batch norm with the running statistics;
with ``track_running_stats=False`` it uses ghost-batch statistics in eval mode too.

Parameter and buffer names are batch norm's, so state dicts move to and from ``torch.nn.BatchNorm``.
"""

from __future__ import annotations

import torch

from companion import _checks
from companion.nn._stats import count
from companion.nn.batchnorm import _BatchNorm


class _GhostBatchNorm(_BatchNorm):
    """Batch norm whose training statistics come from ghost batches of ``virtual_batch_size`` samples."""

    def __init__(
        self,
        num_features: int,
        virtual_batch_size: int = 32,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.virtual_batch_size = _checks.positive_int("virtual_batch_size", virtual_batch_size)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, virtual_batch_size={self.virtual_batch_size}"

    def _normalize_with_batch_stats(self, input: torch.Tensor, update: bool) -> torch.Tensor:
        """Normalize each ghost batch alone (and update the running statistics once per ghost batch)."""
        ghosts = torch.split(input, self.virtual_batch_size, dim=0)
        positions = count(input, list(range(2, input.dim())))  # values per channel per sample
        if len(ghosts) > 1 and self.virtual_batch_size * positions == 1:
            raise ValueError(
                f"virtual_batch_size=1 leaves a single value per channel in every ghost batch of "
                f"input of shape {_checks.shape_text(input)}: a single value has no variance; "
                "choose virtual_batch_size >= 2"
            )
        if len(ghosts) > 1 and ghosts[-1].shape[0] * positions == 1:
            raise ValueError(
                f"the last ghost batch holds a single value per channel: a batch of {input.shape[0]} "
                f"is 1 more than a multiple of virtual_batch_size={self.virtual_batch_size}; "
                "drop the last sample (drop_last=True) or choose another virtual_batch_size"
            )
        outputs = [self._normalize_chunk(ghost, update) for ghost in ghosts]
        return torch.cat(outputs, dim=0)


class GhostBatchNorm1d(_GhostBatchNorm):
    """Ghost batch norm of (N, C) or (N, C, L) input.

    ``GhostBatchNorm1d(num_features, virtual_batch_size=32, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, device=None, dtype=None, *, bias=True)``; see the module docstring.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [2, 3], "(N, C) or (N, C, L)")


class GhostBatchNorm2d(_GhostBatchNorm):
    """Ghost batch norm of (N, C, H, W) input; same constructor as :class:`GhostBatchNorm1d`."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [4], "(N, C, H, W)")
