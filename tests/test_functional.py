"""companion.functional against torch.nn.functional, torch.autograd and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.functional import (
    NormCache,
    batchnorm_backward,
    batchnorm_backward_compact,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    update_running_stats_keras,
    update_running_stats_torch,
)
import companion.functional as F
from companion.gradcheck import numerical_gradient, relative_error

BN_BACKWARDS = [batchnorm_backward, batchnorm_backward_compact]
SHAPES = [(7, 5), (4, 3, 6), (4, 3, 5, 2)]  # (N, D), (N, C, L), (N, C, H, W)


def make(shape, dtype=np.float64, seed=0, loc=1.5, scale=3.0):
    """x, a per-channel gamma and beta, and an upstream gradient."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale + loc).astype(dtype)
    channels = shape[1]
    gamma = rng.uniform(0.5, 2.0, channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


def torch_bn(x, gamma, beta, dout, eps=1e-5):
    """Output and gradients of torch's training-mode batch norm."""
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


# ----------------------------------------------------------------------------- batch norm forward


@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_forward_matches_torch_float64(shape):
    x, gamma, beta, dout = make(shape)
    out, cache = batchnorm_forward(x, gamma, beta)
    np.testing.assert_allclose(out, torch_bn(x, gamma, beta, dout)[0], rtol=0, atol=1e-12)
    axes = (0,) + tuple(range(2, x.ndim))
    np.testing.assert_allclose(cache.mean, x.mean(axis=axes), rtol=1e-13)
    np.testing.assert_allclose(cache.var, x.var(axis=axes), rtol=1e-12)  # biased
    assert cache.count == x.size // x.shape[1]


@pytest.mark.parametrize("shape", [(64, 16), (8, 4, 6, 5)])
def test_batchnorm_forward_matches_torch_float32(shape):
    x, gamma, beta, _ = make(shape, np.float32)
    out, _ = batchnorm_forward(x, gamma, beta)
    expected = torch.nn.functional.batch_norm(
        torch.from_numpy(x), None, None, torch.from_numpy(gamma), torch.from_numpy(beta), training=True
    )
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-6, atol=1e-6)


def test_batchnorm_forward_normalizes_and_leaves_input_alone():
    x, gamma, beta, _ = make((50, 4, 3, 3))
    x_before = x.copy()
    out, cache = batchnorm_forward(x, np.ones(4), np.zeros(4))
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # 1 − eps/var, up to eps
    np.testing.assert_allclose(cache.x_hat, out, atol=1e-14)  # γ = 1, β = 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x, gamma, beta, dout = make((6, 3, 2, 2), dtype)
    out, cache = batchnorm_forward(x, gamma.astype(np.float64), beta.astype(np.float64))
    assert out.dtype == dtype
    for backward in BN_BACKWARDS:
        assert all(g.dtype == dtype for g in backward(dout, cache))
    out, cache = layernorm_forward(x, np.ones(x.shape[1:]), np.zeros(x.shape[1:]))
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in layernorm_backward(dout, cache))


# ----------------------------------------------------------------------------- batch norm backward


