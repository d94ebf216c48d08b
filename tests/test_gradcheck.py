"""companion.gradcheck: centered differences against known derivatives and torch.autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.gradcheck import numerical_gradient, relative_error


def test_gradient_of_a_sum_of_squares():
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]])
    grad = numerical_gradient(lambda v: v**2, x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-9, atol=1e-9)


def test_upstream_gradient_is_contracted_and_matches_autograd():
    rng = np.random.default_rng(0)
    x, w, dout = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    grad = numerical_gradient(lambda v: np.tanh(v @ w), x, dout)
    xt = torch.tensor(x, requires_grad=True)
    torch.tanh(xt @ torch.tensor(w)).backward(torch.tensor(dout))
    assert relative_error(grad, xt.grad.numpy()) < 1e-9


def test_x_is_restored_and_f_may_reuse_its_output_buffer():
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    before = x.copy()
    buffer = np.empty_like(x)

    def f(v):  # returns the same array every call
        np.multiply(v, 3.0, out=buffer)
        return buffer

    np.testing.assert_allclose(numerical_gradient(f, x), 3.0, rtol=1e-9)
    np.testing.assert_array_equal(x, before)


def test_scalar_output_and_h():
    x = np.array([0.3, -0.7])
    grad = numerical_gradient(lambda v: np.sum(np.sin(v)), x, h=1e-4)
    np.testing.assert_allclose(grad, np.cos(x), rtol=1e-8)


def test_relative_error_formula():
    a, b = np.array([1.0, -2.0, 0.0]), np.array([1.0, -1.0, 1e-30])
    assert relative_error(a, b) == pytest.approx(1.0 / 3.0)  # max |a−b| = 1, max(|a|+|b|) = 3
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    assert relative_error(np.ones(2), -np.ones(2)) == 1.0
    # a near-zero component does not dominate, unlike the element-wise ratio
    assert relative_error([1.0, 1e-12], [1.0, 2e-12]) < 1e-11


def test_float32_x_is_refused():
    with pytest.raises(TypeError, match="x must have dtype float64, got float32"):
        numerical_gradient(lambda v: v, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="x must have dtype float64, got int64"):
        numerical_gradient(lambda v: v, np.ones(3, dtype=np.int64))


def test_x_that_is_not_an_array_is_refused():
    with pytest.raises(TypeError, match="x must be a numpy array"):
        numerical_gradient(lambda v: v, [1.0, 2.0])


@pytest.mark.parametrize("h", [0, -1e-5, float("inf"), "1e-5"])
def test_bad_h_is_refused(h):
    with pytest.raises(ValueError, match="h must be a positive float"):
        numerical_gradient(lambda v: v, np.ones(3), h=h)


def test_dout_of_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"dout must have the shape of f\(x\), \(3,\), got \(4,\)"):
        numerical_gradient(lambda v: v, np.ones(3), dout=np.ones(4))


def test_relative_error_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        relative_error(np.ones(3), np.ones(4))


def test_relative_error_refuses_nan_and_infinity():
    with pytest.raises(ValueError, match="a contains NaN or infinity"):
        relative_error([np.nan], [1.0])
    with pytest.raises(ValueError, match="b contains NaN or infinity"):
        relative_error([1.0], [np.inf])


def test_numerical_gradient_refuses_a_read_only_array():
    x = np.arange(3.0)
    x.flags.writeable = False
    with pytest.raises(ValueError, match=r"x must be writeable.*x\.copy\(\)"):
        numerical_gradient(lambda: None, x)
