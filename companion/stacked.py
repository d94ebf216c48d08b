"""Train the same MLP for many seeds at once: S independent networks evaluated in one pass.

A seed-by-seed comparison needs many short runs of a small network, and a small network's step
costs mostly per-call overhead. :class:`StackedMLP` holds ``S`` networks built by
:func:`companion.training.make_mlp` and computes all of them in one call: input ``(N, S, D)``,
network ``s`` reading ``x[:, s]``, output ``(N, S, classes)``. Nothing is shared:

- a hidden linear layer is one weight tensor ``(S, out, in)``, :math:`y_{ns} = W_s x_{ns} + b_s`;
- a batch norm layer (torch's, or ``companion.nn``'s batch or ghost batch norm) is one layer
  of ``S * width`` channels over the flattened
  ``(N, S * width)`` input, whose channels ``s * width ... (s + 1) * width - 1`` belong to network
  ``s`` alone, so each network is normalized with the statistics of its own batch;
- activations and dropout act elementwise (dropout masks are drawn independently).

:func:`train_stacked` runs the loop of :func:`companion.training.train` (plain SGD, cross-entropy)
for every network, each with its own data and its own batch order, and the summed loss gives each
network exactly the gradient of its own loss. Network ``s`` thus follows the trajectory the
separate run would follow, up to floating-point rounding (``tests/test_stacked.py`` checks it), and
:meth:`StackedMLP.unstack` hands it back as an ordinary ``nn.Sequential``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from companion import _checks
from companion.data import Split, batches


class StackedMLP(nn.Module):
    """``S`` networks of the same :func:`~companion.training.make_mlp` layout, side by side.

    Parameters
    ----------
    nets : sequence of nn.Sequential
        Networks from ``make_mlp`` with the same sizes and layer types (Linear, BatchNorm1d,
        activations, Dropout). Their current weights and buffers are copied in.
    """

    def __init__(self, nets: Sequence[nn.Sequential]) -> None:
        super().__init__()
        if len(nets) == 0:
            raise ValueError("nets must hold at least one network")
        kinds = [[type(m) for m in net] for net in nets]
        if any(k != kinds[0] for k in kinds):
            raise ValueError("nets must all have the same layer types (build them with the same make_mlp call)")
        self.copies = len(nets)
        self.template = copy.deepcopy(nets[0])
        layers: list[nn.Module] = []
        for i, module in enumerate(nets[0]):
            column = [net[i] for net in nets]
            if isinstance(module, nn.Linear):
                layers.append(_StackedLinear(column))
            elif _is_batch_norm(module):
                layers.append(_stacked_batchnorm(column))
            elif isinstance(module, nn.Dropout) or not any(True for _ in module.parameters()):
                layers.append(copy.deepcopy(module))
            else:
                raise ValueError(f"layer {i} ({type(module).__name__}) cannot be stacked")
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x : Tensor, shape (N, S, D_in) -> Tensor, shape (N, S, D_out)."""
        if x.dim() != 3 or x.shape[1] != self.copies:
            raise ValueError(f"x must have shape (N, {self.copies}, features), got {tuple(x.shape)}")
        n = x.shape[0]
        for layer in self.layers:
            if _is_batch_norm(layer):
                x = layer(x.reshape(n, -1)).reshape(n, self.copies, -1)
            else:
                x = layer(x)
        return x

    def unstack(self, s: int) -> nn.Sequential:
        """Network ``s`` as a separate ``nn.Sequential`` (a copy: its weights, buffers, mode)."""
        if not 0 <= s < self.copies:
            raise IndexError(f"s must be in [0, {self.copies}), got {s}")
        net = copy.deepcopy(self.template)
        with torch.no_grad():
            for layer, module in zip(self.layers, net):
                if isinstance(layer, _StackedLinear):
                    module.weight.copy_(layer.weight[s])
                    if module.bias is not None:
                        module.bias.copy_(layer.bias[s])
                elif _is_batch_norm(layer):
                    width = module.num_features
                    part = slice(s * width, (s + 1) * width)
                    for key, value in layer.state_dict().items():
                        target = module.state_dict()[key]
                        target.copy_(value[part] if value.dim() else value)
        return net.train(self.training)


