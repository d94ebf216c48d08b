"""Invariances of companion.nn layers, checked with hypothesis in float64.

Scaling the input by a > 0 is the same as dividing eps by a**2:
``layer_eps(a * x + b) == layer_{eps / a**2}(x)`` exactly (up to rounding) for batch, layer and
group norm; with eps fixed, the two outputs differ by at most
``0.5 * |x - mean| / sqrt(var) * eps * |1 - 1/a**2| / var`` (mean value theorem on ``1 / sqrt(v + eps)``).
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import companion.nn as cnn

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
F64 = torch.float64

seeds = st.integers(0, 2**31 - 1)
scales = st.floats(0.05, 20.0)
shifts = st.floats(-100.0, 100.0)


def sample(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=F64) * 2.0 + 0.5


# (layer factory taking eps, input shape, the dims each statistic is taken over)
LAYERS = {
    "batchnorm1d": (lambda eps: cnn.BatchNorm1d(3, eps=eps, dtype=F64), (6, 3), (0,)),
    "batchnorm2d": (lambda eps: cnn.BatchNorm2d(2, eps=eps, dtype=F64), (3, 2, 2, 3), (0, 2, 3)),
    "ghost": (lambda eps: cnn.GhostBatchNorm1d(3, 4, eps=eps, dtype=F64), (4, 3, 2), (0, 2)),
    "layernorm": (lambda eps: cnn.LayerNorm((3, 4), eps=eps, dtype=F64), (5, 3, 4), (1, 2)),
    "groupnorm": (lambda eps: cnn.GroupNorm(2, 4, eps=eps, dtype=F64), (3, 4, 3), None),
    "instancenorm": (lambda eps: cnn.InstanceNorm2d(2, eps=eps, affine=True, dtype=F64), (2, 2, 3, 3), (2, 3)),
}
names = st.sampled_from(sorted(LAYERS))


def with_random_affine(layer: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=F64))
    return layer


@SETTINGS
@given(name=names, seed=seeds, a=scales, b=shifts)
def test_scaling_the_input_equals_dividing_eps(name, seed, a, b):
    make, shape, _ = LAYERS[name]
    x = sample(seed, shape)
    layer = with_random_affine(make(1e-3), seed)
    rescaled = make(1e-3 / a**2)
    rescaled.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(a * x + b), rescaled(x), rtol=1e-9, atol=1e-9)


@SETTINGS
@given(name=names, seed=seeds, a=scales, b=shifts)
def test_shift_and_scale_invariance_up_to_eps(name, seed, a, b):
    make, shape, dims = LAYERS[name]
    layer = make(1e-5)  # affine identity, so the output is x_hat
    x = sample(seed, shape)
    y, y_moved = layer(x), layer(a * x + b)
    if dims is None:  # group norm: statistics per (sample, group)
        grouped = x.reshape(shape[0], 2, -1)
        var = grouped.var(dim=2, unbiased=False, keepdim=True).expand_as(grouped).reshape(shape)
    else:
        var = x.var(dim=dims, unbiased=False, keepdim=True)
    x_hat_without_eps = y.abs() * torch.sqrt((var + 1e-5) / var)
    bound = 0.5 * x_hat_without_eps * 1e-5 * abs(1 - 1 / a**2) / var + 1e-9
    assert torch.all((y - y_moved).abs() <= bound)


@SETTINGS
@given(seed=seeds, a=scales)
def test_rmsnorm_is_scale_invariant_up_to_eps(seed, a):
    layer = cnn.RMSNorm(5, eps=1e-3, dtype=F64)
    rescaled = cnn.RMSNorm(5, eps=1e-3 / a**2, dtype=F64)
    x = sample(seed, (4, 5))
    torch.testing.assert_close(layer(a * x), rescaled(x), rtol=1e-9, atol=1e-9)


@SETTINGS
@given(name=names, seed=seeds)
def test_training_outputs_have_zero_mean_and_unit_variance(name, seed):
    """With gamma = 1, beta = 0 each normalized group has mean 0 and variance var / (var + eps)."""
    make, shape, dims = LAYERS[name]
    if name == "ghost":  # statistics per ghost batch: covered by the chunk-by-chunk parity tests
        return
    eps = 1e-5
    x = sample(seed, shape)
    y = make(eps)(x)
    if dims is None:
        x, y, dims = x.reshape(shape[0], 2, -1), y.reshape(shape[0], 2, -1), (2,)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    torch.testing.assert_close(y.mean(dim=dims), torch.zeros_like(y.mean(dim=dims)), rtol=0, atol=1e-12)
    torch.testing.assert_close(y.var(dim=dims, unbiased=False, keepdim=True), var / (var + eps), rtol=1e-10, atol=0)


@SETTINGS
@given(seed=seeds, spatial=st.booleans())
def test_batchnorm_can_represent_the_identity(seed, spatial):
    """gamma = sqrt(var_B + eps) and beta = mu_B give back the input (Ioffe & Szegedy 2015, section 3)."""
    shape, dims = ((5, 3, 4), (0, 2)) if spatial else ((7, 3), (0,))
    x = sample(seed, shape)
    layer = cnn.BatchNorm1d(3, dtype=F64)
    with torch.no_grad():
        layer.weight.copy_(torch.sqrt(x.var(dim=dims, unbiased=False) + layer.eps))
        layer.bias.copy_(x.mean(dim=dims))
    torch.testing.assert_close(layer(x), x, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(seed=seeds, batch_size=st.integers(2, 12), extra=st.integers(0, 5))
def test_ghost_batchnorm_with_a_large_virtual_batch_is_batchnorm(seed, batch_size, extra):
    x = sample(seed, (batch_size, 3))
    ghost = cnn.GhostBatchNorm1d(3, virtual_batch_size=batch_size + extra, dtype=F64)
    plain = cnn.BatchNorm1d(3, dtype=F64)
    torch.testing.assert_close(ghost(x), plain(x), rtol=0, atol=0)
    torch.testing.assert_close(ghost.running_var, plain.running_var, rtol=0, atol=0)


@SETTINGS
@given(seed=seeds, a=st.floats(0.5, 2.0))
def test_batch_renorm_train_output_equals_eval_output_when_no_clip_is_active(seed, a):
    """r and d exist to make training compute gamma * (x - mu) / sigma + beta with the running stats."""
    x = sample(seed, (16, 3))
    layer = cnn.BatchRenorm1d(3, r_max=1e6, d_max=1e6, dtype=F64)
    with torch.no_grad():
        layer.running_mean.copy_(x.mean(dim=0) + 0.3)
        layer.running_var.copy_(x.var(dim=0) * a)
    frozen = cnn.BatchNorm1d(3, dtype=F64).eval()
    frozen.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), frozen(x), rtol=1e-10, atol=1e-10)
