"""companion.distributed: batch norm synchronized over two real gloo processes (one all_gather of each
shard's count, mean and squared deviations, merged by Chan's formula) equals single-process batch norm on
the concatenated batch, outputs and gradients, in float64 to rounding; bad input fails early and clearly.

Starting processes costs seconds, so every check that needs a process group runs in one launch.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.distributed import batchnorm_checks, free_port, launch, merge_moments, synced_batch_norm

# Uneven shards: process 0 holds 3 images, process 1 holds 5.
SPLIT = (3, 5)


def global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = 4 + 3 * torch.randn(sum(SPLIT), 3, 2, 2, generator=gen, dtype=torch.float64)
    dout = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    weight = torch.rand(3, generator=gen, dtype=torch.float64) + 0.5
    bias = torch.randn(3, generator=gen, dtype=torch.float64)
    return x, dout, weight, bias


def worker(rank: int, world_size: int) -> dict[str, object]:
    """Runs in each spawned process (imported by name, so it lives at module level)."""
    x, dout, weight, bias = global_batch()
    x = x.split(SPLIT)[rank].clone().requires_grad_(True)
    weight, bias = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    out = synced_batch_norm(x, weight, bias)
    (out * dout.split(SPLIT)[rank]).sum().backward()

    constant = torch.full((4, 2), 12345.678)  # every value of both channels equal, in float32
    constant_out = synced_batch_norm(constant, None, torch.tensor([0.5, -0.25]))

    gen = torch.Generator().manual_seed(1)
    checks = batchnorm_checks(rank, world_size, torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen),
                              torch.ones(4), torch.zeros(4))
    return {"out": out.detach(), "grad_x": x.grad, "grad_weight": weight.grad, "grad_bias": bias.grad,
            "constant_out": constant_out, "checks": checks, **edge_cases(rank)}


def edge_cases(rank: int) -> dict[str, object]:
    """Inputs that broke the earlier all-reduce version: float16 counts, large means, empty shards."""
    gen = torch.Generator().manual_seed(2 + rank)
    half = torch.randn(35_000, 2, generator=gen).to(torch.float16)  # 70,000 values per channel in all
    half_out = synced_batch_norm(half, None, None)
    large = (1e4 + torch.randn(300 + 100 * rank, 3, generator=gen, dtype=torch.float64)).float()
    large_out = synced_batch_norm(large, None, None)
    shard = torch.randn(0 if rank == 1 else 4, 3)  # process 1 holds nothing
    try:
        synced_batch_norm(shard, None, None)
        empty_error = ""
    except ValueError as error:
        empty_error = str(error)
    return {"half": half, "half_out": half_out, "large": large, "large_out": large_out,
            "empty_error": empty_error}


def single_process(rank: int, world_size: int) -> str:
    """A (1, 3) batch on a group of one process: nothing to normalize with, so it must raise."""
    try:
        synced_batch_norm(torch.randn(1, 3), None, None)
    except ValueError as error:
        return str(error)
    return ""


@pytest.fixture(scope="module")
def results() -> list[dict[str, object]]:
    return launch(worker, world_size=2)


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    x, dout, weight, bias = global_batch()
    bn = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.copy_(weight)
        bn.bias.copy_(bias)
    x.requires_grad_(True)
    out = bn(x)
    (out * dout).sum().backward()
    return {"out": out.detach(), "grad_x": x.grad, "grad_weight": bn.weight.grad, "grad_bias": bn.bias.grad}


def test_outputs_equal_full_batch(results, reference):
    out = torch.cat([r["out"] for r in results])
    torch.testing.assert_close(out, reference["out"], rtol=0, atol=1e-12)


def test_input_gradients_equal_full_batch(results, reference):
    grad_x = torch.cat([r["grad_x"] for r in results])
    torch.testing.assert_close(grad_x, reference["grad_x"], rtol=0, atol=1e-12)


def test_parameter_gradients_sum_to_full_batch(results, reference):
    for name in ("grad_weight", "grad_bias"):
        total = results[0][name] + results[1][name]  # what data-parallel training adds up
        torch.testing.assert_close(total, reference[name], rtol=1e-12, atol=1e-12)


def test_constant_channel_gives_exactly_beta(results):
    for r in results:
        assert torch.equal(r["constant_out"], torch.tensor([[0.5, -0.25]]).expand(4, 2))


def test_chapter_worker(results):
    checks = [r["checks"] for r in results]
    gen = torch.Generator().manual_seed(1)
    x, dout = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    # Unsynced: each process normalizes its own half.
    expected_plain = torch.cat([nn.BatchNorm1d(4)(half) for half in x.split(4)]).detach()
    torch.testing.assert_close(torch.cat([c["plain_out"] for c in checks]), expected_plain, rtol=1e-5, atol=1e-5)
    # Synced: the full batch, forward and backward.
    x.requires_grad_(True)
    bn = nn.BatchNorm1d(4)
    (bn(x) * dout).sum().backward()
    torch.testing.assert_close(torch.cat([c["grad_x"] for c in checks]), x.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(checks[0]["grad_weight"], bn.weight.grad, rtol=1e-5, atol=1e-6)
    # PyTorch's SyncBatchNorm refuses CPU tensors in a process group, after counting the batch.
    assert all(c["syncbn_error"].startswith("SyncBatchNorm expected input tensor to be on GPU") for c in checks)
    assert all(c["syncbn_batches_tracked"] == 1 for c in checks)


def test_float16_counts_beyond_float16_range(results):
    x = torch.cat([r["half"] for r in results]).double()
    exact = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    out = torch.cat([r["half_out"] for r in results])
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert (out.double() - exact).abs().max() < 4e-3  # a few float16 roundings of values up to ~4


def test_large_mean_merges_without_cancellation(results):
    x = torch.cat([r["large"] for r in results]).double()  # the float32 values, exactly
    exact = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    out = torch.cat([r["large_out"] for r in results]).double()
    assert (out - exact).abs().max() < 1e-5  # torch.nn.BatchNorm1d is off by ~4e-3 here


def test_empty_shard_raises_the_same_clear_error_on_every_process(results):
    for r in results:
        assert "at least one sample on every process" in r["empty_error"]
        assert "[1]" in r["empty_error"]


def test_one_value_per_channel_on_one_process_raises_like_torch():
    (message,) = launch(single_process, world_size=1)
    assert message.startswith("Expected more than 1 value per channel when training")


def test_merge_moments_is_chans_formula():
    gen = torch.Generator().manual_seed(3)
    shards = [1e6 + torch.randn(n, 2, generator=gen, dtype=torch.float64) for n in (1, 7, 40)]
    counts = torch.tensor([float(len(s)) for s in shards], dtype=torch.float64)
    means = torch.stack([s.mean(0) for s in shards])
    squares = torch.stack([((s - s.mean(0)) ** 2).sum(0) for s in shards])
    n, mean, var = merge_moments(counts, means, squares)
    full = torch.cat(shards)
    assert n.item() == 48
    torch.testing.assert_close(mean, full.mean(0), rtol=0, atol=1e-9)
    torch.testing.assert_close(var, full.var(0, unbiased=False), rtol=1e-9, atol=0)


def test_free_port_is_a_port():
    assert 1024 <= free_port() <= 65535


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        synced_batch_norm(torch.ones(4, 2, dtype=torch.long), None, None)
    with pytest.raises(ValueError, match="at least 2-D"):
        synced_batch_norm(torch.ones(4), None, None)
    with pytest.raises(ValueError, match="eps must be a positive float"):
        synced_batch_norm(torch.ones(4, 2), None, None, eps=0.0)
    with pytest.raises(ValueError, match=r"weight must have shape \(2,\)"):
        synced_batch_norm(torch.ones(4, 2), torch.ones(3), None)
    with pytest.raises(TypeError, match="weight must be a torch.Tensor"):
        synced_batch_norm(torch.ones(4, 2), [1.0, 1.0], None)
    with pytest.raises(TypeError, match="bias must be a floating-point tensor"):
        synced_batch_norm(torch.ones(4, 2), None, torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="world_size must be a positive int"):
        launch(worker, world_size=0)
