"""The helpers every chapter leans on: reproducibility, data splits, the training loop, the plot
style and the exercise checker."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from companion import setup_notebook
from companion.data import batches, digits_images, load_split, shift_domain
from companion.exercises import check_function
from companion.plotting import COLORS, band, color, mean_and_spread
from companion.training import History, accuracy, make_mlp, train


# --- setup_notebook -----------------------------------------------------------------------------

def test_setup_notebook_makes_runs_repeat():
    first = setup_notebook(seed=3)
    a = (first.normal(size=3), np.random.rand(), torch.rand(2))
    second = setup_notebook(seed=3)
    b = (second.normal(size=3), np.random.rand(), torch.rand(2))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert torch.equal(a[2], b[2])
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("kwargs, match", [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"threads": 0}, "threads")])
def test_setup_notebook_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        setup_notebook(**kwargs)


# --- data ---------------------------------------------------------------------------------------

def test_split_is_deterministic_stratified_and_standardized_on_train_only():
    a, b = load_split("digits", seed=1), load_split("digits", seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert a.n_features == 64 and a.n_classes == 10
    assert a.X_train.dtype == torch.float32 and a.y_train.dtype == torch.int64
    varying = a.X_train.std(dim=0) > 0
    assert torch.allclose(a.X_train.mean(dim=0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(a.X_train.std(dim=0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-4)
    test_counts = torch.bincount(a.y_test, minlength=10).float()
    all_counts = test_counts + torch.bincount(a.y_train, minlength=10)
    assert torch.all((test_counts / all_counts - 0.3).abs() < 0.01)  # stratified: 30 % of every class


def test_split_options():
    raw = load_split("wine", standardize=False)
    assert raw.X_train.max() > 100  # proline, unscaled
    small = load_split("breast_cancer", n_train=50)
    assert len(small.X_train) == 50 and small.n_classes == 2
    images = digits_images(load_split("digits"))
    assert images.X_train.shape[1:] == (1, 8, 8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: load_split("mnist"), "name"),
        (lambda: load_split("digits", test_size=1.0), "test_size"),
        (lambda: load_split("digits", n_train=0), "n_train"),
        (lambda: digits_images(load_split("wine")), "digits"),
        (lambda: shift_domain(torch.zeros(2, 2), kind="rotate"), "kind"),
        (lambda: list(batches(torch.zeros(4, 2), torch.zeros(4), 0)), "batch_size"),
        (lambda: list(batches(torch.zeros(4, 2), torch.zeros(3), 2)), "same length"),
    ],
)
def test_data_refuses_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_shift_domain_kinds():
    x = torch.tensor([[1.0, -2.0]])
    assert torch.equal(shift_domain(x), -x)
    assert torch.equal(shift_domain(x, "contrast", 1.0), 2 * x)
    assert torch.equal(shift_domain(x, "offset", 0.5), x + 0.5)


def test_batches_cover_an_epoch_and_drop_the_short_one():
    X, y = torch.arange(10.0).reshape(10, 1), torch.arange(10)
    got = list(batches(X, y, 4, torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in got] == [4, 4]
    kept = list(batches(X, y, 4, torch.Generator().manual_seed(0), drop_last=False))
    assert sorted(torch.cat([b[1] for b in kept]).tolist()) == list(range(10))
    for xb, yb in kept:
        assert torch.equal(xb[:, 0].long(), yb)


# --- training -----------------------------------------------------------------------------------

def test_make_mlp_layer_order():
    net = make_mlp([4, 8, 8, 3], norm=nn.BatchNorm1d, dropout=0.5)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
    before = make_mlp([4, 8, 3], norm=nn.BatchNorm1d, dropout=0.5, dropout_before_norm=True)
    assert [type(m).__name__ for m in before] == ["Linear", "Dropout", "BatchNorm1d", "ReLU", "Linear"]


@pytest.mark.parametrize("kwargs, match", [({"sizes": [4]}, "sizes"), ({"sizes": [4, 2], "dropout": 1.0}, "dropout")])
def test_make_mlp_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_mlp(**kwargs)


def test_train_learns_digits_and_records_history():
    torch.manual_seed(0)
    data = load_split("digits")
    net = make_mlp([64, 32, 10], norm=nn.BatchNorm1d)
    seen = []
    history = train(net, data, steps=120, eval_every=40, on_step=lambda step, model: seen.append(step))
    assert history.steps == [40, 80, 120] and len(history.train_loss) == 120 and seen == list(range(1, 121))
    assert history.test_acc[-1] > 0.85
    assert history.steps_to(0.5) == 40 and history.steps_to(1.01) is None
    assert net.training  # evaluation inside the loop put the model back in training mode
    adam = train(make_mlp([64, 10]), data, steps=5, optimizer="adam", lr=1e-3, eval_every=5)
    assert adam.steps == [5]


def test_train_stops_on_divergence_and_refuses_bad_arguments():
    data = load_split("digits")
    torch.manual_seed(0)
    history = train(make_mlp([64, 64, 64, 10]), data, steps=50, lr=1e3, eval_every=10)
    assert len(history.train_loss) < 50 and not np.isfinite(history.train_loss[-1])
    with pytest.raises(ValueError, match="steps"):
        train(make_mlp([64, 10]), data, steps=0)
    with pytest.raises(ValueError, match="optimizer"):
        train(make_mlp([64, 10]), data, steps=1, optimizer="lbfgs")


def test_accuracy_restores_the_mode_and_can_run_in_train_mode():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    X, y = torch.randn(8, 2), torch.zeros(8, dtype=torch.long)
    net.train()
    accuracy(net, X, y)
    assert net.training
    net.eval()
    accuracy(net, X, y, train_mode=True)
    assert not net.training
    assert int(net[1].num_batches_tracked) == 1  # the train-mode call updated running statistics


def test_history_defaults_are_independent():
    a, b = History(), History()
    a.steps.append(1)
    assert b.steps == []


# --- plotting -----------------------------------------------------------------------------------

def test_colors_are_consistent_and_helpers_draw():
    assert color("BN") == color("batchnorm") == COLORS["bn"]
    assert color("unknown") == "#7f7f7f"
    fig, ax = plt.subplots()
    x = np.arange(5)
    band(ax, x, x - 1, x, x + 1, label="bn")
    mean_and_spread(ax, x, np.vstack([x, x + 1.0]), label="ln")
    assert len(ax.lines) >= 2 and len(ax.collections) >= 1
    with pytest.raises(ValueError, match="runs"):
        mean_and_spread(ax, x, np.zeros((2, 4)), label="gn")
    plt.close(fig)


# --- exercise checker ---------------------------------------------------------------------------

def reference(x):
    return (x - x.mean(axis=0)) / x.std(axis=0)


def test_checker_accepts_a_correct_function_and_reports_wrong_ones(capsys):
    rng = np.random.default_rng(0)
    inputs = [(rng.normal(size=(5, 3)),), (rng.normal(size=(9, 2)),)]
    assert check_function(reference, reference, inputs, name="standardize")
    assert capsys.readouterr().out == "standardize: correct on 2 of 2 inputs.\n"

    def unbiased(x):
        return (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)

    def crashes(x):
        raise RuntimeError("oops")

    def transposed(x):
        return reference(x).T

    def pair(x):
        return reference(x), x

    for wrong, says in [(unbiased, "max |difference|"), (crashes, "raised RuntimeError: oops"),
                        (transposed, "has shape"), (pair, "returned 2 arrays")]:
        assert not check_function(wrong, reference, inputs)
        out = capsys.readouterr().out
        assert says in out and out.startswith(f"{wrong.__name__}: wrong on 2 of 2 inputs:\n")


def test_checker_protects_inputs_and_compares_tensors(capsys):
    x = np.ones((3, 2))

    def in_place(a):
        a -= 1
        return a

    check_function(in_place, lambda a: a - 1, [(x,)])
    assert np.all(x == 1)
    t = torch.randn(4, 3)
    assert check_function(lambda a: a * 2, lambda a: (a * 2).numpy(), [(t,)])


def test_checker_refuses_bad_arguments():
    with pytest.raises(TypeError, match="candidate"):
        check_function(42, reference, [(np.ones(2),)])
    with pytest.raises(ValueError, match="inputs"):
        check_function(reference, reference, [])
