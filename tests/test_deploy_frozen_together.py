"""companion.deploy and companion.frozen together: every batch norm freezes, frozen layers fold,
and folding refuses what it cannot reproduce exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import companion.nn as cnn
from companion.deploy import FoldedConv2d, FoldedLinear, fold_batchnorm, fold_sequential
from companion.frozen import (
    FrozenBatchNorm,
    FrozenBatchNorm1d,
    FrozenBatchNorm2d,
    FrozenBatchNorm3d,
    freeze_batchnorm,
)


def trained(module: nn.Module, shape: tuple[int, ...], steps: int = 3) -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    module.train()
    with torch.no_grad():
        for _ in range(steps):
            module(2 + 3 * torch.randn(shape, generator=gen))
    return module


@pytest.mark.parametrize("bn, frozen_class, shape", [
    (cnn.GhostBatchNorm2d(3, 4), FrozenBatchNorm2d, (8, 3, 2, 2)),
    (cnn.BatchRenorm2d(3), FrozenBatchNorm2d, (8, 3, 2, 2)),
    (cnn.GhostBatchNorm1d(3, 4), FrozenBatchNorm1d, (8, 3)),
    (cnn.BatchRenorm1d(3), FrozenBatchNorm1d, (8, 3)),
    (nn.SyncBatchNorm(3), FrozenBatchNorm, (8, 3, 2, 2)),
    (nn.BatchNorm3d(3), FrozenBatchNorm3d, (4, 3, 2, 2, 2)),
])
def test_every_batch_norm_freezes_and_stops_moving(bn, frozen_class, shape):
    model = nn.Sequential(nn.Identity(), trained(bn, shape))
    frozen = freeze_batchnorm(model)
    assert type(frozen[1]) is frozen_class
    assert not any(p.requires_grad for p in frozen[1].parameters())
    x = torch.randn(shape)
    expected = copy.deepcopy(model).eval()(x)
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    frozen.train()
    torch.testing.assert_close(frozen(x), expected, rtol=1e-5, atol=1e-5)
    for key, value in frozen.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_fold_sequential_of_a_frozen_model_needs_no_eval():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), cnn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(12, 4), cnn.BatchNorm1d(4))
    trained(model, (8, 2, 4, 4))
    frozen = freeze_batchnorm(model)
    frozen.train()  # a frozen layer has no training mode
    folded = fold_sequential(frozen)
    assert [type(m) for m in folded] == [FoldedConv2d, nn.ReLU, nn.Flatten, FoldedLinear]
    x = torch.randn(5, 2, 4, 4)
    torch.testing.assert_close(folded(x), model.eval()(x), rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_accepts_a_frozen_layer_in_train_mode():
    bn = FrozenBatchNorm1d.from_batchnorm(trained(nn.BatchNorm1d(3), (8, 3)).eval()).train()
    linear = nn.Linear(2, 3)
    x = torch.randn(4, 2)
    torch.testing.assert_close(fold_batchnorm(linear, bn)(x), bn(linear(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [nn.BatchNorm1d, cnn.BatchNorm1d])
def test_bn_with_tracking_switched_off_after_training_folds(make):
    bn = trained(make(3), (8, 3)).eval()
    bn.track_running_stats = False  # buffers kept: eval mode still uses them
    linear = nn.Linear(2, 3)
    x = torch.randn(4, 2)
    torch.testing.assert_close(fold_batchnorm(linear, bn)(x), bn(linear(x)), rtol=1e-5, atol=1e-5)


def test_linear_bn1d_fold_refuses_3d_input_where_it_would_differ():
    model = nn.Sequential(nn.Linear(4, 4), cnn.BatchNorm1d(4))
    trained(model, (8, 4))
    model.eval()
    folded = fold_sequential(model)
    x2 = torch.randn(6, 4)
    torch.testing.assert_close(folded(x2), model(x2), rtol=1e-5, atol=1e-5)
    x3 = torch.randn(6, 4, 4)
    assert model(x3).shape == (6, 4, 4)  # the unfolded model runs (and normalizes dim 1)
    with pytest.raises(ValueError, match="input must be 2-D, got 3-D.*FoldedLinear has a batch norm folded in"):
        folded(x3)


def test_unbatched_conv_input_is_refused_after_folding():
    conv, bn = nn.Conv1d(2, 3, 1), trained(nn.BatchNorm1d(3), (8, 3, 5)).eval()
    fused = fold_batchnorm(conv, bn)
    torch.testing.assert_close(fused(torch.ones(2, 2, 4)), bn(conv(torch.ones(2, 2, 4))), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="input must be 3-D"):
        fused(torch.ones(2, 4))


@pytest.mark.parametrize("layer, bn", [
    (nn.Linear(4, 3), nn.BatchNorm2d(3)),
    (nn.Conv2d(2, 3, 1), nn.BatchNorm1d(3)),
    (nn.Conv1d(2, 3, 1), cnn.BatchNorm2d(3)),
])
def test_pairs_that_cannot_be_folded_exactly_are_refused(layer, bn):
    with pytest.raises(ValueError, match="cannot be folded exactly"):
        fold_batchnorm(layer, bn.eval())
    with pytest.raises(ValueError, match="cannot be folded exactly"):
        fold_sequential(nn.Sequential(layer, bn.eval()))


def test_subclassed_layers_are_refused():
    class Scaled(nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(TypeError, match="not a subclass"):
        fold_batchnorm(Scaled(2, 3), nn.BatchNorm1d(3).eval())


def test_folded_layer_takes_a_second_fold():
    bn1, bn2 = trained(nn.BatchNorm1d(3), (8, 3)).eval(), trained(nn.BatchNorm1d(3), (8, 3), 5).eval()
    linear = nn.Linear(2, 3)
    x = torch.randn(4, 2)
    twice = fold_batchnorm(fold_batchnorm(linear, bn1), bn2)
    torch.testing.assert_close(twice(x), bn2(bn1(linear(x))), rtol=1e-5, atol=1e-5)
