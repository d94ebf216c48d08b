"""companion.plotting.bars_with_seeds: one bar per group at the mean, one dot per seed."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from companion.plotting import bars_with_seeds, color


def test_bars_sit_at_the_mean_and_dots_at_each_seed():
    fig, ax = plt.subplots()
    runs = np.array([[0.9, 0.8, 1.0], [0.2, np.nan, 0.4]])
    bars_with_seeds(ax, ["a", "b"], runs, methods=["bn", "none"])
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.9, 0.2])  # the NaN is drawn as 0
    dots = [line.get_ydata() for line in ax.lines]
    assert np.allclose(dots[0], [0.9, 0.8, 1.0]) and np.allclose(dots[1], [0.2, 0.0, 0.4])
    assert matplotlib.colors.to_hex(ax.patches[0].get_facecolor()) == color("bn")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    plt.close(fig)


def test_bars_reject_a_shape_that_does_not_match_the_labels():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="runs must have shape"):
        bars_with_seeds(ax, ["a", "b", "c"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="methods must have"):
        bars_with_seeds(ax, ["a", "b"], np.zeros((2, 3)), methods=["bn"])
    plt.close(fig)
