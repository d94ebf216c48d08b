r"""Batch norm across processes: the statistics of the global batch from one ``all_gather``.

In data-parallel training every process sees its own shard of the global batch. A plain batch norm
layer normalizes each shard with that shard's statistics; a *synchronized* one computes the mean and
variance over the whole global batch of :math:`n = \sum_r n_r` values per channel.

The course's version does what PyTorch's ``torch.nn.SyncBatchNorm`` does
(``torch/nn/modules/_functions.py``, ``SyncBatchNorm.forward``): each process computes the
statistics of its own shard, the processes exchange them in **one** collective, an ``all_gather``
of :math:`(n_r, m_r, M_r)` per process, and every process merges them. PyTorch gathers
(mean, invstd, count) and merges them in ``torch.batch_norm_gather_stats_with_counts``; here each
process gathers its count :math:`n_r`, mean :math:`m_r` and sum of squared deviations
:math:`M_r = \sum_{i \in r} (x_i - m_r)^2`, and the merge is the pairwise formula of Chan, Golub
and LeVeque, applied to all processes at once:

.. math::

    n = \sum_r n_r, \qquad
    \mu = \frac{1}{n}\sum_r n_r m_r, \qquad
    \sigma^2 = \frac{1}{n}\Big(\sum_r M_r + \sum_r n_r (m_r - \mu)^2\Big).

Nothing here forms :math:`E[x^2] - E[x]^2`: every term is a sum of squared *deviations*, so no
digits cancel when the mean is large. Each shard's moments are computed in two passes around a
shift taken from the data (as :mod:`companion.nn._stats` does), which keeps a constant channel exactly
constant; the merge runs in float64 (counts included), whatever the input's dtype.

Gradients flow through the gather (:class:`AllGather`): the backward of "every process receives
every process's statistics" is one all-reduce of the incoming gradients, so autograd reproduces the
gradient of the global batch's loss :math:`\sum_r L_r` (PyTorch's backward, too, is one all-reduce,
of two sums per channel).

PyTorch's ``torch.nn.SyncBatchNorm`` refuses CPU tensors once a process group exists, so the course
uses :func:`synced_batch_norm` with the ``gloo`` backend on CPU. :func:`launch` starts the processes
(``torch.multiprocessing.spawn``, which imports the worker by name, so workers live in this module)
and :func:`batchnorm_checks` is the worker the chapter runs.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from companion import _checks
from companion.nn._stats import channel_view, count

__all__ = [
    "AllGather",
    "batchnorm_checks",
    "free_port",
    "launch",
    "merge_moments",
    "synced_batch_norm",
    "synced_moments",
]


class AllGather(torch.autograd.Function):
    """Stack one tensor from every process of ``group``, differentiably.

    Forward: every process gets :math:`G = [t_0, \\dots, t_{P-1}]`, shape (P, *t.shape).
    Backward: the total loss :math:`\\sum_q L_q` depends on :math:`t_r` through row r of every
    process's :math:`G`, so its gradient is :math:`\\sum_q \\partial L_q / \\partial G_q[r]`: one
    all-reduce of the incoming gradients, of which this process keeps row r.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, tensor.contiguous(), group=group)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad_output.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.rank], None