@pytest.mark.parametrize("backward", BN_BACKWARDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_backward_matches_autograd(backward, shape):
    x, gamma, beta, dout = make(shape)
    _, cache = batchnorm_forward(x, gamma, beta)
    _, dx_t, dgamma_t, dbeta_t = torch_bn(x, gamma, beta, dout)
    dx, dgamma, dbeta = backward(dout, cache)
    np.testing.assert_allclose(dx, dx_t, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dgamma, dgamma_t, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dbeta, dbeta_t, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backward", BN_BACKWARDS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3)])
def test_batchnorm_backward_matches_finite_differences(backward, shape):
    x, gamma, beta, dout = make(shape)
    _, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = backward(dout, cache)
    num_dx = numerical_gradient(lambda v: batchnorm_forward(v, gamma, beta)[0], x, dout)
    num_dgamma = numerical_gradient(lambda v: batchnorm_forward(x, v, beta)[0], gamma, dout)
    num_dbeta = numerical_gradient(lambda v: batchnorm_forward(x, gamma, v)[0], beta, dout)
    assert relative_error(dx, num_dx) < 1e-7
    assert relative_error(dgamma, num_dgamma) < 1e-7
    assert relative_error(dbeta, num_dbeta) < 1e-7


@pytest.mark.parametrize("shape", [(32, 10), (8, 6, 5, 4)])
def test_staged_equals_compact(shape):
    x, gamma, beta, dout = make(shape, seed=3)
    _, cache = batchnorm_forward(x, gamma, beta)
    for staged, compact in zip(batchnorm_backward(dout, cache), batchnorm_backward_compact(dout, cache)):
        np.testing.assert_allclose(staged, compact, rtol=0, atol=1e-10)


def test_dx_is_orthogonal_to_ones_and_x_hat():
    """The two constraints batch norm imposes: per channel, dx sums to 0 and is orthogonal to x̂.

    Orthogonality is exact only as eps → 0 (mean(x̂²) = var / (var + eps)), hence the tiny eps.
    """
    x, gamma, beta, dout = make((16, 3, 4, 4), seed=5)
    _, cache = batchnorm_forward(x, gamma, beta, eps=1e-15)
    dx, _, _ = batchnorm_backward_compact(dout, cache)
    np.testing.assert_allclose(dx.sum(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose((dx * cache.x_hat).sum(axis=(0, 2, 3)), 0, atol=1e-12)


# ----------------------------------------------------------------------------- layer norm


@pytest.mark.parametrize("shape", SHAPES)
def test_layernorm_matches_torch(shape):
    x, _, _, dout = make(shape, seed=1)
    rng = np.random.default_rng(2)
    gamma, beta = rng.uniform(0.5, 2, shape[1:]), rng.standard_normal(shape[1:])
    out, cache = layernorm_forward(x, gamma, beta)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out_t = torch.nn.functional.layer_norm(xt, shape[1:], gt, bt, eps=1e-5)
    out_t.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=0, atol=1e-12)
    assert cache.mean.shape == cache.var.shape == (shape[0],)
    for mine, theirs in zip(layernorm_backward(dout, cache), (xt.grad, gt.grad, bt.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 6), (2, 2, 3, 3)])
def test_layernorm_backward_matches_finite_differences(shape):
    x, _, _, dout = make(shape, seed=4)
    rng = np.random.default_rng(5)
    gamma, beta = rng.uniform(0.5, 2, shape[1:]), rng.standard_normal(shape[1:])
    _, cache = layernorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert relative_error(dx, numerical_gradient(lambda v: layernorm_forward(v, gamma, beta)[0], x, dout)) < 1e-7
    assert relative_error(dgamma, numerical_gradient(lambda v: layernorm_forward(x, v, beta)[0], gamma, dout)) < 1e-7
    assert relative_error(dbeta, numerical_gradient(lambda v: layernorm_forward(x, gamma, v)[0], beta, dout)) < 1e-7


def test_layernorm_float32_matches_torch():
    x, _, _, _ = make((16, 64), np.float32, seed=6)
    gamma, beta = np.full(64, 1.5, np.float32), np.full(64, 0.25, np.float32)
    out, _ = layernorm_forward(x, gamma, beta)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (64,), torch.from_numpy(gamma), torch.from_numpy(beta))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- running statistics


def unbiased(cache: NormCache) -> np.ndarray:
    return cache.var * cache.count / (cache.count - 1)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3, 3)])
