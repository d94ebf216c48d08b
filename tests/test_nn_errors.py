"""Bad arguments and bad inputs raise early, with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import companion.nn as cnn
from companion import _checks

PER_CHANNEL = [
    cnn.BatchNorm1d,
    cnn.BatchNorm2d,
    cnn.GhostBatchNorm1d,
    cnn.GhostBatchNorm2d,
    cnn.BatchRenorm1d,
    cnn.BatchRenorm2d,
    cnn.InstanceNorm2d,
]


# --- constructor arguments -------------------------------------------------------------------

@pytest.mark.parametrize("cls", PER_CHANNEL)
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4", None])
def test_num_features_must_be_a_positive_int(cls, bad):
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        cls(bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda eps: cnn.BatchNorm1d(3, eps=eps),
        lambda eps: cnn.GhostBatchNorm2d(3, eps=eps),
        lambda eps: cnn.BatchRenorm1d(3, eps=eps),
        lambda eps: cnn.InstanceNorm2d(3, eps=eps),
        lambda eps: cnn.LayerNorm(3, eps=eps),
        lambda eps: cnn.GroupNorm(1, 3, eps=eps),
        lambda eps: cnn.RMSNorm(3, eps=eps),
    ],
)
@pytest.mark.parametrize("bad", [0.0, -1e-5, float("nan"), float("inf"), "1e-5"])
def test_eps_must_be_a_positive_float(make, bad):
    with pytest.raises(ValueError, match="eps must be a positive float"):
        make(bad)


@pytest.mark.parametrize("cls", PER_CHANNEL)
@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.1", True])
def test_momentum_must_lie_in_0_1(cls, bad):
    with pytest.raises(ValueError, match="momentum must be a float in"):
        cls(3, momentum=bad)


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda v: cnn.BatchNorm1d(3, affine=v), "affine"),
        (lambda v: cnn.BatchNorm2d(3, track_running_stats=v), "track_running_stats"),
        (lambda v: cnn.BatchNorm1d(3, bias=v), "bias"),
        (lambda v: cnn.LayerNorm(3, elementwise_affine=v), "elementwise_affine"),
        (lambda v: cnn.LayerNorm(3, bias=v), "bias"),
        (lambda v: cnn.GroupNorm(1, 3, affine=v), "affine"),
        (lambda v: cnn.RMSNorm(3, elementwise_affine=v), "elementwise_affine"),
    ],
)
def test_flags_must_be_bools(make, argument):
    with pytest.raises(ValueError, match=f"{argument} must be a bool"):
        make(1)


@pytest.mark.parametrize("cls", [cnn.LayerNorm, cnn.RMSNorm])
@pytest.mark.parametrize("bad", [0, -2, (), (3, 0), (2, 1.5), "abc", 2.0, None])
def test_normalized_shape_must_be_positive_ints(cls, bad):
    with pytest.raises(ValueError, match="normalized_shape must be a positive int or a sequence"):
        cls(bad)


@pytest.mark.parametrize(("num_groups", "num_channels", "argument"), [(0, 4, "num_groups"), (2, 0, "num_channels")])
def test_group_counts_must_be_positive(num_groups, num_channels, argument):
    with pytest.raises(ValueError, match=f"{argument} must be a positive int"):
        cnn.GroupNorm(num_groups, num_channels)


def test_groups_must_divide_channels():
    message = "num_channels must be divisible by num_groups, got num_channels=6 and num_groups=4"
    with pytest.raises(ValueError, match=message):
        cnn.GroupNorm(4, 6)


@pytest.mark.parametrize("cls", [cnn.GhostBatchNorm1d, cnn.GhostBatchNorm2d])
@pytest.mark.parametrize("bad", [0, -8, 1.5, None])
def test_virtual_batch_size_must_be_a_positive_int(cls, bad):
    with pytest.raises(ValueError, match="virtual_batch_size must be a positive int"):
        cls(3, virtual_batch_size=bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"r_max": 0.5}, "r_max must be a float >= 1"),
        ({"r_max": float("inf")}, "r_max must be a float >= 1"),
        ({"d_max": -1.0}, "d_max must be a float >= 0"),
        ({"warmup_steps": -1}, "warmup_steps must be a non-negative int"),
        ({"r_ramp_steps": 2.5}, "r_ramp_steps must be a non-negative int"),
        ({"d_ramp_steps": -5}, "d_ramp_steps must be a non-negative int"),
        ({"track_running_stats": False}, "track_running_stats must be True for batch renormalization"),
    ],
)
def test_batch_renorm_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnn.BatchRenorm2d(3, **kwargs)


# --- inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("layer", "shape", "expected"),
    [
        (cnn.BatchNorm1d(3), (2, 3, 4, 5), "2-D or 3-D \\(N, C\\) or \\(N, C, L\\), got 4-D"),
        (cnn.BatchNorm1d(3), (3,), "2-D or 3-D"),
        (cnn.BatchNorm2d(3), (2, 3, 4), "4-D \\(N, C, H, W\\), got 3-D"),
        (cnn.GhostBatchNorm1d(3), (2, 3, 4, 5), "2-D or 3-D"),
        (cnn.GhostBatchNorm2d(3), (2, 3), "4-D"),
        (cnn.BatchRenorm1d(3), (2, 3, 4, 5), "2-D or 3-D"),
        (cnn.BatchRenorm2d(3), (2, 3), "4-D"),
        (cnn.InstanceNorm2d(3), (2, 3), "3-D or 4-D"),
        (cnn.GroupNorm(1, 3), (3,), "at least 2-D"),
    ],
)
def test_wrong_number_of_dimensions(layer, shape, expected):
    with pytest.raises(ValueError, match=f"input must be {expected}"):
        layer(torch.randn(shape))


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (cnn.BatchNorm1d(3), (4, 5), "input has size 5 at dim 1, but num_features=3"),
        (cnn.BatchNorm2d(3), (4, 2, 3, 3), "input has size 2 at dim 1, but num_features=3"),
        (cnn.GhostBatchNorm1d(3), (4, 5, 2), "input has size 5 at dim 1, but num_features=3"),
        (cnn.BatchRenorm2d(3), (4, 5, 2, 2), "input has size 5 at dim 1, but num_features=3"),
        (cnn.InstanceNorm2d(3), (2, 4, 3, 3), "input has size 4 at dim 1, but num_features=3"),
        (cnn.InstanceNorm2d(3), (4, 3, 3), "input has size 4 at dim 0, but num_features=3"),
        (cnn.GroupNorm(1, 3), (2, 4, 5), "input has size 4 at dim 1, but num_channels=3"),
    ],
)
def test_wrong_number_of_channels(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(torch.randn(shape))


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (cnn.LayerNorm(4), (3, 5)),
        (cnn.LayerNorm((2, 3)), (4, 3, 2)),
        (cnn.LayerNorm((2, 3)), (3,)),
        (cnn.RMSNorm(4), (2, 3)),
    ],
)
def test_trailing_shape_must_match_normalized_shape(layer, shape):
    with pytest.raises(ValueError, match="input must end with normalized_shape="):
        layer(torch.randn(shape))


@pytest.mark.parametrize(
    "layer",
    [
        cnn.BatchNorm1d(3),
        cnn.GhostBatchNorm1d(3),
        cnn.BatchRenorm1d(3),
        cnn.LayerNorm(3),
        cnn.GroupNorm(1, 3),
        cnn.RMSNorm(3),
        cnn.InstanceNorm2d(3),
    ],
)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_tensors_are_refused(layer, dtype):
    shape = (2, 3, 4, 4) if isinstance(layer, cnn.InstanceNorm2d) else (4, 3)
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        layer(torch.ones(shape, dtype=dtype))


def test_non_tensors_are_refused():
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got ndarray"):
        cnn.BatchNorm1d(3)(np.ones((4, 3)))


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (cnn.BatchNorm1d(3), (1, 3)),
        (cnn.BatchNorm1d(3), (1, 3, 1)),
        (cnn.BatchNorm2d(3), (1, 3, 1, 1)),
        (cnn.GhostBatchNorm1d(3), (1, 3)),
        (cnn.BatchRenorm2d(3), (1, 3, 1, 1)),
    ],
)
def test_one_value_per_channel_in_training(layer, shape):
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        layer(torch.randn(shape))


def test_a_refused_batch_is_not_counted():
    """PyTorch 2.13 raises too, but only after incrementing num_batches_tracked (it reads 1 here)."""
    layer = cnn.BatchNorm1d(3, momentum=None)
    with pytest.raises(ValueError):
        layer(torch.randn(1, 3))
    assert int(layer.num_batches_tracked) == 0


def test_one_value_per_channel_is_fine_in_eval_but_not_without_running_stats():
    """Like PyTorch: eval mode uses the running statistics; without them it needs a batch (#156051)."""
    assert cnn.BatchNorm1d(3).eval()(torch.randn(1, 3)).shape == (1, 3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        cnn.BatchNorm1d(3, track_running_stats=False).eval()(torch.randn(1, 3))


def test_last_ghost_batch_of_one_sample():
    with pytest.raises(ValueError, match="virtual_batch_size=4; drop the last sample"):
        cnn.GhostBatchNorm1d(3, virtual_batch_size=4)(torch.randn(9, 3))
    # one sample with several positions is more than one value per channel: allowed
    assert cnn.GhostBatchNorm1d(3, virtual_batch_size=4)(torch.randn(9, 3, 2)).shape == (9, 3, 2)


def test_instance_norm_needs_more_than_one_position():
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        cnn.InstanceNorm2d(3)(torch.randn(2, 3, 1, 1))
    tracked = cnn.InstanceNorm2d(3, track_running_stats=True).eval()
    assert tracked(torch.randn(2, 3, 1, 1)).shape == (2, 3, 1, 1)


def test_group_of_a_single_value():
    with pytest.raises(ValueError, match="each group must hold more than 1 value"):
        cnn.GroupNorm(4, 4)(torch.randn(2, 4))


def test_the_base_class_leaves_the_accepted_shapes_to_subclasses():
    from companion.nn.batchnorm import _BatchNorm

    with pytest.raises(NotImplementedError):
        _BatchNorm(3)(torch.randn(4, 3))


def test_check_helpers_keep_their_contracts():
    """The shared helpers other modules import: float_array and friends."""
    assert _checks.positive_int("n", 3) == 3
    assert _checks.shape("normalized_shape", np.int64(4)) == (4,)
    assert _checks.float_at_least("r_max", 1, 1.0) == 1.0
    assert _checks.float_array("x", [[1.0, 2.0]], ndim=(2,)).shape == (1, 2)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        _checks.float_array("x", [1, 2])
    with pytest.raises(ValueError, match="x must be 2-D"):
        _checks.float_array("x", [1.0, 2.0], ndim=(2,))
    with pytest.raises(ValueError, match="x contains NaN"):
        _checks.float_array("x", [1.0, float("nan")])
    with pytest.raises(ValueError, match="momentum must be a float in \\[0, 1\\], got None"):
        _checks.momentum(None, allow_none=False)
