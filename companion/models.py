"""The networks the chapters compare: a small convolutional net for 8x8 digit images with the
normalization layer as a parameter, and deep ReLU MLPs with or without batch norm and skips.

One architecture, the same for every normalization, so that a comparison varies only the norm::

    (N, 1, 8, 8) -> conv 3x3, c1 -> norm -> ReLU -> max-pool 2   (c1 x 4 x 4)
                 -> conv 3x3, c2 -> norm -> ReLU -> max-pool 2   (c2 x 2 x 2)
                 -> conv 2x2, c3 -> norm -> ReLU                 (c3 x 1 x 1)
                 -> linear -> (N, n_classes)

The convolutions have no bias (a norm layer right after would subtract it). The last norm layer sees
one value per channel and example, as the fully connected layers of a classifier head do: there,
batch norm's statistics come from the N values of the batch alone.

Side by side
------------
Given a *list* of norm names, :func:`make_convnet` builds ``R = len(norm)`` independent networks in
one module: input (N, R, 8, 8), network r reading channel r, output (N, R, n_classes). Grouped
convolutions (``groups=R``) keep the weights apart and each norm layer sees only its own network's
channels, so no weight, statistic or gradient is shared: network r computes exactly what a separately
built ``make_convnet(norm[r])`` with the same weights computes (``tests/test_models.py`` checks it).
Training several seeds or norms this way costs much less than training them one after another when
the batches are small, because the time of a small step is mostly per-call overhead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby

import torch
from torch import nn

from companion import _checks

NORM_NAMES = ("bn", "gn", "ln", "none")


def _norm_layer(name: str, channels: int, copies: int, groups: int) -> nn.Module:
    """One torch layer normalizing ``copies`` side-by-side blocks of ``channels`` channels each.

    ``bn``: batch norm per channel (blocks are independent by construction). ``gn``: ``groups``
    groups per block. ``ln``: one group per block, i.e. layer norm over (C, H, W) with a per-channel
    affine, as in Wu & He (2018). ``none``: the identity.
    """
    if name == "bn":
        return nn.BatchNorm2d(copies * channels)
    if name == "gn":
        return nn.GroupNorm(copies * groups, copies * channels)
    if name == "ln":
        return nn.GroupNorm(copies, copies * channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORM_NAMES}, got {name!r}")


class SideBySide(nn.Module):
    """Normalize consecutive channel blocks of width ``channels`` with one layer per run of equal names.

    Parameters
    ----------
    names : sequence of str
        One norm name per block (network); consecutive equal names share one torch layer.
    channels : int
        Channels per block.
    groups : int
        Groups per block for ``gn``.
    """

    def __init__(self, names: Sequence[str], channels: int, groups: int) -> None:
        super().__init__()
        runs = [(name, len(list(run))) for name, run in groupby(names)]
        self.widths = [copies * channels for _, copies in runs]
        self.layers = nn.ModuleList(_norm_layer(name, channels, copies, groups) for name, copies in runs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor, shape (N, R * channels, H, W) -> same shape."""
        if len(self.layers) == 1:
            return self.layers[0](x)
        parts = x.split(self.widths, dim=1)
        return torch.cat([layer(part) for layer, part in zip(self.layers, parts)], dim=1)