class _StackedLinear(nn.Module):
    """``S`` linear maps: (N, S, in) -> (N, S, out), weight (S, out, in), bias (S, out) or None."""

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach().clone() for m in linears]))
        has_bias = linears[0].bias is not None
        self.bias = nn.Parameter(torch.stack([m.bias.detach().clone() for m in linears])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("nsi,soi->nso", x, self.weight)
        return y if self.bias is None else y + self.bias


def _is_batch_norm(module: nn.Module) -> bool:
    """torch's BatchNorm1d, or a (ghost) batch norm of ``companion.nn``: per-channel statistics."""
    from companion.nn.batchnorm import _BatchNorm

    return isinstance(module, (nn.BatchNorm1d, _BatchNorm))


def _stacked_batchnorm(norms: Sequence[nn.Module]) -> nn.Module:
    """One layer of the same class over S * width channels, holding every network's state."""
    first = norms[0]
    options = {"eps": first.eps, "momentum": first.momentum, "affine": first.affine,
               "track_running_stats": first.track_running_stats}
    if hasattr(first, "virtual_batch_size"):  # ghost batches are cut along N: the same for every network
        options["virtual_batch_size"] = first.virtual_batch_size
    stacked = type(first)(len(norms) * first.num_features, **options)
    with torch.no_grad():
        for key, value in stacked.state_dict().items():
            parts = [m.state_dict()[key] for m in norms]
            value.copy_(torch.cat(parts) if value.dim() else parts[0])
    return stacked


def _endless(split: Split, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Epoch after epoch of :func:`companion.data.batches`, from one generator (as ``train`` does)."""
    while True:
        yield from batches(split.X_train, split.y_train, batch_size, generator)


def train_stacked(
    model: StackedMLP,
    splits: Sequence[Split],
    seeds: Sequence[int],
    steps: int,
    batch_size: int = 64,
    lr: float = 0.1,
) -> StackedMLP:
    """Train every network of ``model`` with plain SGD and cross-entropy for ``steps`` steps.

    Network ``s`` trains on ``splits[s]``, its batches shuffled by a generator seeded with
    ``seeds[s]``: the batches :func:`companion.training.train` would draw with ``seed=seeds[s]``.
    The loss is :math:`\\sum_s \\mathrm{CE}_s`, the sum of each network's mean loss over its batch,
    so that network ``s`` receives the gradient of its own loss only.

    Returns
    -------
    StackedMLP
        ``model``, trained in place and left in training mode.
    """
    steps = _checks.positive_int("steps", steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    if not len(splits) == len(seeds) == model.copies:
        raise ValueError(f"splits and seeds must hold one entry per network ({model.copies}), "
                         f"got {len(splits)} and {len(seeds)}")
    sizes = {len(s.y_train) for s in splits}
    if len(sizes) != 1:
        raise ValueError(f"every split must have the same number of training rows, got {sorted(sizes)}")
    streams = [_endless(split, batch_size, torch.Generator().manual_seed(seed)) for split, seed in zip(splits, seeds)]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        xs, ys = zip(*(next(stream) for stream in streams))
        logits = model(torch.stack(xs, dim=1))                    # (N, S, classes)
        loss = nn.functional.cross_entropy(logits.permute(0, 2, 1), torch.stack(ys, dim=1),
                                           reduction="sum") / len(ys[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@torch.no_grad()
def stacked_accuracy(model: StackedMLP, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eval-mode accuracy of every network: ``X`` (N, S, D), ``y`` (N, S) -> Tensor (S,).

    The model is put back in the mode it was in.
    """
    was_training = model.training
    model.eval()
    try:
        return (model(X).argmax(dim=2) == y).float().mean(dim=0)
    finally:
        model.train(was_training)
