"""companion.frozen: a frozen batch norm computes exactly what the eval-mode layer computes, in any mode,
and never changes; freeze_batchnorm swaps every batch norm of a model for one."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import companion.nn as cnn
from companion.frozen import FrozenBatchNorm1d, FrozenBatchNorm2d, freeze_batchnorm


def trained(bn: nn.Module, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """``bn`` after a few training batches and with non-trivial gamma, beta; returned in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    bn.train()
    with torch.no_grad():
        for _ in range(3):
            bn(3 + 2 * torch.randn(*shape, generator=gen, dtype=bn.running_mean.dtype))
        if bn.weight is not None:
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features, generator=gen))
    return bn.eval()


CASES = [
    (nn.BatchNorm1d, FrozenBatchNorm1d, (16, 4)),
    (nn.BatchNorm1d, FrozenBatchNorm1d, (16, 4, 5)),
    (nn.BatchNorm2d, FrozenBatchNorm2d, (8, 3, 4, 4)),
    (cnn.BatchNorm1d, FrozenBatchNorm1d, (16, 4)),
    (cnn.BatchNorm2d, FrozenBatchNorm2d, (8, 3, 4, 4)),
]


@pytest.mark.parametrize("bn_class, frozen_class, shape", CASES)
def test_frozen_equals_eval_mode_in_both_modes(bn_class, frozen_class, shape):
    bn = trained(bn_class(shape[1]), shape)
    frozen = frozen_class.from_batchnorm(bn)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    expected = bn(x)
    for mode in (False, True):
        frozen.train(mode)
        torch.testing.assert_close(frozen(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bn_class, frozen_class, shape", CASES)
def test_input_gradient_equals_eval_mode(bn_class, frozen_class, shape):
    bn = trained(bn_class(shape[1]), shape)
    frozen = frozen_class.from_batchnorm(bn)
    x1 = torch.randn(*shape, generator=torch.Generator().manual_seed(2), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    dout = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    (bn(x1) * dout).sum().backward()
    (frozen(x2) * dout).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-6, atol=1e-6)


def test_nothing_trains_and_nothing_moves():
    frozen = FrozenBatchNorm2d.from_batchnorm(trained(nn.BatchNorm2d(3), (8, 3, 4, 4))).train()
    before = {name: t.clone() for name, t in frozen.named_buffers()}
    frozen(torch.randn(8, 3, 4, 4) * 10 + 5)
    assert list(frozen.parameters()) == []
    assert all(torch.equal(t, before[name]) for name, t in frozen.named_buffers())


def test_batch_of_one_in_train_mode():
    frozen = FrozenBatchNorm2d(5).train()
    assert frozen(torch.randn(1, 5, 1, 1)).shape == (1, 5, 1, 1)


def test_loads_a_batchnorm_state_dict():
    bn = trained(nn.BatchNorm2d(3), (8, 3, 4, 4))
    frozen = FrozenBatchNorm2d(3)
    frozen.load_state_dict(bn.state_dict())  # strict: num_batches_tracked is dropped, nothing missing
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(frozen(x), bn(x))
    assert set(frozen.state_dict()) == set(bn.state_dict()) - {"num_batches_tracked"}


def test_affine_false_counts_as_identity_affine():
    bn = trained(nn.BatchNorm1d(4, affine=False), (16, 4))
    frozen = FrozenBatchNorm1d.from_batchnorm(bn)
    x = torch.randn(6, 4)
    torch.testing.assert_close(frozen(x), bn(x))
    assert torch.equal(frozen.weight, torch.ones(4)) and torch.equal(frozen.bias, torch.zeros(4))


def test_keeps_dtype_and_eps():
    bn = trained(nn.BatchNorm1d(4, eps=1e-3).double(), (16, 4))
    frozen = FrozenBatchNorm1d.from_batchnorm(bn)
    assert frozen.running_var.dtype == torch.float64 and frozen.eps == 1e-3
    x = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(frozen(x), bn(x), rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 5),
    hw=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_matches_functional_batch_norm_eval(n, c, hw, seed):
    gen = torch.Generator().manual_seed(seed)
    frozen = FrozenBatchNorm2d(c)
    with torch.no_grad():
        frozen.running_mean.copy_(torch.randn(c, generator=gen) * 3)
        frozen.running_var.copy_(torch.rand(c, generator=gen) * 4 + 1e-3)
        frozen.weight.copy_(torch.randn(c, generator=gen))
        frozen.bias.copy_(torch.randn(c, generator=gen))
    x = torch.randn(n, c, hw, hw, generator=gen)
    expected = nn.functional.batch_norm(
        x, frozen.running_mean, frozen.running_var, frozen.weight, frozen.bias, training=False, eps=frozen.eps
    )
    torch.testing.assert_close(frozen(x), expected, rtol=1e-5, atol=1e-5)


def small_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), cnn.BatchNorm2d(4), nn.ReLU()),
        nn.Flatten(),
        nn.Linear(64, 8),
        nn.BatchNorm1d(8),
        nn.Linear(8, 3),
    )


def test_freeze_batchnorm_replaces_every_layer_and_keeps_the_function():
    model = small_model()
    x = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        model.train()(x)  # some running statistics
    original = copy.deepcopy(model)
    frozen = freeze_batchnorm(model)
    kinds = [type(m) for m in frozen.modules()]
    assert kinds.count(FrozenBatchNorm2d) == 2 and kinds.count(FrozenBatchNorm1d) == 1
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, cnn.BatchNorm2d)) for m in frozen.modules())
    frozen.train()
    torch.testing.assert_close(frozen(x), model.eval()(x), rtol=1e-5, atol=1e-6)
    # The original is untouched (same modules, same state), and the copy shares no tensor with it.
    assert [type(m) for m in model.modules()] == [type(m) for m in original.modules()]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values()))
    assert frozen[0].weight.data_ptr() != model[0].weight.data_ptr()
    # Only the convolutions and linear layers remain trainable.
    bn_params = 2 * (4 + 4 + 8)
    assert sum(p.numel() for p in frozen.parameters()) == sum(p.numel() for p in model.parameters()) - bn_params


def test_freeze_a_single_layer():
    bn = trained(nn.BatchNorm2d(3), (8, 3, 4, 4))
    frozen = freeze_batchnorm(bn)
    assert isinstance(frozen, FrozenBatchNorm2d)


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        freeze_batchnorm("resnet")
    with pytest.raises(ValueError, match="running statistics"):
        freeze_batchnorm(nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)))
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        FrozenBatchNorm1d(0)
    with pytest.raises(ValueError, match="eps must be a positive float"):
        FrozenBatchNorm2d(3, eps=0.0)
    with pytest.raises(ValueError, match=r"4-D"):
        FrozenBatchNorm2d(3)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="num_features=3"):
        FrozenBatchNorm1d(3)(torch.randn(2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        FrozenBatchNorm1d(3)(torch.ones(2, 3, dtype=torch.long))
