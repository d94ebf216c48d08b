"""companion.nn's error contract: no silent NaN in training, exact messages."""

from __future__ import annotations

import pytest
import torch

import companion.nn as cnn

TRAINING_LAYERS = [
    (lambda: cnn.BatchNorm1d(3), (8, 3)),
    (lambda: cnn.BatchNorm2d(3), (8, 3, 2, 2)),
    (lambda: cnn.GhostBatchNorm1d(3, 4), (8, 3)),
    (lambda: cnn.BatchRenorm1d(3), (8, 3)),
    (lambda: cnn.InstanceNorm2d(3, track_running_stats=True), (8, 3, 2, 2)),
    (lambda: cnn.LayerNorm(3), (8, 3)),
    (lambda: cnn.GroupNorm(1, 3), (8, 3, 2)),
    (lambda: cnn.RMSNorm(3), (8, 3)),
]


def buffers(layer: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in layer.state_dict().items()}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("make, shape", TRAINING_LAYERS)
def test_nan_or_inf_in_a_training_input_raises_and_keeps_the_state(make, shape, bad):
    layer = make()
    before = buffers(layer)
    x = torch.randn(shape)
    x.view(-1)[5] = bad
    with pytest.raises(ValueError, match="input contains NaN or infinity"):
        layer(x)
    after = buffers(layer)
    for key, value in before.items():
        assert torch.equal(after[key], value), key  # running stats and counter unchanged


@pytest.mark.parametrize("make, shape", TRAINING_LAYERS)
def test_float32_spread_whose_variance_overflows_raises(make, shape):
    x = torch.randn(shape) * 1e20
    with pytest.raises(ValueError, match="input is too large for torch.float32"):
        make()(x)
    make().double()(x.double())  # fine in float64


def test_eval_mode_batch_norm_passes_nan_through_where_it_is():
    """Deliberate exception, documented: eval mode is a fixed elementwise map, not checked."""
    bn = cnn.BatchNorm1d(3).eval()
    x = torch.randn(4, 3)
    x[1, 2] = float("nan")
    y = bn(x)
    assert torch.isnan(y[1, 2]) and torch.isnan(y).sum() == 1


def test_ghost_batch_of_one_sample_says_so():
    with pytest.raises(ValueError, match="virtual_batch_size=1 leaves a single value per channel") as info:
        cnn.GhostBatchNorm1d(3, 1)(torch.randn(5, 3))
    assert "1 more than a multiple" not in str(info.value)
    cnn.GhostBatchNorm1d(3, 1)(torch.randn(5, 3, 4))  # positions: each ghost batch has 4 values


def test_ghost_batch_remainder_of_one_is_named():
    with pytest.raises(ValueError, match="a batch of 5 is 1 more than a multiple of virtual_batch_size=2"):
        cnn.GhostBatchNorm1d(3, 2)(torch.randn(5, 3))


def test_statistics_whose_sum_overflows_but_are_finite_pass():
    """The fast check sums the statistics; a finite set whose sum overflows must not raise."""
    from companion import _checks

    stat = torch.full((8,), 3e38)
    _checks.finite_statistics("input", stat, stat)  # no error
    with pytest.raises(ValueError, match="input contains NaN"):
        _checks.finite_statistics("input", torch.tensor([1.0, float("nan")]), torch.tensor([float("nan")]))