def merge_moments(
    counts: torch.Tensor, means: torch.Tensor, squares: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Merge per-shard statistics into those of the union (Chan, Golub and LeVeque).

    Parameters
    ----------
    counts : Tensor, shape (P,)
        :math:`n_r`, values per channel in shard r (> 0).
    means : Tensor, shape (P, C)
        :math:`m_r`, the shard's mean per channel.
    squares : Tensor, shape (P, C)
        :math:`M_r = \sum_{i \in r} (x_i - m_r)^2`, the shard's sum of squared deviations.

    Returns
    -------
    n : Tensor, shape ()
        :math:`\sum_r n_r`.
    mean : Tensor, shape (C,)
        :math:`\mu = \sum_r n_r m_r / n`.
    var : Tensor, shape (C,)
        Biased variance :math:`\big(\sum_r M_r + \sum_r n_r (m_r - \mu)^2\big) / n`.
    """
    weights = counts[:, None]
    n = counts.sum()
    mean = (weights * means).sum(dim=0) / n
    between = (weights * (means - mean) ** 2).sum(dim=0)
    return n, mean, (squares.sum(dim=0) + between) / n


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for 16-bit inputs (as PyTorch's kernels accumulate), else the input's own dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _first_values(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """The shift K: the first entry of each channel, shape of ``x`` with ``dims`` set to 1."""
    for dim in dims:
        x = x.narrow(dim, 0, 1)
    return x


def synced_moments(
    x: torch.Tensor, dims: tuple[int, ...], group: dist.ProcessGroup | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance of ``x`` over ``dims`` *and over all processes*, from one all_gather.

    Parameters
    ----------
    x : Tensor, shape (N_r, C, *)
        This process's shard; the shards may have different sizes N_r but none may be empty.
    dims : tuple of int
        Dimensions reduced over, e.g. ``(0,)`` for (N, C), ``(0, 2, 3)`` for (N, C, H, W).
    group : ProcessGroup, optional
        The processes to sync over (default: all).

    Returns
    -------
    mean, var : Tensor, shape (C,), float64
        Global mean and biased variance per channel, the same on every process.

    Raises
    ------
    ValueError
        On *every* process, when some process's shard is empty, or when the global batch holds a
        single value per channel (as ``torch.nn.BatchNorm`` does in training mode).
    """
    channels = x.shape[1]
    local_count = count(x, dims)
    if x.shape[0] == 0:  # still take part in the gather, so that every process can raise
        mean = torch.zeros(channels, dtype=torch.float64)
        squares = torch.zeros(channels, dtype=torch.float64)
    else:
        work = x.to(_accumulation_dtype(x.dtype))
        shift = _first_values(work.detach(), dims)
        shifted = work - shift  # exact near the data (Sterbenz), exactly 0 in a constant channel
        shifted_mean = shifted.mean(dim=dims, keepdim=True)
        centered = shifted - shifted_mean
        mean = (shift.double() + shifted_mean.double()).reshape(channels)  # K + mean(x - K), unrounded
        squares = (centered * centered).sum(dim=dims).double()
    stats = torch.cat([torch.tensor([float(local_count)], dtype=torch.float64), mean, squares])
    gathered = AllGather.apply(stats, group)  # (P, 1 + 2C): the only collective of the forward pass
    counts, means, all_squares = gathered[:, 0], gathered[:, 1 : 1 + channels], gathered[:, 1 + channels :]
    empty = [r for r, c in enumerate(counts.tolist()) if c == 0]
    if empty:
        raise ValueError(
            f"x must hold at least one sample on every process: the shard of process(es) {empty} is "
            f"empty (this process's shape {tuple(x.shape)})"
        )
    n, mean, var = merge_moments(counts, means, all_squares)
    if n.item() <= 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)} "
            f"on {len(counts)} process(es)"
        )
    return mean, var


def _parameter(name: str, value: object, channels: int) -> torch.Tensor | None:
    """``value`` if it is None or a floating-point tensor of shape (channels,), else raise naming it."""
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({channels},) or None, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if tuple(value.shape) != (channels,):
        raise ValueError(f"{name} must have shape ({channels},), one entry per channel of x, got {tuple(value.shape)}")
    return value


