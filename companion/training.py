"""A small, explicit training loop with a history, and the model shapes the chapters compare.

The loop is deliberately plain (SGD or Adam, cross-entropy, a fixed number of steps) so that the
only difference between two runs of an experiment is the one the chapter varies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from companion.data import Split, batches

NormFactory = Callable[[int], nn.Module]


def make_mlp(
    sizes: list[int],
    norm: NormFactory | None = None,
    activation: type[nn.Module] = nn.ReLU,
    dropout: float = 0.0,
    dropout_before_norm: bool = False,
) -> nn.Sequential:
    """A multi-layer perceptron ``Linear → [norm] → activation → [dropout]`` per hidden layer.

    A hidden ``Linear`` followed by a normalization is created with ``bias=False``: the norm
    subtracts the batch mean, which removes any constant the bias adds (``norm`` brings its own
    shift β). Without a norm, and for the last ``Linear``, the bias stays.

    Parameters
    ----------
    sizes : list of int
        ``[in_features, hidden_1, ..., out_features]``; the last Linear has no norm/activation.
    norm : callable, optional
        ``norm(width)`` builds the normalization layer of a hidden layer, e.g.
        ``torch.nn.BatchNorm1d`` or ``companion.nn.BatchNorm1d``. ``None``: no normalization.
    activation : nn.Module class
    dropout : float
        Dropout probability after each hidden activation (0: none).
    dropout_before_norm : bool
        Put dropout before the normalization instead (the order whose variance shift chapter 5
        measures): ``Linear → dropout → norm → activation``.
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least input and output widths, got {sizes!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    layers: list[nn.Module] = []
    for width_in, width_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(nn.Linear(width_in, width_out, bias=norm is None))
        if dropout and dropout_before_norm:
            layers.append(nn.Dropout(dropout))
        if norm is not None:
            layers.append(norm(width_out))
        layers.append(activation())
        if dropout and not dropout_before_norm:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


@dataclass
class History:
    """What a training run recorded.

    Attributes
    ----------
    steps : list of int
        Step numbers at which the model was evaluated.
    train_loss : list of float
        Mini-batch loss at every step.
    train_acc, test_acc : list of float
        Accuracy (eval mode) on the full training and test sets at each evaluation step.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)

    def steps_to(self, accuracy: float) -> int | None:
        """First evaluated step whose test accuracy reaches ``accuracy``; ``None`` if never."""
        for step, acc in zip(self.steps, self.test_acc):
            if acc >= accuracy:
                return step
        return None


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, train_mode: bool = False) -> float:
    """Fraction of rows of ``X`` classified as ``y``.

    The model is put in eval mode (or train mode when ``train_mode``) for the call and put back
    in the mode it was in. In train mode, batch norm layers update their running statistics, as
    they would in a forgotten ``model.eval()``.
    """
    was_training = model.training
    model.train(train_mode)
    try:
        return (model(X).argmax(dim=1) == y).float().mean().item()
    finally:
        model.train(was_training)


def train(
    model: nn.Module,
    data: Split,
    steps: int,
    batch_size: int = 64,
    lr: float = 0.1,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    eval_every: int = 50,
    seed: int = 0,
    on_step: Callable[[int, nn.Module], None] | None = None,
) -> History:
    """Train ``model`` with cross-entropy for ``steps`` mini-batch steps.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, ...)`` inputs to ``(B, n_classes)`` logits.
    data : Split
    steps : int
        Number of parameter updates. Epochs are reshuffled with a generator seeded by ``seed``.
    batch_size, lr, momentum, weight_decay : training hyper-parameters.
    optimizer : {"sgd", "adam"}
    eval_every : int
        Evaluate train/test accuracy (eval mode) every ``eval_every`` steps and after the last.
    on_step : callable, optional
        ``on_step(step, model)`` after every update (for recording diagnostics).

    Returns
    -------
    History
        Training stops early (and the history ends) if the loss becomes NaN or infinite.
    """
    if steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    step = 0
    while step < steps:
        for xb, yb in batches(data.X_train, data.y_train, batch_size, gen):
            model.train()
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            history.train_loss.append(loss.item())
            if on_step is not None:
                on_step(step, model)
            if not torch.isfinite(loss):
                return history
            if step % eval_every == 0 or step == steps:
                history.steps.append(step)
                history.train_acc.append(accuracy(model, data.X_train, data.y_train))
                history.test_acc.append(accuracy(model, data.X_test, data.y_test))
            if step == steps:
                break
    return history
