"""Numerics of companion.nn: large means in float32, constant channels, tiny variances."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import companion.nn as cnn
from companion.nn._stats import shifted_moments

BETA = 0.5
CONSTANT = 12345.678

# (factory taking dtype, input shape, dims of one statistic)
LAYERS = {
    "batchnorm1d": (lambda dtype: cnn.BatchNorm1d(4, dtype=dtype), (64, 4), (0,)),
    "batchnorm2d": (lambda dtype: cnn.BatchNorm2d(4, dtype=dtype), (8, 4, 3, 3), (0, 2, 3)),
    "ghost": (lambda dtype: cnn.GhostBatchNorm1d(4, 16, dtype=dtype), (64, 4), None),
    "renorm": (lambda dtype: cnn.BatchRenorm1d(4, r_max=1.0, d_max=0.0, dtype=dtype), (64, 4), (0,)),
    "layernorm": (lambda dtype: cnn.LayerNorm(64, dtype=dtype), (4, 64), (1,)),
    "groupnorm": (lambda dtype: cnn.GroupNorm(2, 4, dtype=dtype), (4, 4, 16), None),
    "instancenorm": (lambda dtype: cnn.InstanceNorm2d(4, dtype=dtype), (2, 4, 8, 8), (2, 3)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_float32_with_a_large_mean_matches_float64(name):
    """Mean 1e4, std 1: the float32 output agrees with float64 to 1e-4 relative."""
    make, shape, _ = LAYERS[name]
    gen = torch.Generator().manual_seed(0)
    x64 = 1e4 + torch.randn(shape, generator=gen, dtype=torch.float64)
    x32 = x64.float()
    y32, y64 = make(torch.float32)(x32), make(torch.float64)(x32.double())
    assert (y32.double() - y64).abs().max() / y64.abs().max() < 1e-4


def test_float32_running_stats_with_a_large_mean_match_float64():
    gen = torch.Generator().manual_seed(1)
    x = (1e4 + torch.randn(64, 4, generator=gen, dtype=torch.float64)).float()
    bn32, bn64 = cnn.BatchNorm1d(4, momentum=None), cnn.BatchNorm1d(4, momentum=None, dtype=torch.float64)
    bn32(x)
    bn64(x.double())
    torch.testing.assert_close(bn32.running_mean.double(), bn64.running_mean, rtol=1e-7, atol=0)
    torch.testing.assert_close(bn32.running_var.double(), bn64.running_var, rtol=1e-4, atol=0)


def test_one_pass_variance_fails_where_ours_holds():
    """E[x^2] - E[x]^2 in float32 at mean 1e4 has no correct digit left; the shifted two-pass keeps ~6."""
    gen = torch.Generator().manual_seed(2)
    x64 = 1e4 + torch.randn(256, 1, generator=gen, dtype=torch.float64)
    x32 = x64.float()
    exact = x32.double().var(dim=0, unbiased=False)
    one_pass = (x32 * x32).mean(dim=0) - x32.mean(dim=0) ** 2
    _, _, ours = shifted_moments(x32, (0,))
    assert (one_pass.double() - exact).abs().item() / exact.item() > 0.1
    assert (ours.reshape(-1).double() - exact).abs().item() / exact.item() < 1e-5


@pytest.mark.parametrize("n", [2, 3, 8, 16, 100])
def test_constant_channel_gives_exactly_beta_where_torch_does_not(n):
    """A constant float32 channel of 12345.678 with beta = 0.5: ours returns 0.5 exactly.

    PyTorch 2.13 on CPU returned 0.4253 (n = 2), 0.7268 (n = 3), 0.2268 (n = 8), 0.7268 (n = 16)
    and 1.2329 (n = 100): whatever its kernel rounds leaves a residual that is divided by
    sqrt(eps) = 3.2e-3. A plain float32 two-pass is not enough either: here ``x.mean()`` of 3, 8 or
    16 copies was one unit in the last place off (9.8e-4), which gives 0.795 or 0.205. Ours subtracts
    a sample of the channel first, so every deviation is exactly 0.
    """
    x = torch.cat([torch.full((n, 1), CONSTANT), torch.randn(n, 1, generator=torch.Generator().manual_seed(n))], 1)
    ours, ref = cnn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        ours.bias.fill_(BETA)
        ref.bias.fill_(BETA)
    assert torch.all(ours(x)[:, 0] == BETA)
    assert torch.all((ref(x)[:, 0] - BETA).abs() > 1e-3)  # torch's value, documented above
    assert ours.running_mean[0] == pytest.approx(0.1 * CONSTANT, rel=1e-7)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_constant_group_gives_exactly_beta_in_every_layer(name):
    make, shape, _ = LAYERS[name]
    layer = make(torch.float32)
    if name == "instancenorm":
        layer = cnn.InstanceNorm2d(4, affine=True)
    with torch.no_grad():
        for param_name, param in layer.named_parameters():
            param.fill_(BETA if param_name == "bias" else 3.0)
    x = torch.full(shape, CONSTANT)
    y = layer(x)
    assert torch.all(y == BETA)
    y.sum().backward()  # the gradient of a constant group is finite too
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_variances_give_finite_outputs_and_gradients(dtype):
    """Values 0, 8 and 16 times the smallest normal number: the squares underflow to 0, nothing is NaN."""
    tiny = torch.finfo(dtype).tiny
    x = (torch.arange(18, dtype=dtype).reshape(6, 3) % 3) * 8 * tiny
    layers = [
        cnn.BatchNorm1d(3, dtype=dtype),
        cnn.GhostBatchNorm1d(3, 2, dtype=dtype),
        cnn.BatchRenorm1d(3, dtype=dtype),
        cnn.LayerNorm(3, dtype=dtype),
        cnn.GroupNorm(1, 3, dtype=dtype),
        cnn.RMSNorm(3, dtype=dtype),
    ]
    for layer in layers:
        xg = x.clone().requires_grad_(True)
        y = layer(xg)
        y.pow(2).sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(xg.grad).all(), layer


def test_zero_running_variance_in_eval_stays_finite():
    bn = cnn.BatchNorm1d(3).eval()
    bn.running_var.zero_()
    y = bn(torch.randn(4, 3))
    assert torch.isfinite(y).all() and y.abs().max() < 1e4  # at most |x| / sqrt(eps)


def test_rmsnorm_of_zeros_is_zero():
    for eps in (None, 1e-6):
        y = cnn.RMSNorm(4, eps=eps)(torch.zeros(2, 4))
        assert torch.equal(y, torch.zeros(2, 4))
