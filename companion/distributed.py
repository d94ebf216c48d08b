r"""Batch norm across processes: statistics synchronized with ``torch.distributed`` all-reduce.

In data-parallel training every process sees its own shard of the global batch. A plain batch norm
layer normalizes each shard with that shard's statistics; a *synchronized* one computes the mean and
variance over the whole global batch of :math:`n = \sum_r n_r` values per channel. With two
all-reduces (sums over the processes) of one number per channel each, and in two passes so that no
digits cancel:

.. math::

    \mu = K + \frac{1}{n} \sum_r \sum_{i \in r} (x_i - K), \qquad
    \sigma^2 = \frac{1}{n} \sum_r \sum_{i \in r} (x_i - \mu)^2 ,

where the shift :math:`K` (one value per channel, broadcast from rank 0) cancels mathematically and
keeps a constant channel exactly constant (see :mod:`companion.nn._stats`). Never
:math:`E[x^2] - E[x]^2`, whose two terms cancel catastrophically when the mean is large.

Gradients flow through the all-reduces: the backward of a sum over processes is a sum over processes
of the incoming gradients (:class:`AllReduceSum`), so autograd reproduces the gradient of the global
batch's loss, :math:`\sum_r L_r`.

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

__all__ = ["AllReduceSum", "batchnorm_checks", "free_port", "launch", "synced_batch_norm", "synced_moments"]


class AllReduceSum(torch.autograd.Function):
    """Sum a tensor over all processes of ``group``, differentiably.

    Forward: every process gets :math:`s = \\sum_r t_r`. Backward: the gradient of the total loss
    :math:`\\sum_r L_r` with respect to :math:`t_r` is :math:`\\sum_q \\partial L_q / \\partial s`,
    an all-reduce of the incoming gradients.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
        ctx.group = group
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad_output.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def synced_moments(
    x: torch.Tensor, dims: tuple[int, ...], group: dist.ProcessGroup | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, deviations and biased variance of ``x`` over ``dims`` *and over all processes*.

    Parameters
    ----------
    x : Tensor, shape (N_r, C, *)
        This process's shard; the shards may have different sizes N_r but not zero.
    dims : tuple of int
        Dimensions reduced over, e.g. ``(0,)`` for (N, C), ``(0, 2, 3)`` for (N, C, H, W).
    group : ProcessGroup, optional
        The processes to sync over (default: all).

    Returns
    -------
    mean : Tensor, shape of ``x`` with ``dims`` set to 1
        Global mean per channel, the same on every process.
    centered : Tensor, shape of ``x``
        ``x - mean`` for this shard.
    var : Tensor, shape of ``mean``
        Global biased variance per channel.
    """
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample on every process, got shape {tuple(x.shape)}")
    shift = x.detach()
    for dim in dims:
        shift = shift.narrow(dim, 0, 1)
    shift = shift.clone()  # a copy: the broadcast writes into it
    dist.broadcast(shift, src=dist.get_global_rank(group, 0) if group is not None else 0, group=group)
    n = torch.tensor(float(count(x, dims)), dtype=x.dtype)
    dist.all_reduce(n, group=group)  # the number of values per channel in the global batch
    shifted = x - shift
    shifted_mean = AllReduceSum.apply(shifted.sum(dim=dims, keepdim=True), group) / n
    centered = shifted - shifted_mean
    var = AllReduceSum.apply((centered * centered).sum(dim=dims, keepdim=True), group) / n
    return shift + shifted_mean, centered, var


def synced_batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float = 1e-5,
    group: dist.ProcessGroup | None = None,
) -> torch.Tensor:
    r"""Training-mode batch norm of this process's shard with the statistics of all shards.

    :math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta` per channel, with
    :math:`\mu, \sigma^2` from :func:`synced_moments`: the rows of ``torch.nn.BatchNorm`` applied to
    the concatenated global batch.

    Parameters
    ----------
    x : Tensor, shape (N_r, C) or (N_r, C, *)
    weight, bias : Tensor, shape (C,), or None (γ = 1, β = 0)
    eps : float
    group : ProcessGroup, optional
    """
    _checks.float_tensor("x", x)
    if x.dim() < 2:
        raise ValueError(f"x must be at least 2-D (N, C, *), got shape {tuple(x.shape)}")
    _checks.positive_float("eps", eps)
    dims = (0, *range(2, x.dim()))
    _, centered, var = synced_moments(x, dims, group)
    out = centered * torch.rsqrt(var + eps)
    if weight is not None:
        out = out * channel_view(weight, x.dim())
    if bias is not None:
        out = out + channel_view(bias, x.dim())
    return out


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
