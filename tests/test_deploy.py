"""companion.deploy: folded layers equal bn(layer(x)) and torch.nn.utils.fusion's results."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from companion.deploy import fold_batchnorm, fold_sequential


def trained_bn(bn: torch.nn.Module, channels_shape: tuple[int, ...], dtype=torch.float32) -> torch.nn.Module:
    """Give bn non-trivial running statistics and affine parameters, then put it in eval mode."""
    gen = torch.Generator().manual_seed(0)
    bn = bn.to(dtype)
    with torch.no_grad():
        for _ in range(3):
            bn(3.0 * torch.randn(channels_shape, generator=gen, dtype=dtype) + 2.0)
        if bn.weight is not None:
            bn.weight.uniform_(0.5, 2.0, generator=gen)
            bn.bias.normal_(generator=gen)
    return bn.eval()


def pairs(dtype, bias=True, affine=True):
    torch.manual_seed(1)
    linear = torch.nn.Linear(6, 5, bias=bias).to(dtype)
    bn1 = trained_bn(torch.nn.BatchNorm1d(5, affine=affine), (16, 5), dtype)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, stride=2, bias=bias).to(dtype)
    bn2 = trained_bn(torch.nn.BatchNorm2d(4, affine=affine), (8, 4, 5, 5), dtype)
    return [(linear, bn1, torch.randn(10, 6, dtype=dtype)), (conv, bn2, torch.randn(2, 3, 9, 9, dtype=dtype))]


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_folded_layer_equals_layer_then_bn(dtype, tol, bias, affine):
    for layer, bn, x in pairs(dtype, bias, affine):
        folded = fold_batchnorm(layer, bn)
        with torch.no_grad():
            expected = bn(layer(x))
            torch.testing.assert_close(folded(x), expected, rtol=tol, atol=tol)
            if isinstance(layer, torch.nn.Conv2d):
                torch.testing.assert_close(folded(x), fuse_conv_bn_eval(layer.eval(), bn)(x), rtol=tol, atol=tol)
            elif affine:  # torch 2.13's fuse_linear_bn_eval fails on affine=False (bn.weight is None)
                torch.testing.assert_close(folded(x), fuse_linear_bn_eval(layer.eval(), bn)(x), rtol=tol, atol=tol)
        assert folded.weight.dtype == dtype and folded.bias is not None


def test_originals_are_unchanged_and_the_result_is_new():
    for layer, bn, x in pairs(torch.float32):
        layer_state = copy.deepcopy(layer.state_dict())
        bn_state = copy.deepcopy(bn.state_dict())
        folded = fold_batchnorm(layer, bn)
        assert folded is not layer and isinstance(folded, type(layer))  # a Folded* subclass
        assert folded.weight.data_ptr() != layer.weight.data_ptr()
        for key, value in layer.state_dict().items():
            torch.testing.assert_close(value, layer_state[key], rtol=0, atol=0)
        for key, value in bn.state_dict().items():
            torch.testing.assert_close(value, bn_state[key], rtol=0, atol=0)
        assert not bn.training


def test_grouped_conv1d_and_conv3d_fold_too():
    torch.manual_seed(2)
    cases = [
        (torch.nn.Conv2d(4, 6, 3, groups=2), torch.nn.BatchNorm2d(6), (8, 6, 5, 5), torch.randn(2, 4, 7, 7)),
        (torch.nn.Conv1d(3, 5, 3, dilation=2), torch.nn.BatchNorm1d(5), (8, 5, 9), torch.randn(2, 3, 12)),
        (torch.nn.Conv3d(2, 3, 2), torch.nn.BatchNorm3d(3), (4, 3, 3, 3, 3), torch.randn(2, 2, 4, 4, 4)),
    ]
    for layer, bn, shape, x in cases:
        bn = trained_bn(bn, shape)
        with torch.no_grad():
            torch.testing.assert_close(fold_batchnorm(layer, bn)(x), bn(layer(x)), rtol=1e-5, atol=1e-5)


def test_duck_typed_batch_norm():
    class MyBatchNorm(torch.nn.Module):  # the attributes only, like companion.nn's layers
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor([2.0, 0.5, 1.0]))
            self.bias = torch.nn.Parameter(torch.tensor([0.1, -0.2, 0.3]))
            self.register_buffer("running_mean", torch.tensor([1.0, -1.0, 0.0]))
            self.register_buffer("running_var", torch.tensor([4.0, 0.25, 1.0]))
            self.eps = 1e-5

        def forward(self, x):
            return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps) * self.weight + self.bias

    torch.manual_seed(3)
    layer, bn, x = torch.nn.Linear(4, 3), MyBatchNorm().eval(), torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(layer, bn)(x), bn(layer(x)), rtol=1e-5, atol=1e-5)


def test_companion_nn_batch_norm_if_present():
    nn = pytest.importorskip("companion.nn")
    if not hasattr(nn, "BatchNorm2d"):
        pytest.skip("companion.nn has no BatchNorm2d yet")
    torch.manual_seed(4)
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.randn(2, 3, 6, 6)
    bn = nn.BatchNorm2d(4)
    bn.train()
    with torch.no_grad():
        for _ in range(3):
            bn(torch.randn(8, 4, 4, 4) * 2 + 1)
    bn.eval()
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


def test_fold_sequential():
    torch.manual_seed(5)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3), torch.nn.BatchNorm2d(4)),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5), torch.nn.BatchNorm1d(5),
        torch.nn.BatchNorm1d(5, track_running_stats=False),  # no running statistics: kept as is
    )
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 8, 8))
    model.eval()
    folded = fold_sequential(model)
    kinds = [type(m).__name__ for m in folded]
    assert kinds == ["FoldedConv2d", "ReLU", "Sequential", "Flatten", "FoldedLinear", "BatchNorm1d"]
    assert [type(m).__name__ for m in folded[2]] == ["FoldedConv2d"]
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- bad input


def test_bn_in_training_mode_is_refused():
    layer, bn, _ = pairs(torch.float32)[0]
    bn.train()
    with pytest.raises(ValueError, match=r"bn is in training mode.*call bn.eval\(\) first"):
        fold_batchnorm(layer, bn)
    model = torch.nn.Sequential(layer, bn)
    with pytest.raises(ValueError, match="bn is in training mode"):
        fold_sequential(model)


def test_bn_without_running_statistics_is_refused():
    bn = torch.nn.BatchNorm1d(5, track_running_stats=False).eval()
    with pytest.raises(ValueError, match=r"bn has no running statistics \(track_running_stats=False\)"):
        fold_batchnorm(torch.nn.Linear(6, 5), bn)


def test_mismatched_channels_are_refused():
    bn = trained_bn(torch.nn.BatchNorm2d(4), (8, 4, 3, 3))
    with pytest.raises(ValueError, match="bn has 4 channels but layer has 6 output channels"):
        fold_batchnorm(torch.nn.Conv2d(3, 6, 3), bn)


@pytest.mark.parametrize("layer", [torch.nn.ConvTranspose2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Bilinear(2, 2, 4)])
def test_unsupported_layers_are_refused(layer):
    bn = trained_bn(torch.nn.BatchNorm2d(4), (8, 4, 3, 3))
    with pytest.raises(TypeError, match="layer must be a torch.nn.Linear, Conv1d, Conv2d or Conv3d"):
        fold_batchnorm(layer, bn)


def test_bn_that_is_not_a_batch_norm_is_refused():
    with pytest.raises(TypeError, match="bn must be a batch norm layer.*got LayerNorm without running_mean"):
        fold_batchnorm(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))


def test_fold_sequential_refuses_other_containers():
    with pytest.raises(TypeError, match="model must be a torch.nn.Sequential"):
        fold_sequential(torch.nn.ModuleList([torch.nn.Linear(2, 2)]))
