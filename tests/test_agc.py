"""Adaptive gradient clipping: unit-wise norms and the clipping rule."""

import pytest
import torch
from torch import nn

from companion import agc


def _reference_clip(grad, weight, clipping, eps):
    # timm's rule, written per unit in a loop (row i of a linear weight, channel i of a conv).
    if weight.ndim <= 1:
        rows_g, rows_w = [grad], [weight]
    else:
        rows_g, rows_w = list(grad), list(weight)
    out = []
    for g, w in zip(rows_g, rows_w):
        max_norm = clipping * max(w.norm().item(), eps)
        out.append(g * (max_norm / g.norm()) if g.norm() > max_norm else g)
    return torch.stack(out) if weight.ndim > 1 else out[0]


@pytest.mark.parametrize("shape", [(5,), (4, 3), (3, 2, 3, 3)])
def test_clip_matches_a_per_unit_loop(shape):
    torch.manual_seed(0)
    w = torch.randn(*shape)
    g = torch.randn(*shape) * torch.rand(shape[0]).view(-1, *[1] * (len(shape) - 1)) * 0.2
    got, mask = agc.clip_unitwise(g, w, clipping=0.05, eps=1e-3)
    torch.testing.assert_close(got, _reference_clip(g, w, 0.05, 1e-3))
    ratio = agc.unitwise_norm(got) / agc.unitwise_norm(w).clamp_min(1e-3)
    assert (ratio <= 0.05 + 1e-6).all()


def test_batch_dims_count_units_per_copy():
    torch.manual_seed(0)
    w, g = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    got, _ = agc.clip_unitwise(g, w, 0.1, batch_dims=1)
    for r in range(3):
        torch.testing.assert_close(got[r], agc.clip_unitwise(g[r], w[r], 0.1)[0])
    assert agc.unitwise_norm(torch.tensor([-2.0, 3.0]), batch_dims=1).tolist() == [2.0, 3.0]


def test_zero_weights_use_eps_and_in_place_clipping_reports_the_fraction():
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(1.0)
    layer.weight.grad = torch.ones(2, 4)
    layer.bias.grad = torch.zeros(2)
    frac = agc.adaptive_clip_grad_(layer.parameters(), clipping=0.01, eps=1e-3)
    assert torch.allclose(layer.weight.grad.norm(dim=1), torch.full((2,), 1e-5))
    assert frac.item() == pytest.approx(2 / 3)  # two weight rows clipped, the bias vector not


def test_bad_input_is_refused_early():
    with pytest.raises(ValueError, match="same shape"):
        agc.clip_unitwise(torch.randn(2, 3), torch.randn(3, 2))
    with pytest.raises(ValueError, match="clipping"):
        agc.clip_unitwise(torch.randn(2), torch.randn(2), clipping=0.0)
    with pytest.raises(ValueError, match="batch_dims"):
        agc.unitwise_norm(torch.randn(2, 2), batch_dims=3)
    with pytest.raises(TypeError, match="iterable"):
        agc.adaptive_clip_grad_(torch.randn(2))
    with pytest.raises(ValueError, match="no parameter has a gradient"):
        agc.adaptive_clip_grad_(nn.Linear(2, 2).parameters())