def test_torch_rule_matches_torch_buffers(momentum, shape):
    bn_class = torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d
    bn = bn_class(shape[1], momentum=momentum).double()
    running_mean, running_var = np.zeros(shape[1]), np.ones(shape[1])
    for step in range(5):
        x, _, _, _ = make(shape, seed=10 + step, loc=step)
        bn(torch.from_numpy(x))
        _, cache = batchnorm_forward(x, np.ones(shape[1]), np.zeros(shape[1]))
        running_mean, running_var = update_running_stats_torch(
            running_mean, running_var, cache.mean, unbiased(cache),
            momentum=momentum, num_batches_tracked=int(bn.num_batches_tracked),
        )
    np.testing.assert_allclose(running_mean, bn.running_mean.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(running_var, bn.running_var.numpy(), rtol=1e-12)


def test_cumulative_average_is_the_plain_mean_of_batch_statistics():
    running_mean, running_var = np.zeros(3), np.ones(3)
    means, variances = [], []
    for t in range(1, 5):
        x, _, _, _ = make((10, 3), seed=t)
        _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3))
        means.append(cache.mean)
        variances.append(unbiased(cache))
        running_mean, running_var = update_running_stats_torch(
            running_mean, running_var, cache.mean, unbiased(cache), momentum=None, num_batches_tracked=t
        )
    np.testing.assert_allclose(running_mean, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(running_var, np.mean(variances, axis=0), rtol=1e-12)


def test_keras_momentum_099_is_torch_momentum_001():
    bn = torch.nn.BatchNorm1d(4, momentum=0.01).double()
    keras_mean, keras_var = np.zeros(4), np.ones(4)
    torch_mean, torch_var = np.zeros(4), np.ones(4)
    for step in range(4):
        x, _, _, _ = make((16, 4), seed=20 + step, loc=2.0)
        bn(torch.from_numpy(x))
        _, cache = batchnorm_forward(x, np.ones(4), np.zeros(4))
        keras_mean, keras_var = update_running_stats_keras(keras_mean, keras_var, cache.mean, unbiased(cache), momentum=0.99)
        torch_mean, torch_var = update_running_stats_torch(torch_mean, torch_var, cache.mean, unbiased(cache), momentum=0.01)
        np.testing.assert_allclose(keras_mean, torch_mean, rtol=1e-14, atol=1e-16)
        np.testing.assert_allclose(keras_var, torch_var, rtol=1e-14)
    np.testing.assert_allclose(keras_mean, bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(keras_var, bn.running_var.numpy(), rtol=1e-12)


def test_cs231n_rule_with_biased_variance():
    """CS231n: running = 0.9 · running + 0.1 · batch, with np.var (biased)."""
    x, _, _, _ = make((12, 3), seed=7)
    _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3))
    new_mean, new_var = update_running_stats_keras(np.zeros(3), np.ones(3), cache.mean, cache.var, momentum=0.9)
    np.testing.assert_allclose(new_mean, 0.1 * x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(new_var, 0.9 + 0.1 * x.var(axis=0), rtol=1e-13)


def test_running_stat_helpers_do_not_mutate():
    running_mean, running_var = np.zeros(2), np.ones(2)
    update_running_stats_torch(running_mean, running_var, np.ones(2), np.full(2, 3.0))
    update_running_stats_keras(running_mean, running_var, np.ones(2), np.full(2, 3.0))
    np.testing.assert_array_equal(running_mean, 0)
    np.testing.assert_array_equal(running_var, 1)


# ----------------------------------------------------------------------------- numerics


def test_large_mean_float32_is_accurate_and_naive_variance_is_not():
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((256, 8))).astype(np.float32)
    x64 = x.astype(np.float64)
    reference = (x64 - x64.mean(axis=0)) / np.sqrt(x64.var(axis=0) + 1e-5)
    out, cache = batchnorm_forward(x, np.ones(8, np.float32), np.zeros(8, np.float32))
    assert np.max(np.abs(out - reference)) / np.max(np.abs(reference)) < 1e-4
    assert np.max(np.abs(cache.var - x64.var(axis=0)) / x64.var(axis=0)) < 1e-4
    # the one-pass formula E[x²] − E[x]² in float32: x² ≈ 1e8 has a rounding step of 8
    naive_var = (x * x).mean(axis=0) - x.mean(axis=0) ** 2
    naive_out = (x - x.mean(axis=0)) / np.sqrt(np.maximum(naive_var, 0) + np.float32(1e-5))
    assert np.max(np.abs(naive_var - x64.var(axis=0)) / x64.var(axis=0)) > 0.1
    assert np.max(np.abs(naive_out - reference)) / np.max(np.abs(reference)) > 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [0.1, 12345.678, -3e7])
def test_constant_channel_gives_exactly_beta(dtype, value):
    x, gamma, beta, dout = make((9, 3, 2, 2), dtype)
    x[:, 1] = value
    out, cache = batchnorm_forward(x, gamma, beta)
    np.testing.assert_array_equal(out[:, 1], np.full((9, 2, 2), beta[1], dtype))
    assert cache.var[1] == 0
    dx, dgamma, _ = batchnorm_backward_compact(dout, cache)
    assert np.all(np.isfinite(dx)) and dgamma[1] == 0


def test_tiny_variance_gives_no_nan():
    rng = np.random.default_rng(1)
    x = 1.0 + 1e-20 * rng.standard_normal((16, 3))
    for eps in (1e-5, 1e-300):
        out, cache = batchnorm_forward(x, np.ones(3), np.zeros(3), eps=eps)
        assert np.all(np.isfinite(out))
        assert all(np.all(np.isfinite(g)) for g in batchnorm_backward_compact(np.ones_like(x), cache))
        assert all(np.all(np.isfinite(g)) for g in batchnorm_backward(np.ones_like(x), cache))
    x32 = np.full((16, 3), 5.0, np.float32)
    x32[0, 0] = np.nextafter(np.float32(5.0), np.float32(6.0))
    out, _ = batchnorm_forward(x32, np.ones(3, np.float32), np.zeros(3, np.float32))
    assert np.all(np.isfinite(out))


