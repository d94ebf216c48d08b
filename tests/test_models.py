"""companion.models: the digits conv net, single and side by side.

The side-by-side build must be R independent networks: network r of ``make_convnet(names)`` must
compute, in training and eval mode, exactly what ``make_convnet(names[r])`` computes with the same
weights, and move its running statistics the same way.
"""

from __future__ import annotations

from itertools import groupby

import pytest
import torch
from torch import nn

import companion.nn as cnn
from companion.models import ReLUBlock, SideBySide, make_convnet, make_deep_relu_net

CHANNELS = (16, 32, 64)
NAMES = ["bn", "bn", "gn", "ln", "ln", "none"]


def _norm_positions(net: nn.Sequential) -> list[int]:
    """Indices of the three norm layers (the module after each of the first three convolutions)."""
    convs = [i for i, m in enumerate(net) if isinstance(m, nn.Conv2d)]
    return [i + 1 for i in convs[:3]]


def _block(names: list[str], r: int, channels: int) -> tuple[int, slice]:
    """Which torch layer of a SideBySide holds network r, and the channel slice of r inside it."""
    start = 0
    for index, (_, run) in enumerate(groupby(names)):
        copies = len(list(run))
        if start <= r < start + copies:
            k = r - start
            return index, slice(k * channels, (k + 1) * channels)
        start += copies
    raise IndexError(f"no network {r} among {len(names)}")


