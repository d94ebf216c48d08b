"""Weight normalization, spectral normalization and weight standardization against PyTorch."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations as P

from companion import weight_norms as wn


def _pair(make, ours, theirs, seed=0):
    torch.manual_seed(seed)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    torch.manual_seed(seed + 1)
    ours(a)
    torch.manual_seed(seed + 1)
    theirs(b)
    return a, b


@pytest.mark.parametrize("make", [lambda: nn.Linear(7, 5), lambda: nn.Conv2d(3, 4, 3)])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_pytorch(make, dim):
    a, b = _pair(make, lambda m: wn.weight_norm(m, dim=dim), lambda m: P.weight_norm(m, dim=dim))
    assert a.state_dict().keys() == b.state_dict().keys()
    for k in a.state_dict():
        torch.testing.assert_close(a.state_dict()[k], b.state_dict()[k])
    x = torch.randn(6, 7) if isinstance(a, nn.Linear) else torch.randn(2, 3, 6, 6)
    ya, yb = a(x), b(x)
    torch.testing.assert_close(ya, yb)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (ka, pa), (kb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert ka == kb
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-5, atol=1e-6)


def test_weight_norm_gradient_is_orthogonal_to_v_and_scales_inversely():
    torch.manual_seed(0)
    layer = wn.weight_norm(nn.Linear(8, 3), dim=None)
    v = layer.parametrizations.weight.original1
    x = torch.randn(16, 8)
    layer(x).square().sum().backward()
    g1 = v.grad.clone()
    assert abs(torch.dot(g1.flatten(), v.flatten()).item()) < 1e-4 * g1.norm() * v.norm()
    with torch.no_grad():
        v.mul_(10.0)
    v.grad = None
    layer(x).square().sum().backward()
    torch.testing.assert_close(v.grad, g1 / 10.0)


@pytest.mark.parametrize("make", [lambda: nn.Linear(9, 6), lambda: nn.Conv2d(3, 5, 3),
                                  lambda: nn.ConvTranspose2d(4, 3, 3)])
def test_spectral_norm_matches_pytorch_over_steps(make):
    a, b = _pair(make, wn.spectral_norm, P.spectral_norm)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k])
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    for step in range(4):
        shape = (5, 9) if isinstance(a, nn.Linear) else (2, a.in_channels, 6, 6)
        x = torch.randn(*shape)
        ya, yb = a(x), b(x)
        torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-6)
        opt_a.zero_grad(), opt_b.zero_grad()
        ya.square().mean().backward()
        yb.square().mean().backward()
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-5, atol=1e-6)
        opt_a.step(), opt_b.step()
    for k in ("parametrizations.weight.0._u", "parametrizations.weight.0._v"):
        torch.testing.assert_close(a.state_dict()[k], b.state_dict()[k], rtol=1e-5, atol=1e-6)
    a.eval(), b.eval()
    u = a.state_dict()["parametrizations.weight.0._u"].clone()
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.state_dict()["parametrizations.weight.0._u"], u)  # eval: no update


def test_spectral_norm_estimate_converges_to_the_largest_singular_value():
    torch.manual_seed(0)
    layer = wn.spectral_norm(nn.Linear(20, 10), n_power_iterations=5)
    for _ in range(20):
        layer(torch.randn(2, 20))
    sn = layer.parametrizations.weight[0]
    w = layer.parametrizations.weight.original
    assert math.isclose(sn.sigma(w).item(), torch.linalg.matrix_norm(w, 2).item(), rel_tol=1e-4)
    assert math.isclose(torch.linalg.matrix_norm(layer.weight, 2).item(), 1.0, rel_tol=1e-4)


def test_weight_standardization_statistics():
    torch.manual_seed(0)
    w = torch.randn(6, 4, 3, 3) * 3 + 1
    ws = wn.standardize_weight(w)
    torch.testing.assert_close(ws.mean(dim=(1, 2, 3)), torch.zeros(6), atol=1e-6, rtol=0)
    torch.testing.assert_close(ws.std(dim=(1, 2, 3)), torch.ones(6), atol=1e-4, rtol=0)
    sws = wn.standardize_weight(w, eps=1e-4, scaled=True, gain=torch.full((6,), 2.0), gamma=1.5)
    torch.testing.assert_close((sws ** 2).sum(dim=(1, 2, 3)), torch.full((6,), 9.0), rtol=1e-5, atol=0)
    # invariant to a per-unit affine map of the raw weight
    shifted = w * torch.arange(1.0, 7.0).view(6, 1, 1, 1) - 4.0
    torch.testing.assert_close(wn.standardize_weight(shifted, scaled=True), wn.standardize_weight(w, scaled=True),
                               rtol=1e-4, atol=1e-5)


def test_scaled_ws_preserves_variance_after_relu_gain():
    torch.manual_seed(0)
    layer = wn.StandardizedLinear(512, 512, bias=False, scaled=True, gamma=wn.relu_gain())
    x = torch.relu(torch.randn(4096, 512))
    assert abs(layer(x).var().item() - 1.0) < 0.1
    # NFNets hard-code 1.7139588594436646, an empirical estimate of the same constant
    assert math.isclose(wn.relu_gain(), 1.7139588594436646, rel_tol=1e-3)


def test_standardized_conv_from_conv_and_grouped():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False)
    ws = wn.StandardizedConv2d.from_conv(conv)
    x = torch.randn(2, 4, 5, 5)
    ref = nn.functional.conv2d(x, wn.standardize_weight(conv.weight), None, padding=1, groups=2)
    torch.testing.assert_close(ws(x), ref)
    model = wn.standardize_convs(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(2, 2, 1))))
    assert isinstance(model[0], wn.StandardizedConv2d) and isinstance(model[2][0], wn.StandardizedConv2d)


def test_bad_input_is_refused_early():
    with pytest.raises(ValueError, match="no tensor named"):
        wn.weight_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match="dim"):
        wn.weight_norm(nn.Linear(2, 2), dim=3)
    with pytest.raises(ValueError, match="n_power_iterations"):
        wn.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        wn.SpectralNorm(torch.randn(3))
    with pytest.raises(TypeError, match="module"):
        wn.spectral_norm(torch.randn(3, 3))
    with pytest.raises(TypeError, match="floating-point"):
        wn.standardize_weight(torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="gain must have shape"):
        wn.standardize_weight(torch.randn(3, 4), gain=torch.ones(4))
    with pytest.raises(ValueError, match="eps"):
        wn.StandardizedLinear(3, 3, eps=0.0)
    with pytest.raises(TypeError, match="conv"):
        wn.StandardizedConv2d.from_conv(nn.Linear(2, 2))