# ----------------------------------------------------------------------------- bad input


def bn_args(shape=(4, 3), dtype=np.float64):
    x, gamma, beta, _ = make(shape, dtype)
    return x, gamma, beta


@pytest.mark.parametrize("forward", [batchnorm_forward, layernorm_forward])
def test_integer_x_is_refused(forward):
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        forward(np.ones((4, 3), dtype=int), np.ones(3), np.zeros(3))


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5, 6)])
def test_x_of_wrong_ndim_is_refused(shape):
    with pytest.raises(ValueError, match="x must be 2-D or 3-D or 4-D"):
        batchnorm_forward(np.ones(shape), np.ones(shape[-1]), np.zeros(shape[-1]))
    with pytest.raises(ValueError, match="x must be"):
        layernorm_forward(np.ones(shape), np.ones(shape[1:]), np.zeros(shape[1:]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_x_with_nan_or_inf_is_refused(bad):
    x, gamma, beta = bn_args((4, 3, 2, 2))
    x[2, 1, 0, 1] = bad
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        batchnorm_forward(x, gamma, beta)
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        layernorm_forward(x, np.ones(x.shape[1:]), np.zeros(x.shape[1:]))


def test_x_that_overflows_is_refused():
    x = np.full((4, 2), 3e38, np.float32)
    x[::2] = -3e38
    with pytest.raises(ValueError, match="x is too large for float32"):
        batchnorm_forward(x, np.ones(2), np.zeros(2))
    x = np.array([[1e20, 0.0], [-1e20, 0.0]], np.float32)  # squares overflow
    with pytest.raises(ValueError, match="x is too large for float32"):
        batchnorm_forward(x, np.ones(2), np.zeros(2))


@pytest.mark.parametrize("name", ["gamma", "beta"])
@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 2, 2)])
def test_gamma_beta_of_wrong_shape_are_refused(name, shape):
    x, gamma, beta = bn_args(shape)
    params = {"gamma": gamma, "beta": beta, name: np.ones(4)}
    with pytest.raises(ValueError, match=rf"{name} must have shape \(3,\) to match x's 3"):
        batchnorm_forward(x, **params)
    params = {"gamma": np.ones(shape[1:]), "beta": np.zeros(shape[1:]), name: np.ones(5)}
    with pytest.raises(ValueError, match=rf"{name} must have shape"):
        layernorm_forward(x, **params)


@pytest.mark.parametrize("name", ["gamma", "beta"])
def test_gamma_beta_bad_values_are_refused(name):
    x, gamma, beta = bn_args()
    with pytest.raises(ValueError, match=f"{name} contains NaN"):
        batchnorm_forward(x, **{"gamma": gamma, "beta": beta, name: np.array([1.0, np.nan, 1.0])})
    with pytest.raises(TypeError, match=f"{name} must be a real-valued array"):
        batchnorm_forward(x, **{"gamma": gamma, "beta": beta, name: np.array(["a", "b", "c"])})


@pytest.mark.parametrize("eps", [0, -1e-5, float("nan"), "1e-5", None])
def test_bad_eps_is_refused(eps):
    x, gamma, beta = bn_args()
    with pytest.raises(ValueError, match="eps must be a positive float"):
        batchnorm_forward(x, gamma, beta, eps=eps)
    with pytest.raises(ValueError, match="eps must be a positive float"):
        layernorm_forward(x, np.ones(3), np.zeros(3), eps=eps)


def test_eps_that_vanishes_in_float32_is_refused():
    x, gamma, beta = bn_args(dtype=np.float32)
    with pytest.raises(ValueError, match="eps must be representable in float32"):
        batchnorm_forward(x, gamma, beta, eps=1e-60)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1), (1, 3, 1)])
def test_one_value_per_channel_is_refused(shape):
    with pytest.raises(ValueError, match="x must hold more than 1 value per channel"):
        batchnorm_forward(np.ones(shape), np.ones(3), np.zeros(3))


