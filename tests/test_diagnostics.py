"""companion.diagnostics against hand computations and torch.autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from companion.data import load_split
from companion.diagnostics import (
    Recorder,
    UpdateRatios,
    layers_of_type,
    saturation_fraction,
    tensor_stats,
    update_ratio,
    weight_grad_norms,
)
from companion.training import make_mlp, train


def small_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


# -- saturation_fraction ----------------------------------------------------------------------------
def test_saturation_tanh_by_hand():
    a = torch.tensor([0.5, -0.98, 0.99, 0.2, -0.97, 0.0])
    # |a| > 0.97 for -0.98 and 0.99 only (-0.97 is not strictly above): 2 of 6
    assert saturation_fraction(a) == pytest.approx(2 / 6)
    assert saturation_fraction(a, threshold=0.4) == pytest.approx(4 / 6)


def test_saturation_sigmoid_maps_to_tanh_scale():
    a = np.array([0.99, 0.5, 0.005, 0.9])  # |2a - 1| = 0.98, 0, 0.99, 0.8
    assert saturation_fraction(a, kind="sigmoid") == pytest.approx(0.5)
    x = torch.linspace(-4, 4, 101)
    assert saturation_fraction(torch.sigmoid(2 * x), kind="sigmoid") == pytest.approx(
        saturation_fraction(torch.tanh(x), kind="tanh")
    )


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.1, True, "0.9"])
def test_saturation_rejects_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        saturation_fraction(torch.zeros(3), threshold=threshold)


def test_saturation_rejects_bad_input():
    with pytest.raises(ValueError, match="kind"):
        saturation_fraction(torch.zeros(3), kind="relu")
    with pytest.raises(TypeError, match="floating-point"):
        saturation_fraction(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor or numpy array"):
        saturation_fraction([0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        saturation_fraction(torch.zeros(0))


# -- tensor_stats -----------------------------------------------------------------------------------
def test_tensor_stats_matches_numpy():
    x = np.random.default_rng(0).normal(1.0, 2.0, size=(50, 7))
    stats = tensor_stats(torch.tensor(x), percentiles=(10, 50, 90), saturation="tanh")
    assert stats["mean"] == pytest.approx(x.mean())
    assert stats["std"] == pytest.approx(x.std())  # ddof=0
    assert stats["rms"] == pytest.approx(np.sqrt((x**2).mean()))
    assert stats["norm"] == pytest.approx(np.linalg.norm(x))
    np.testing.assert_allclose(stats["percentiles"], np.percentile(x, [10, 50, 90]))
    assert stats["saturation"] == pytest.approx(np.mean(np.abs(x) > 0.97))


def test_tensor_stats_small_example_by_hand():
    stats = tensor_stats(torch.tensor([[1.0, -1.0], [3.0, 1.0]]), percentiles=(0, 100))
    assert stats["mean"] == pytest.approx(1.0)
    assert stats["std"] == pytest.approx(np.sqrt(2.0))  # deviations 0, -2, 2, 0
    assert stats["rms"] == pytest.approx(np.sqrt(3.0))  # (1 + 1 + 9 + 1) / 4
    assert stats["norm"] == pytest.approx(np.sqrt(12.0))
    np.testing.assert_allclose(stats["percentiles"], [-1.0, 3.0])
    assert "saturation" not in stats


@pytest.mark.parametrize("percentiles", [(), (101,), (-1,), "50", (True,)])
def test_tensor_stats_rejects_bad_percentiles(percentiles):
    with pytest.raises(ValueError, match="percentiles"):
        tensor_stats(torch.zeros(3), percentiles=percentiles)


# -- layers_of_type ---------------------------------------------------------------------------------
def test_layers_of_type_names_in_order():
    model = make_mlp([4, 5, 5, 2], activation=nn.Tanh)
    found = layers_of_type(model, nn.Tanh, nn.Linear)
    assert list(found) == ["Linear 1", "Tanh 1", "Linear 2", "Tanh 2", "Linear 3"]
    assert found["Tanh 2"] is model[3]
    with pytest.raises(ValueError, match="no submodule of type BatchNorm1d"):
        layers_of_type(model, nn.BatchNorm1d)
    with pytest.raises(TypeError, match="types"):
        layers_of_type(model, "Tanh")


# -- Recorder ---------------------------------------------------------------------------------------
def test_recorder_matches_autograd():
    model = small_net()
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    hidden = torch.tanh(model[0](x))  # what the hook should see
    hidden.retain_grad()
    model[2](hidden).pow(2).sum().backward()
    expected_grad = hidden.grad.clone()
    model.zero_grad()

    rec = Recorder({"tanh": model[1]}, percentiles=(50,), saturation="tanh", keep_values=True)
    with rec:
        model(x).pow(2).sum().backward()
    act, grad = rec.activations["tanh"], rec.gradients["tanh"]
    assert act["std"].shape == (1,) and act["percentiles"].shape == (1, 1)
    assert act["std"][0] == pytest.approx(hidden.detach().std(unbiased=False).item(), rel=1e-6)
    assert act["percentiles"][0, 0] == pytest.approx(np.median(hidden.detach().numpy()), rel=1e-6)
    assert grad["norm"][0] == pytest.approx(expected_grad.norm().item(), rel=1e-6)
    np.testing.assert_allclose(rec.values["tanh"], hidden.detach().numpy().ravel(), rtol=1e-6)
    np.testing.assert_allclose(rec.grad_values["tanh"], expected_grad.numpy().ravel(), rtol=1e-6)


def test_recorder_detaches_on_exit_and_counts_calls():
    model = small_net()
    x = torch.randn(5, 3)
    rec = Recorder([model[1]])  # a list is named "0", "1", ...
    with rec:
        model(x).sum().backward()
        model(x)  # forward only
    model(x).sum().backward()  # after exit: not recorded
    assert len(rec.activations["0"]["mean"]) == 2
    assert len(rec.gradients["0"]["mean"]) == 1
    assert rec.last("mean").shape == (1,)
    rec.clear()
    assert rec.activations["0"] == {}


def test_recorder_skips_eval_passes_unless_asked():
    model = small_net()
    x = torch.randn(5, 3)
    for train_only, expected in [(True, 1), (False, 2)]:
        rec = Recorder({"t": model[1]}, train_only=train_only)
        with rec:
            model.train()
            model(x)
            model.eval()
            model(x)
        model.train()
        assert len(rec.activations["t"]["std"]) == expected


def test_recorder_last_and_saturation():
    model = small_net()
    with torch.no_grad():
        model[0].weight.mul_(100.0)  # drive tanh into saturation
    rec = Recorder(layers_of_type(model, nn.Tanh), saturation="tanh")
    with pytest.raises(RuntimeError, match="nothing recorded"):
        rec.last("std")
    with rec, torch.no_grad():  # no gradient: forward stats only
        out = model[1](model[0](torch.randn(64, 3)))
    assert rec.last("saturation")[0] == pytest.approx(saturation_fraction(out))
    assert rec.last("saturation")[0] > 0.9
    with pytest.raises(ValueError, match="stat must be one of"):
        rec.last("variance")
    with pytest.raises(ValueError, match="which"):
        rec.last("std", which="weights")


def test_recorder_rejects_bad_arguments():
    model = small_net()
    with pytest.raises(TypeError, match="single module"):
        Recorder(model)
    with pytest.raises(TypeError, match="must be an nn.Module"):
        Recorder({"a": "tanh"})
    with pytest.raises(ValueError, match="at least one"):
        Recorder({})
    with pytest.raises(ValueError, match="saturation"):
        Recorder([model[1]], saturation="relu")
    rec = Recorder([model[1]]).attach()
    with pytest.raises(RuntimeError, match="already attached"):
        rec.attach()
    rec.detach()


# -- weight_grad_norms ------------------------------------------------------------------------------
def test_weight_grad_norms_by_hand():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    x = torch.randn(6, 3)
    layer(x).sum().backward()
    # L = sum_n sum_i (W x_n + b)_i  =>  dL/dW[i, j] = sum_n x_n[j] for both rows i
    expected = np.sqrt(2.0) * np.linalg.norm(x.sum(0).numpy())
    assert weight_grad_norms({"fc": layer})["fc"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(RuntimeError, match="backward"):
        weight_grad_norms([nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="no weight"):
        weight_grad_norms([nn.Tanh()])


# -- update ratios ----------------------------------------------------------------------------------
def test_update_ratio_by_hand():
    assert update_ratio(torch.tensor([3.0, 4.0]), torch.tensor([0.03, -0.04])) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="all zeros"):
        update_ratio(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="shape"):
        update_ratio(torch.ones(2), torch.ones(3))


def test_update_ratios_equal_lr_grad_over_param_for_sgd():
    model = small_net()
    lr = 0.1
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    tracker = UpdateRatios({"w0": model[0].weight, "w2": model[2].weight})
    expected = []
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        expected.append((lr * model[0].weight.grad).norm().item() / model[0].weight.norm().item())
        opt.step()
        tracker()
    np.testing.assert_allclose(tracker.ratios["w0"], expected, rtol=1e-5)
    assert tracker.ratios["w2"].shape == (3,)
    with pytest.raises(TypeError, match="non-empty dict"):
        UpdateRatios({})


def test_tools_fit_the_training_loop():
    data = load_split("wine")
    model = make_mlp([data.n_features, 8, data.n_classes], activation=nn.Tanh)
    tracker = UpdateRatios({"fc1": model[0].weight})
    with Recorder(layers_of_type(model, nn.Tanh), saturation="tanh") as rec:
        train(model, data, steps=5, batch_size=16, eval_every=5, on_step=tracker)
    assert tracker.ratios["fc1"].shape == (5,)
    assert np.all(tracker.ratios["fc1"] > 0)
    assert len(rec.activations["Tanh 1"]["std"]) == 5  # the evaluation passes are skipped
    assert len(rec.gradients["Tanh 1"]["std"]) == 5


def test_recorder_keeps_bfloat16_values_as_float32():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()).to(torch.bfloat16)
    x = torch.randn(5, 3, dtype=torch.bfloat16, requires_grad=True)
    with Recorder({"tanh": model[1]}, keep_values=True) as rec:
        model(x).sum().backward()
    assert rec.values["tanh"].dtype == np.float32 and rec.values["tanh"].shape == (20,)
    assert rec.grad_values["tanh"].dtype == np.float32
    np.testing.assert_array_equal(rec.values["tanh"], model(x).detach().float().reshape(-1).numpy())


def test_saturation_fraction_of_reversed_and_big_endian_arrays():
    a = np.linspace(-1, 1, 101)
    assert saturation_fraction(a[::-1]) == saturation_fraction(a)
    assert saturation_fraction(a.astype(">f8")) == saturation_fraction(a)
