"""companion.stacked: S networks trained side by side are S independent networks.

Network s of a StackedMLP must compute what its unstacked copy computes, in training and eval
mode, and train_stacked must move it along the trajectory companion.training.train would.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import load_split
from companion.nn import GhostBatchNorm1d
from companion.stacked import StackedMLP, stacked_accuracy, train_stacked
from companion.training import accuracy, make_mlp, train

SIZES = [64, 16, 16, 10]


def _nets(seeds, **kwargs):
    nets = []
    for seed in seeds:
        torch.manual_seed(seed)
        nets.append(make_mlp(SIZES, **kwargs))
    return nets


GHOST = {"norm": lambda width: GhostBatchNorm1d(width, virtual_batch_size=4)}


@pytest.mark.parametrize("kwargs", [{}, {"norm": nn.BatchNorm1d}, {"norm": nn.BatchNorm1d, "dropout": 0.5}, GHOST])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_each_stacked_network_equals_its_unstacked_copy(kwargs, mode):
    stacked = StackedMLP(_nets([0, 1, 2], **kwargs))
    stacked.train(mode == "train")
    x = torch.randn(12, 3, 64)
    torch.manual_seed(5)
    out = stacked(x)
    for s in range(3):
        single = stacked.unstack(s)
        assert single.training == (mode == "train")
        if "dropout" not in kwargs or mode == "eval":  # dropout masks differ between the two calls
            assert torch.allclose(out[:, s], single(x[:, s]), atol=1e-5)


def test_training_follows_the_separate_runs():
    splits = [load_split("digits", seed=s, n_train=64, test_size=0.8) for s in (0, 1)]
    separate = _nets([0, 1], norm=nn.BatchNorm1d)
    stacked = StackedMLP(separate)
    for net, split, seed in zip(separate, splits, (0, 1)):
        train(net, split, steps=30, batch_size=16, lr=0.1, eval_every=30, seed=seed)
    train_stacked(stacked, splits, seeds=[0, 1], steps=30, batch_size=16, lr=0.1)
    X = torch.stack([s.X_test for s in splits], dim=1)
    y = torch.stack([s.y_test for s in splits], dim=1)
    acc = stacked_accuracy(stacked, X, y)
    for s, (net, split) in enumerate(zip(separate, splits)):
        back = stacked.unstack(s)
        for p, q in zip(net.state_dict().values(), back.state_dict().values()):
            assert torch.allclose(p.float(), q.float(), atol=1e-4)
        assert abs(acc[s].item() - accuracy(net, split.X_test, split.y_test)) < 2e-3


def test_bad_input_is_refused_early():
    stacked = StackedMLP(_nets([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        stacked(torch.randn(4, 3, 64))
    with pytest.raises(ValueError, match="same layer types"):
        StackedMLP([make_mlp(SIZES), make_mlp(SIZES, norm=nn.BatchNorm1d)])
    with pytest.raises(ValueError, match="at least one"):
        StackedMLP([])
    split = load_split("digits", n_train=64)
    with pytest.raises(ValueError, match="one entry per network"):
        train_stacked(stacked, [split], seeds=[0], steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_stacked(stacked, [split, split], seeds=[0, 1], steps=0)
    with pytest.raises(IndexError):
        stacked.unstack(2)