def synced_batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float = 1e-5,
    group: dist.ProcessGroup | None = None,
) -> torch.Tensor:
    r"""Training-mode batch norm of this process's shard with the statistics of all shards.

    :math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta` per channel, with
    :math:`\mu, \sigma^2` from :func:`synced_moments` (one ``all_gather``): the rows of
    ``torch.nn.BatchNorm`` applied to the concatenated global batch. The deviations are formed as
    :math:`(x - K) - (\mu - K)` with this shard's shift :math:`K` (its first value per channel), so
    a large mean costs no digits and a constant channel gives exactly :math:`\beta`.

    Parameters
    ----------
    x : Tensor, shape (N_r, C) or (N_r, C, *)
        This process's shard (16-bit inputs are computed in float32 and returned in their dtype).
    weight, bias : Tensor, shape (C,), or None (γ = 1, β = 0)
    eps : float
    group : ProcessGroup, optional

    Raises
    ------
    TypeError, ValueError
        For a bad argument (named), an empty shard on any process (raised on every process), or a
        global batch of one value per channel.
    """
    _checks.float_tensor("x", x)
    if x.dim() < 2:
        raise ValueError(f"x must be at least 2-D (N, C, *), got shape {tuple(x.shape)}")
    weight = _parameter("weight", weight, x.shape[1])
    bias = _parameter("bias", bias, x.shape[1])
    _checks.positive_float("eps", eps)
    dims = (0, *range(2, x.dim()))
    mean, var = synced_moments(x, dims, group)
    work = x.to(_accumulation_dtype(x.dtype))
    shift = _first_values(work.detach(), dims)
    offset = channel_view(mean, x.dim()) - shift.double()  # mu - K, accurate in float64
    centered = (work - shift) - offset.to(work.dtype)
    out = centered * channel_view(torch.rsqrt(var + eps), x.dim()).to(work.dtype)
    if weight is not None:
        out = out * channel_view(weight, x.dim()).to(work.dtype)
    if bias is not None:
        out = out + channel_view(bias, x.dim()).to(work.dtype)
    return out.to(x.dtype)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_rank(
    rank: int, world_size: int, port: int, out_dir: str, fn: Callable[..., Any], args: tuple
) -> None:
    """Body of one spawned process: join the gloo group, run ``fn``, save its result, leave."""
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        result = fn(rank, world_size, *args)
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], world_size: int = 2, args: tuple = ()) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` CPU processes joined in a gloo group.

    The processes are started with ``torch.multiprocessing.spawn`` (so ``fn`` must be importable
    by name: a module-level function, not one defined in a notebook), on 127.0.0.1 and a free port,
    and stopped when they return.

    Returns
    -------
    list
        ``fn``'s return value on each rank, in rank order (it must be picklable by ``torch.save``).
    """
    world_size = _checks.positive_int("world_size", world_size)
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_run_rank, args=(world_size, free_port(), out_dir, fn, args), nprocs=world_size, join=True)
        return [torch.load(Path(out_dir) / f"rank{r}.pt", weights_only=False) for r in range(world_size)]


def batchnorm_checks(
    rank: int,
    world_size: int,
    x_full: torch.Tensor,
    dout_full: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
) -> dict[str, Any]:
    """The chapter's worker: plain, synced and PyTorch's synced batch norm on this rank's shard.

    Every process holds the same global batch ``x_full`` (N, C), upstream gradient ``dout_full``
    (N, C) and affine parameters ``weight``, ``bias`` (C,), and takes its own shard of N / world_size
    consecutive rows.
    The loss is ``sum(out * dout)``, so ``dout`` is the gradient reaching the layer's output.

    Returns
    -------
    dict
        ``plain_out``: ``torch.nn.BatchNorm1d`` in training mode on the shard alone;
        ``synced_out``, ``grad_x``: :func:`synced_batch_norm`'s output and input gradient for the shard;
        ``grad_weight``, ``grad_bias``: γ and β gradients summed over processes (what data-parallel
        training applies); ``syncbn_error``: the message ``torch.nn.SyncBatchNorm`` raises on CPU;
        ``syncbn_batches_tracked``: its ``num_batches_tracked`` after that failed call.
    """
    if x_full.shape[0] % world_size:
        raise ValueError(f"x_full must split into {world_size} equal shards, got {x_full.shape[0]} rows")
    rows = x_full.shape[0] // world_size
    shard = slice(rank * rows, (rank + 1) * rows)
    x, dout = x_full[shard].clone(), dout_full[shard]
    channels = x.shape[1]

    plain = torch.nn.BatchNorm1d(channels)
    with torch.no_grad():
        plain_out = plain(x)

    x.requires_grad_(True)
    weight = weight.clone().requires_grad_(True)
    bias = bias.clone().requires_grad_(True)
    out = synced_batch_norm(x, weight, bias)
    (out * dout).sum().backward()
    grad_weight, grad_bias = weight.grad.clone(), bias.grad.clone()
    dist.all_reduce(grad_weight)
    dist.all_reduce(grad_bias)

    syncbn = torch.nn.SyncBatchNorm(channels)
    try:
        syncbn(x.detach())
        syncbn_error = ""
    except ValueError as error:
        syncbn_error = str(error)
    return {
        "plain_out": plain_out,
        "synced_out": out.detach(),
        "grad_x": x.grad,
        "grad_weight": grad_weight,
        "grad_bias": grad_bias,
        "syncbn_error": syncbn_error,
        "syncbn_batches_tracked": int(syncbn.num_batches_tracked),
    }
