"""One plotting style for the whole book, and the few plot shapes the chapters repeat.

Each method has one colour everywhere (:data:`COLORS`), so "BN is orange" holds across chapters.
Every helper draws on an ``Axes`` it is given and returns nothing, so a notebook cell can end with
``plt.show()`` and leak no ``Line2D`` reprs into its stored outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes

#: One colour per method, used by every chapter.
COLORS: dict[str, str] = {
    "plain": "#4c72b0",
    "none": "#4c72b0",
    "bn": "#dd8452",
    "batchnorm": "#dd8452",
    "ln": "#55a868",
    "layernorm": "#55a868",
    "gn": "#c44e52",
    "groupnorm": "#c44e52",
    "in": "#8172b3",
    "instancenorm": "#8172b3",
    "rms": "#937860",
    "rmsnorm": "#937860",
    "dropout": "#da8bc3",
    "bn+dropout": "#8c8c8c",
    "frozen": "#ccb974",
    "adabn": "#64b5cd",
    "renorm": "#2f4f4f",
    "ghost": "#b8860b",
}


def color(name: str) -> str:
    """The book's colour for a method name (case-insensitive); grey when unknown."""
    return COLORS.get(name.lower(), "#7f7f7f")


def apply_style() -> None:
    """Set matplotlib's rcParams to the book's style (called by ``setup_notebook``)."""
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 3.6),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "legend.frameon": False,
            "font.size": 10,
            "lines.linewidth": 1.8,
        }
    )


def band(
    ax: Axes,
    x: Sequence[float] | np.ndarray,
    low: Sequence[float] | np.ndarray,
    middle: Sequence[float] | np.ndarray,
    high: Sequence[float] | np.ndarray,
    label: str,
    method: str | None = None,
) -> None:
    """Draw a line ``middle`` with a shaded band from ``low`` to ``high`` (percentiles, ±1 sd).

    Parameters
    ----------
    ax : Axes
        Where to draw.
    x, low, middle, high : array-like, shape (T,)
        Abscissae and the band's lower edge, centre line and upper edge.
    label : str
        Legend label of the centre line.
    method : str, optional
        Method name for :func:`color`; defaults to ``label``.
    """
    c = color(method or label)
    ax.plot(x, middle, color=c, label=label)
    ax.fill_between(x, low, high, color=c, alpha=0.25, linewidth=0)


def mean_and_spread(
    ax: Axes,
    x: Sequence[float] | np.ndarray,
    runs: np.ndarray,
    label: str,
    method: str | None = None,
    marker: str = "o",
) -> None:
    """Plot the mean over runs with error bars of one standard deviation.

    Parameters
    ----------
    runs : ndarray, shape (R, T)
        One row per seed (run), one column per ``x``.
    """
    runs = np.asarray(runs, dtype=float)
    if runs.ndim != 2 or runs.shape[1] != len(x):
        raise ValueError(f"runs must have shape (R, {len(x)}), got {runs.shape}")
    c = color(method or label)
    ax.errorbar(x, runs.mean(axis=0), yerr=runs.std(axis=0), color=c, label=label,
                marker=marker, capsize=3)


def paired_differences(
    ax: Axes,
    x: Sequence[float] | np.ndarray,
    diffs: np.ndarray,
    label: str,
    method: str | None = None,
    level: float = 0.95,
    marker: str = "o",
) -> None:
    r"""Draw paired differences over seeds: one dot per seed, and the mean with its t-interval.

    For each ``x[j]`` the column ``diffs[:, j]`` holds one difference per seed (a variant minus its
    baseline on the same seed). The bar is the two-sided ``level`` Student-t interval of the mean,
    :math:`\bar d \pm t_{(1+level)/2,\,R-1}\, s_d/\sqrt{R}`, the interval a paired t-test uses; it
    excludes 0 exactly when the paired test rejects "no difference" at level ``level``.

    Parameters
    ----------
    ax : Axes
    x : array-like, shape (T,)
        Positions (shift them per method so that several methods do not overlap).
    diffs : ndarray, shape (R, T)
        One row per seed, one column per ``x``; R >= 2.
    label : str
        Legend label of the means.
    method : str, optional
        Method name for :func:`color`; defaults to ``label``.
    level : float
        Confidence level of the interval, in (0, 1).
    """
    from companion.claims import t_quantile

    diffs = np.asarray(diffs, dtype=float)
    x = np.asarray(x, dtype=float)
    if diffs.ndim != 2 or diffs.shape[1] != len(x) or diffs.shape[0] < 2:
        raise ValueError(f"diffs must have shape (R >= 2, {len(x)}), got {diffs.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    c = color(method or label)
    seeds = diffs.shape[0]
    half = t_quantile(level, seeds - 1) * diffs.std(axis=0, ddof=1) / np.sqrt(seeds)
    ax.plot(np.broadcast_to(x, diffs.shape).ravel(), diffs.ravel(), marker, color=c, alpha=0.3,
            markersize=3, linestyle="none")
    ax.errorbar(x, diffs.mean(axis=0), yerr=half, color=c, label=label, marker=marker, capsize=3,
                linestyle="none")
