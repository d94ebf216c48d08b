"""The residual MLP: side-by-side copies, batch norm per copy, the initializations' promises."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from companion import residual
from companion.data import load_split


@pytest.mark.parametrize("scheme", residual.SCHEMES)
def test_each_copy_computes_what_a_single_network_computes(scheme):
    torch.manual_seed(0)
    big = residual.ResidualMLP(3, scheme, width=8, in_features=5, out_features=4, copies=3)
    x = torch.randn(3, 6, 5)
    out = big(x)
    for r in range(3):
        one = residual.ResidualMLP(3, scheme, width=8, in_features=5, out_features=4, copies=1)
        one.load_state_dict({k: v[r:r + 1] for k, v in big.state_dict().items()})
        torch.testing.assert_close(one(x[r:r + 1])[0], out[r], rtol=1e-5, atol=1e-6)


def test_copies_batch_norm_matches_torch():
    torch.manual_seed(0)
    ours = residual.CopiesBatchNorm(2, 3)
    ref = [nn.BatchNorm1d(3) for _ in range(2)]
    x = torch.randn(2, 7, 3) * 2 + 1
    y = ours(x)
    for r in range(2):
        torch.testing.assert_close(y[r], ref[r](x[r]))
        torch.testing.assert_close(ours.running_var[r], ref[r].running_var)
    ours.eval()
    torch.testing.assert_close(ours(x)[1], ref[1].eval()(x[1]))


def test_variance_flat_for_skipinit_and_fixup_linear_for_bn_exploding_without():
    torch.manual_seed(0)
    x = torch.randn(256, 64)
    var = {s: residual.stream_variance(residual.ResidualMLP(20, s, copies=2), x).mean(0) for s in residual.SCHEMES}
    for s in ("skipinit", "fixup"):
        torch.testing.assert_close(var[s], var[s][:1].expand(21))
    assert 10 < var["bn"][-1] / var["bn"][0] < 30
    assert var["none"][-1] / var["none"][0] > 1e4
    assert var["nf"][-1] / var["nf"][0] == pytest.approx(1 + 20 * 0.2 ** 2, rel=0.25)


def test_fixup_initialization():
    model = residual.ResidualMLP(16, "fixup", width=8, copies=1)
    assert model.head.abs().sum() == 0
    assert all(b.w2.abs().sum() == 0 for b in model.blocks)
    assert residual.fixup_scale(16) == 0.25 and residual.fixup_scale(8, 3) == pytest.approx(8 ** -0.25)


def test_train_copies_learns_and_gives_each_copy_its_rate():
    data = load_split("digits")
    torch.manual_seed(0)
    model = residual.ResidualMLP(2, "fixup", width=16, copies=3)
    run = residual.train_copies(model, data, steps=60, lrs=[0.05, 1e-9, 100.0], clipping=0.1)
    assert run.loss.shape == (60, 3) and run.clipped.shape == (60, 3)
    assert run.test_acc[0] > 0.8
    assert run.loss[-1, 1] == pytest.approx(math.log(10), abs=1e-4)  # a zero classifier barely moved
    assert run.stable()[[0, 2]].tolist() == [True, False]
    assert math.isfinite(run.clipped.mean())


def test_bad_input_is_refused_early():
    with pytest.raises(ValueError, match="scheme"):
        residual.ResidualMLP(2, "layernorm")
    with pytest.raises(ValueError, match="depth"):
        residual.ResidualMLP(0)
    model = residual.ResidualMLP(2, copies=2)
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(3, 2, 64))
    with pytest.raises(ValueError, match="lrs"):
        residual.train_copies(model, load_split("digits"), 1, lrs=[0.1])
    with pytest.raises(ValueError, match="layers_per_branch"):
        residual.fixup_scale(4, 1)
    with pytest.raises(TypeError, match="ResidualMLP"):
        residual.stream_variance(nn.Linear(2, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match="at least 2 examples"):
        residual.ResidualMLP(1, "bn")(torch.randn(1, 64))
