"""companion.plotting.draw_graph: the computational-graph drawing of chapter 3."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from companion.plotting import draw_graph

NODES = {"x": (0.0, 0.0, "$x$"), "mu": (1.0, 1.0, r"$\mu$"), "y": (2.0, 0.0, "$y$")}
EDGES = [("x", "mu", "mean"), ("mu", "y", "mean"), ("x", "y", "direct")]
COLORS = {"mean": "C1", "direct": "0.2"}


def test_draws_one_arrow_per_edge_and_one_label_per_node():
    fig, ax = plt.subplots()
    draw_graph(ax, NODES, EDGES, COLORS)
    arrows = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    labels = [t.get_text() for t in ax.texts if getattr(t, "arrow_patch", None) is None]
    assert len(arrows) == len(EDGES)
    assert sorted(labels) == sorted(label for _, _, label in NODES.values())
    assert ax.get_xlim()[0] < 0.0 < 2.0 < ax.get_xlim()[1]
    assert not ax.axison
    plt.close(fig)


def test_arrows_take_the_colour_of_their_kind():
    fig, ax = plt.subplots()
    draw_graph(ax, NODES, EDGES, COLORS)
    arrows = [t.arrow_patch for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    got = [matplotlib.colors.to_hex(a.get_edgecolor()) for a in arrows]
    assert got == [matplotlib.colors.to_hex(COLORS[kind]) for _, _, kind in EDGES]
    plt.close(fig)


@pytest.mark.parametrize("edges, message", [
    ([("x", "z", "mean")], "node 'z'"),
    ([("x", "y", "var")], "kind 'var'"),
])
def test_bad_edges_are_named(edges, message):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=message):
        draw_graph(ax, NODES, edges, COLORS)
    plt.close(fig)