def make_convnet(
    norm: str | Callable[[int], nn.Module] | Sequence[str] = "bn",
    channels: tuple[int, int, int] = (16, 32, 64),
    n_classes: int = 10,
    groups: int = 4,
) -> nn.Sequential:
    """The digits conv net of the module docstring.

    Parameters
    ----------
    norm : str, callable or sequence of str
        ``"bn"``, ``"gn"``, ``"ln"`` or ``"none"`` (torch layers); or a factory ``norm(channels)``
        returning a module for (N, channels, H, W) input (e.g. ``companion.nn.BatchNorm2d``); or a
        list of names: that many independent networks side by side (module docstring).
    channels : (c1, c2, c3)
        Widths of the three convolutions.
    n_classes : int
    groups : int
        Groups of group norm; must divide every width.

    Returns
    -------
    nn.Sequential
        Maps (N, 1, 8, 8) to (N, n_classes) logits; with a list of R names, (N, R, 8, 8) to
        (N, R, n_classes).
    """
    if len(channels) != 3 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
        raise ValueError(f"channels must be three positive ints, got {channels!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    side_by_side = not isinstance(norm, str) and not callable(norm)
    names = list(norm) if side_by_side else [norm] if isinstance(norm, str) else []
    if side_by_side and not names:
        raise ValueError("norm must list at least one name")
    for name in names:
        if name not in NORM_NAMES:
            raise ValueError(
                f"norm must be one of {NORM_NAMES} (or a list of them, or a callable), got {name!r}"
            )
    if "gn" in names and (isinstance(groups, bool) or not isinstance(groups, int) or groups < 1
                          or any(c % groups for c in channels)):
        raise ValueError(f"groups must be a positive int dividing every width {channels}, got {groups!r}")
    copies = len(names) if side_by_side else 1
    if side_by_side:
        make_norm: Callable[[int], nn.Module] = lambda c: SideBySide(names, c, groups)
    elif callable(norm):
        make_norm = norm
    else:
        make_norm = lambda c: _norm_layer(norm, c, 1, groups)
    c1, c2, c3 = (copies * c for c in channels)
    layers: list[nn.Module] = [
        nn.Conv2d(copies, c1, 3, padding=1, bias=False, groups=copies), make_norm(channels[0]), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False, groups=copies), make_norm(channels[1]), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 2, bias=False, groups=copies), make_norm(channels[2]), nn.ReLU(),
    ]
    if side_by_side:
        # A grouped 1x1 convolution is one Linear(c3, n_classes) per network.
        layers += [nn.Conv2d(c3, copies * n_classes, 1, groups=copies), nn.Flatten(),
                   nn.Unflatten(1, (copies, n_classes))]
    else:
        layers += [nn.Flatten(), nn.Linear(c3, n_classes)]
    return nn.Sequential(*layers)


class ReLUBlock(nn.Module):
    r"""One hidden layer of a deep MLP: :math:`h \mapsto \mathrm{relu}(N(W h + b))`, plus :math:`h`
    itself when ``residual``.

    :math:`W` is He-initialized (``kaiming_normal_`` for ReLU) and :math:`b = 0`; :math:`N` is
    ``torch.nn.BatchNorm1d(width)`` when ``batch_norm``, else the identity.

    Parameters
    ----------
    width : int
        Input and output width D; the block maps (N, D) to (N, D).
    batch_norm, residual : bool
    """

    def __init__(self, width: int, batch_norm: bool, residual: bool) -> None:
        super().__init__()
        width = _checks.positive_int("width", width)
        self.linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.linear.weight, nonlinearity="relu")
        nn.init.zeros_(self.linear.bias)
        self.norm = nn.BatchNorm1d(width) if _checks.boolean("batch_norm", batch_norm) else nn.Identity()
        self.residual = _checks.boolean("residual", residual)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm(self.linear(h)))
        return h + out if self.residual else out


def make_deep_relu_net(
    depth: int,
    batch_norm: bool,
    residual: bool,
    width: int = 100,
    in_features: int = 64,
    out_features: int = 10,
) -> nn.Sequential:
    """``Linear(in_features, width)``, then ``depth`` :class:`ReLUBlock` s, then ``Linear(width, out_features)``.

    The blocks are ``model[1:-1]``; their weights are ``block.linear``. Built from the global torch
    generator: seed it first for a reproducible network.
    """
    depth = _checks.positive_int("depth", depth)
    width = _checks.positive_int("width", width)
    blocks = [ReLUBlock(width, batch_norm, residual) for _ in range(depth)]
    return nn.Sequential(
        nn.Linear(_checks.positive_int("in_features", in_features), width),
        *blocks,
        nn.Linear(width, _checks.positive_int("out_features", out_features)),
    )
