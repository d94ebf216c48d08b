"""companion.plotting: the shared drawing helpers draw what they say and refuse bad shapes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from companion.plotting import color, paired_differences


def test_paired_differences_draws_seeds_and_the_t_interval():
    rng = np.random.default_rng(0)
    diffs = rng.normal(0.5, 1.0, size=(8, 3))
    fig, ax = plt.subplots()
    paired_differences(ax, [1, 2, 3], diffs, label="bn", level=0.95)
    dots = ax.lines[0]
    assert len(dots.get_xdata()) == 24 and dots.get_color() == color("bn")
    container = ax.containers[0]
    means = container.lines[0].get_ydata()
    assert np.allclose(means, diffs.mean(axis=0))
    segments = container.lines[2][0].get_segments()
    half = np.array([s[1, 1] - s[0, 1] for s in segments]) / 2
    expected = stats.t.ppf(0.975, 7) * diffs.std(axis=0, ddof=1) / np.sqrt(8)
    assert np.allclose(half, expected)
    plt.close(fig)


@pytest.mark.parametrize("diffs, level, match", [
    (np.zeros((1, 3)), 0.95, "shape"),
    (np.zeros((4, 2)), 0.95, "shape"),
    (np.zeros((4, 3)), 1.0, "level"),
])
def test_paired_differences_refuses_bad_input(diffs, level, match):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=match):
        paired_differences(ax, [1, 2, 3], diffs, label="bn", level=level)
    plt.close(fig)