@pytest.mark.parametrize("backward", BN_BACKWARDS + [layernorm_backward])
def test_bad_dout_and_cache_are_refused(backward):
    x, gamma, beta = bn_args((4, 3))
    forward = layernorm_forward if backward is layernorm_backward else batchnorm_forward
    _, cache = forward(x, gamma, beta)
    with pytest.raises(ValueError, match=r"dout must have the shape of x, \(4, 3\)"):
        backward(np.ones((3, 4)), cache)
    with pytest.raises(TypeError, match="dout must be a floating-point array"):
        backward(np.ones((4, 3), dtype=int), cache)
    with pytest.raises(ValueError, match="dout contains NaN"):
        backward(np.full((4, 3), np.nan), cache)
    with pytest.raises(TypeError, match="cache must be the NormCache"):
        backward(np.ones((4, 3)), (x, gamma))


def test_running_stat_helpers_refuse_bad_input():
    zeros, ones = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match=r"batch_mean must have the shape of running_mean, \(3,\)"):
        update_running_stats_torch(zeros, ones, np.zeros(4), ones)
    with pytest.raises(ValueError, match="batch_var must have the shape of running_mean"):
        update_running_stats_keras(zeros, ones, zeros, np.ones((3, 1)))
    with pytest.raises(TypeError, match="running_var must be a floating-point array"):
        update_running_stats_torch(zeros, np.ones(3, dtype=int), zeros, ones)
    with pytest.raises(ValueError, match="momentum must be a float in"):
        update_running_stats_torch(zeros, ones, zeros, ones, momentum=1.5)
    with pytest.raises(ValueError, match="momentum must be a float in"):
        update_running_stats_keras(zeros, ones, zeros, ones, momentum=None)
    with pytest.raises(ValueError, match="num_batches_tracked is required"):
        update_running_stats_torch(zeros, ones, zeros, ones, momentum=None)
    with pytest.raises(ValueError, match="num_batches_tracked must be a positive int"):
        update_running_stats_torch(zeros, ones, zeros, ones, momentum=None, num_batches_tracked=0)


# ----------------------------------------------------------------------------- issue 14, item 12


def test_tensor_requiring_grad_is_refused_by_name():
    x = torch.randn(8, 3, requires_grad=True)
    with pytest.raises(TypeError, match=r"x is a torch tensor that requires grad.*x\.detach\(\)\.numpy\(\)"):
        F.batchnorm_forward(x, np.ones(3), np.zeros(3))
    gamma = torch.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match="gamma is a torch tensor that requires grad"):
        F.batchnorm_forward(np.random.randn(8, 3), gamma, np.zeros(3))
    out, _ = F.batchnorm_forward(x.detach(), np.ones(3), np.zeros(3))  # no graph: accepted
    assert out.shape == (8, 3)


@pytest.mark.parametrize("which", ["running_mean", "running_var", "batch_mean", "batch_var_unbiased"])
def test_running_update_refuses_nan_statistics(which):
    stats = {k: np.ones(3) for k in ("running_mean", "running_var", "batch_mean", "batch_var_unbiased")}
    stats[which] = np.array([1.0, np.nan, 1.0])
    with pytest.raises(ValueError, match=f"{which} contains NaN or infinity"):
        F.update_running_stats_torch(**stats)


def test_keras_update_refuses_infinite_statistics():
    with pytest.raises(ValueError, match="batch_var contains NaN or infinity"):
        F.update_running_stats_keras(np.zeros(2), np.ones(2), np.zeros(2), np.array([1.0, np.inf]))


def test_num_batches_tracked_may_be_the_buffer_itself():
    bn = torch.nn.BatchNorm1d(3, momentum=None)
    x = torch.randn(8, 3)
    bn(x)
    bn(x + 1)
    mean, var = np.zeros(3), np.ones(3)
    batch_mean, batch_var = (x + 1).mean(0).numpy(), (x + 1).var(0).numpy()
    new = F.update_running_stats_torch(np.ones(3), var, batch_mean, batch_var, None, bn.num_batches_tracked)
    ref = F.update_running_stats_torch(np.ones(3), var, batch_mean, batch_var, None, 2)
    np.testing.assert_array_equal(new[0], ref[0])
    with pytest.raises(ValueError, match="num_batches_tracked must be a positive int"):
        F.update_running_stats_torch(mean, var, mean, var, None, torch.tensor(0))
    with pytest.raises(ValueError, match="num_batches_tracked must be a positive int"):
        F.update_running_stats_torch(mean, var, mean, var, None, torch.tensor(1.5))
