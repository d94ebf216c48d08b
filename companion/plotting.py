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


def draw_graph(
    ax: Axes,
    nodes: dict[str, tuple[float, float, str]],
    edges: Sequence[tuple[str, str, str]],
    edge_colors: dict[str, str],
    fontsize: float = 11,
    margin: float = 0.7,
) -> None:
    """Draw a small computational graph: boxed node labels joined by coloured arrows.

    Parameters
    ----------
    ax : Axes
        Where to draw; its axis lines are switched off and its limits fitted to the nodes.
    nodes : dict
        ``name -> (x, y, label)``: the position of each node and its (TeX) label.
    edges : sequence of (str, str, str)
        ``(from, to, kind)`` for each arrow; ``kind`` picks the colour.
    edge_colors : dict
        ``kind -> colour`` for every kind used by ``edges``.
    fontsize : float
        Font size of the node labels.
    margin : float
        Space around the outermost nodes, in data units.

    Raises
    ------
    ValueError
        When an edge names a node or a kind that is not given.
    """
    for start, end, kind in edges:
        for name in (start, end):
            if name not in nodes:
                raise ValueError(f"edges: node {name!r} is not in nodes")
        if kind not in edge_colors:
            raise ValueError(f"edges: kind {kind!r} has no colour in edge_colors")
    boxes = {
        name: ax.text(x, y, label, ha="center", va="center", fontsize=fontsize,
                      color="black", zorder=3,
                      bbox=dict(boxstyle="round,pad=0.35", facecolor="white",
                                edgecolor="0.4"))
        for name, (x, y, label) in nodes.items()
    }
    xs = [x for x, _, _ in nodes.values()]
    ys = [y for _, y, _ in nodes.values()]
    ax.set_xlim(min(xs) - margin, max(xs) + margin)
    ax.set_ylim(min(ys) - margin, max(ys) + margin)
    # Half-sizes of the boxes in data units, so that arrows end at the box edges.
    renderer = ax.figure.canvas.get_renderer()
    to_data = ax.transData.inverted()
    half = {}
    for name, text in boxes.items():
        text.update_bbox_position_size(renderer)
        (x0, y0), (x1, y1) = to_data.transform(text.get_bbox_patch().get_window_extent(renderer))
        half[name] = (abs(x1 - x0) / 2, abs(y1 - y0) / 2)

    def edge_point(name: str, dx: float, dy: float) -> tuple[float, float]:
        """Where the ray from the centre of ``name`` along (dx, dy) leaves its box."""
        hw, hh = half[name]
        t = min(hw / abs(dx) if dx else np.inf, hh / abs(dy) if dy else np.inf)
        x, y, _ = nodes[name]
        return x + t * dx, y + t * dy

    for start, end, kind in edges:
        (x0, y0, _), (x1, y1, _) = nodes[start], nodes[end]
        dx, dy = x1 - x0, y1 - y0
        ax.annotate("", xy=edge_point(end, -dx, -dy), xytext=edge_point(start, dx, dy),
                    zorder=2, arrowprops=dict(arrowstyle="-|>", color=edge_colors[kind],
                                              lw=1.8, shrinkA=1, shrinkB=1))
    ax.axis("off")


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
