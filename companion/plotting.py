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


def bars_with_seeds(
    ax: Axes,
    labels: Sequence[str],
    runs: Sequence[Sequence[float]] | np.ndarray,
    methods: Sequence[str] | None = None,
    missing: float = 0.0,
) -> None:
    """One bar per group at the mean over seeds, with each seed's value drawn as a dot on it.

    The bar of group :math:`k` has height :math:`\\bar v_k = \\frac1R \\sum_r v_{k r}`; the dots
    show the :math:`R` values :math:`v_{k r}` themselves, so a reader sees the spread that a mean
    hides. Non-finite values (a diverged run) are drawn as ``missing``.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    labels : sequence of str, length K
        The tick label of each bar (``"\\n"`` breaks a long label).
    runs : array-like, shape (K, R)
        One row per group, one value per seed.
    methods : sequence of str, length K, optional
        The method of each bar, for its colour (:func:`color`); the labels by default.
    missing : float
        The value drawn for a NaN or infinite entry.
    """
    runs = np.asarray(runs, dtype=float)
    if runs.ndim != 2 or runs.shape[0] != len(labels):
        raise ValueError(f"runs must have shape ({len(labels)}, R), got {runs.shape}")
    methods = list(labels) if methods is None else list(methods)
    if len(methods) != len(labels):
        raise ValueError(f"methods must have {len(labels)} entries, got {len(methods)}")
    runs = np.where(np.isfinite(runs), runs, missing)
    for k, (values, method) in enumerate(zip(runs, methods)):
        c = color(method)
        ax.bar(k, values.mean(), color=c, alpha=0.5, width=0.6)
        ax.plot(np.full(len(values), k), values, "o", color=c, markersize=4)
    ax.set_xticks(range(len(labels)), list(labels))