def network_r(side: nn.Sequential, names: list[str], r: int) -> nn.Sequential:
    """A separately built network holding network r's weights and buffers copied out of ``side``."""
    single = make_convnet(names[r], channels=CHANNELS)
    side_convs = [m for m in side if isinstance(m, nn.Conv2d)]
    single_convs = [m for m in single if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for big, small in zip(side_convs[:3], single_convs):
            out = small.weight.shape[0]
            small.weight.copy_(big.weight[r * out : (r + 1) * out])
        head, linear = side_convs[3], single[-1]
        k = linear.out_features
        linear.weight.copy_(head.weight[r * k : (r + 1) * k, :, 0, 0])
        linear.bias.copy_(head.bias[r * k : (r + 1) * k])
        for pos, width in zip(_norm_positions(side), CHANNELS):
            wrapper = side[pos]
            index, block = _block(names, r, width)
            big_state = wrapper.layers[index].state_dict()
            single[pos].load_state_dict(
                {key: value[block] if value.dim() else value for key, value in big_state.items()}
            )
    return single


def test_single_network_shapes():
    for norm in ("bn", "gn", "ln", "none"):
        assert make_convnet(norm)(torch.randn(5, 1, 8, 8)).shape == (5, 10)


def test_side_by_side_shapes_and_parameters():
    side = make_convnet(NAMES, channels=CHANNELS)
    assert side(torch.randn(5, len(NAMES), 8, 8)).shape == (5, len(NAMES), 10)
    n_side = sum(p.numel() for p in side.parameters())
    n_single = sum(sum(p.numel() for p in make_convnet(name, channels=CHANNELS).parameters()) for name in NAMES)
    assert n_side == n_single


def test_consecutive_equal_names_share_one_torch_layer():
    wrapper = make_convnet(NAMES)[1]
    assert isinstance(wrapper, SideBySide)
    kinds = [type(layer) for layer in wrapper.layers]
    assert kinds == [nn.BatchNorm2d, nn.GroupNorm, nn.GroupNorm, nn.Identity]
    assert wrapper.layers[0].num_features == 2 * 16
    assert wrapper.layers[1].num_groups == 4 and wrapper.layers[2].num_groups == 2


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_each_network_inside_equals_a_separate_one(mode):
    torch.manual_seed(0)
    side = make_convnet(NAMES, channels=CHANNELS)
    with torch.no_grad():  # non-trivial affine parameters and running statistics
        for module in side.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    singles = [network_r(side, NAMES, r) for r in range(len(NAMES))]
    side.train(mode == "train")
    for single in singles:
        single.train(mode == "train")

    x = torch.randn(6, len(NAMES), 8, 8, requires_grad=True)
    upstream = torch.randn(6, len(NAMES), 10)
    out = side(x)
    (out * upstream).sum().backward()
    for r, single in enumerate(singles):
        x_r = x.detach()[:, r : r + 1].clone().requires_grad_()
        out_r = single(x_r)
        (out_r * upstream[:, r]).sum().backward()
        assert torch.allclose(out[:, r], out_r, atol=1e-5), NAMES[r]
        assert torch.allclose(x.grad[:, r : r + 1], x_r.grad, atol=1e-5), NAMES[r]
    # Running statistics moved (or not) exactly as in the separate networks.
    for r, single in enumerate(singles):
        again = network_r(side, NAMES, r)
        for pos in _norm_positions(single):
            for key, value in single[pos].state_dict().items():
                assert torch.allclose(value.float(), again[pos].state_dict()[key].float(), atol=1e-6), (r, key)


def test_callable_norm_factory():
    net = make_convnet(cnn.BatchNorm2d)
    assert sum(isinstance(m, cnn.BatchNorm2d) for m in net) == 3
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"norm": "batch"}, "norm must be one of"),
        ({"norm": ["bn", "layer"]}, "norm must be one of"),
        ({"norm": []}, "at least one name"),
        ({"norm": "gn", "groups": 5}, "groups must be a positive int dividing"),
        ({"norm": "bn", "channels": (16, 32)}, "channels must be three positive ints"),
        ({"norm": "bn", "channels": (16, 0, 8)}, "channels must be three positive ints"),
        ({"norm": "bn", "n_classes": 1}, "n_classes must be an int >= 2"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_convnet(**kwargs)


# --- deep ReLU MLPs ------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_deep_relu_net_layout(batch_norm, residual):
    torch.manual_seed(0)
    net = make_deep_relu_net(4, batch_norm=batch_norm, residual=residual, width=16)
    assert net(torch.randn(8, 64)).shape == (8, 10)
    blocks = list(net[1:-1])
    assert len(blocks) == 4 and all(isinstance(b, ReLUBlock) for b in blocks)
    assert all(isinstance(b.norm, nn.BatchNorm1d if batch_norm else nn.Identity) for b in blocks)
    assert all(torch.count_nonzero(b.linear.bias) == 0 for b in blocks)


def test_relu_block_computes_its_formula():
    torch.manual_seed(0)
    h = torch.randn(32, 8)
    for residual in (False, True):
        block = ReLUBlock(8, batch_norm=True, residual=residual)
        expected = torch.relu(block.norm(block.linear(h))) + (h if residual else 0)
        assert torch.allclose(block(h), expected)


def test_relu_block_is_he_initialized():
    torch.manual_seed(0)
    block = ReLUBlock(400, batch_norm=False, residual=False)
    assert abs(block.linear.weight.std().item() - (2 / 400) ** 0.5) < 0.002


def test_deep_relu_net_is_reproducible_from_the_seed():
    torch.manual_seed(3)
    a = make_deep_relu_net(3, batch_norm=True, residual=False)
    torch.manual_seed(3)
    b = make_deep_relu_net(3, batch_norm=True, residual=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 0, "batch_norm": True, "residual": False}, "depth"),
        ({"depth": 2, "batch_norm": 1, "residual": False}, "batch_norm"),
        ({"depth": 2, "batch_norm": True, "residual": "yes"}, "residual"),
        ({"depth": 2, "batch_norm": True, "residual": False, "width": -1}, "width"),
        ({"depth": 2, "batch_norm": True, "residual": False, "out_features": 0}, "out_features"),
    ],
)
def test_deep_relu_net_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_deep_relu_net(**kwargs)


# --- the MLP of chapters 4-9 (companion.training.make_mlp) ---------------------------------------

def test_make_mlp_drops_the_bias_before_a_norm_only():
    from companion.training import make_mlp

    with_norm = make_mlp([4, 8, 8, 3], norm=nn.BatchNorm1d)
    linears = [m for m in with_norm if isinstance(m, nn.Linear)]
    assert [m.bias is None for m in linears] == [True, True, False]  # the classifier keeps its bias
    assert all(m.bias is not None for m in make_mlp([4, 8, 8, 3]) if isinstance(m, nn.Linear))
    before = make_mlp([4, 8, 3], norm=nn.BatchNorm1d, dropout=0.5, dropout_before_norm=True)
    assert before[0].bias is None and before[-1].bias is not None


def test_make_mlp_without_bias_computes_what_a_biased_one_does_in_train_mode():
    from companion.training import make_mlp

    torch.manual_seed(0)
    net = make_mlp([6, 5, 3], norm=nn.BatchNorm1d)
    biased = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        biased[0].weight.copy_(net[0].weight)
        biased[0].bias.uniform_(-3, 3)  # any bias: the batch mean takes it away
        biased[3].load_state_dict(net[3].state_dict())
    x = torch.randn(16, 6)
    assert torch.allclose(net(x), biased(x), atol=1e-5)
