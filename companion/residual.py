r"""A deep residual MLP in five variants: no normalization, batch norm, SkipInit, Fixup, and
normalizer-free (scaled weight standardization), several copies side by side.

Every variant has the same skeleton, ``depth`` blocks of two layers on a stream of width D::

    h_0 = E x                      (embedding, D x in_features)
    h_{l+1} = h_l + f_l(h_l)       (residual block, l = 0 .. depth - 1)
    logits = C h_depth             (classifier)

and differs in the branch :math:`f_l` and its initialization (:data:`SCHEMES`):

``none``
    :math:`f(h) = W_2\,\mathrm{relu}(W_1\,\mathrm{relu}(h) + b_1) + b_2`, He-initialized
    (``var = 2 / fan_in``), biases zero. The branch roughly preserves the variance of its
    input, so the stream's variance doubles per block.
``bn``
    pre-activation batch norm: :math:`f(h) = W_2\,\mathrm{relu}(\mathrm{BN}_2(W_1\,\mathrm{relu}(\mathrm{BN}_1(h))))`.
    The branch output has variance about 1 whatever the stream's, so the stream's variance
    grows by about 1 per block: linearly (De & Smith, 2020).
``skipinit``
    ``none`` times a learnable scalar :math:`\alpha_l` initialized to 0 (De & Smith, 2020).
``fixup``
    Zhang, Dauphin & Ma (2019): :math:`f(h) = s\, W_2 (\mathrm{relu}(W_1 (\mathrm{relu}(h + a_1) + a_2) + a_3) + a_4) + a_5`
    with scalar biases :math:`a_k` (0) and multiplier :math:`s` (1), :math:`W_2 = 0`, the
    classifier 0, and :math:`W_1` He-initialized then scaled by :math:`L^{-1/(2m-2)} = L^{-1/2}`
    for :math:`L` = ``depth`` blocks of :math:`m = 2` layers.
``nf``
    normalizer-free (Brock, De & Smith, 2021): :math:`f(h) = \alpha\, \hat W_2\, \gamma\,\mathrm{relu}(\hat W_1\, \gamma\,\mathrm{relu}(h/\beta_l)) `
    with scaled weight standardization :math:`\hat W` (``companion.weight_norms``), the ReLU
    gain :math:`\gamma`, :math:`\alpha = 0.2` and :math:`\beta_l = \sqrt{1 + l\alpha^2}`, the
    stream's predicted standard deviation.

The embedding and classifier are LeCun-initialized (``var = 1 / fan_in``; Fixup's classifier 0).

Side by side
------------
All parameters carry a leading dimension of ``copies`` independent networks: the input is
(copies, N, in_features) (or (N, in_features), shared), the output (copies, N, out_features).
Batch norm takes its statistics per copy. Copy ``r`` computes exactly what a network built with
``copies=1`` and copy ``r``'s parameters computes (``tests/test_residual.py``), so training several
seeds or learning rates costs one batched matrix product per layer instead of one per network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from companion import _checks
from companion.agc import adaptive_clip_grad_
from companion.data import Split
from companion.weight_norms import relu_gain, standardize_weight

SCHEMES = ("none", "bn", "skipinit", "fixup", "nf")


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Per-copy ``x @ W^T + b``: x (R, N, in), weight (R, out, in), bias (R, out)."""
    out = torch.bmm(x, weight.transpose(1, 2))
    return out if bias is None else out + bias[:, None, :]


class CopiesBatchNorm(nn.Module):
    r"""Batch norm of (R, N, D) activations over N, separately per copy and feature.

    The same arithmetic as ``torch.nn.BatchNorm1d``: training mode normalizes with the batch
    mean and biased variance and updates ``running_mean`` / ``running_var`` (unbiased) with
    ``momentum``; eval mode uses the running statistics.
    """

    def __init__(self, copies: int, width: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = _checks.positive_float("eps", eps)
        self.momentum = _checks.momentum(momentum, allow_none=False)
        self.weight = nn.Parameter(torch.ones(copies, width))
        self.bias = nn.Parameter(torch.zeros(copies, width))
        self.register_buffer("running_mean", torch.zeros(copies, width))
        self.register_buffer("running_var", torch.ones(copies, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, n, d = x.shape
        if self.training and n < 2:
            raise ValueError("batch norm in training mode needs at least 2 examples per batch")
        # One fused call: (R, N, D) -> (N, R * D), the buffers seen as (R * D,) views.
        flat = x.transpose(0, 1).reshape(n, r * d)
        out = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1),
                           self.weight.view(-1), self.bias.view(-1), self.training,
                           self.momentum, self.eps)
        return out.reshape(n, r, d).transpose(0, 1)


def fixup_scale(depth: int, layers_per_branch: int = 2) -> float:
    r"""Fixup's rescaling of the branch's inner layers, :math:`L^{-1/(2m-2)}` for ``depth`` = L
    blocks of ``layers_per_branch`` = m >= 2 layers."""
    depth = _checks.positive_int("depth", depth)
    m = _checks.positive_int("layers_per_branch", layers_per_branch)
    if m < 2:
        raise ValueError(f"layers_per_branch must be >= 2 (Fixup's rule divides by 2m - 2), got {m}")
    return depth ** (-1.0 / (2 * m - 2))


def _he(copies: int, fan_out: int, fan_in: int, gain: float = 2.0) -> nn.Parameter:
    return nn.Parameter(torch.randn(copies, fan_out, fan_in) * math.sqrt(gain / fan_in))


class ResidualBlock(nn.Module):
    """One residual block :math:`h + f(h)` of the module docstring, for ``copies`` networks.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES`.
    width, copies : int
    depth : int
        The number of blocks of the whole network (Fixup's scale ``depth ** -0.5``).
    index : int
        This block's position ``l`` (the normalizer-free :math:`\\beta_l`).
    alpha : float
        The normalizer-free branch scale.
    """

    def __init__(self, scheme: str, width: int, copies: int, depth: int, index: int,
                 alpha: float = 0.2) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.scheme = scheme
        r, d = copies, width
        self.w1 = _he(r, d, d)
        self.w2 = _he(r, d, d)
        if scheme in ("none", "skipinit", "nf"):
            self.b1 = nn.Parameter(torch.zeros(r, d))
            self.b2 = nn.Parameter(torch.zeros(r, d))
        if scheme == "bn":
            self.bn1, self.bn2 = CopiesBatchNorm(r, d), CopiesBatchNorm(r, d)
        if scheme == "skipinit":
            self.skip_gain = nn.Parameter(torch.zeros(r))
        if scheme == "fixup":
            with torch.no_grad():
                self.w1.mul_(fixup_scale(depth))
                self.w2.zero_()
            self.scalar_biases = nn.Parameter(torch.zeros(r, 5))
            self.multiplier = nn.Parameter(torch.ones(r))
        if scheme == "nf":
            with torch.no_grad():  # scaled WS makes the scale irrelevant; start at LeCun's
                self.w1.mul_(2 ** -0.5)
                self.w2.mul_(2 ** -0.5)
            self.g1 = nn.Parameter(torch.ones(r, d))
            self.g2 = nn.Parameter(torch.ones(r, d))
            self.alpha = _checks.positive_float("alpha", alpha)
            self.beta = math.sqrt(1.0 + index * self.alpha ** 2)

    def branch(self, h: torch.Tensor) -> torch.Tensor:
        """:math:`f(h)` for h of shape (R, N, D)."""
        relu = torch.relu
        if self.scheme in ("none", "skipinit"):
            out = _linear(relu(_linear(relu(h), self.w1, self.b1)), self.w2, self.b2)
            return out * self.skip_gain[:, None, None] if self.scheme == "skipinit" else out
        if self.scheme == "bn":
            return _linear(relu(self.bn2(_linear(relu(self.bn1(h)), self.w1))), self.w2)
        if self.scheme == "fixup":
            a = self.scalar_biases.T[:, :, None, None]  # (5, R, 1, 1)
            z = _linear(relu(h + a[0]) + a[1], self.w1)
            out = _linear(relu(z + a[2]) + a[3], self.w2)
            return self.multiplier[:, None, None] * out + a[4]
        gamma = relu_gain()  # nf
        w1 = standardize_weight(self.w1, 1e-4, scaled=True, gain=self.g1, gamma=gamma, unit_dim=1)
        w2 = standardize_weight(self.w2, 1e-4, scaled=True, gain=self.g2, gamma=gamma, unit_dim=1)
        z = _linear(relu(h / self.beta), w1, self.b1)
        return self.alpha * _linear(relu(z), w2, self.b2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.branch(h)


class ResidualMLP(nn.Module):
    """The residual MLP of the module docstring: ``copies`` independent networks side by side.

    Parameters
    ----------
    depth : int
        Number of residual blocks (each of two layers).
    scheme : str
        One of :data:`SCHEMES`.
    width, in_features, out_features, copies : int
    alpha : float
        Branch scale of ``nf``.

    Built from the global torch generator: seed it first for a reproducible network.
    """

    def __init__(self, depth: int, scheme: str = "none", width: int = 32, in_features: int = 64,
                 out_features: int = 10, copies: int = 1, alpha: float = 0.2) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        depth = _checks.positive_int("depth", depth)
        width = _checks.positive_int("width", width)
        self.copies = _checks.positive_int("copies", copies)
        self.in_features = _checks.positive_int("in_features", in_features)
        out_features = _checks.positive_int("out_features", out_features)
        self.scheme = scheme
        self.embed = _he(copies, width, in_features, gain=1.0)
        self.embed_bias = nn.Parameter(torch.zeros(copies, width))
        self.blocks = nn.ModuleList(ResidualBlock(scheme, width, copies, depth, i, alpha) for i in range(depth))
        self.head = _he(copies, out_features, width, gain=1.0)
        self.head_bias = nn.Parameter(torch.zeros(copies, out_features))
        if scheme == "fixup":
            with torch.no_grad():
                self.head.zero_()

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        _checks.float_tensor("x", x)
        if x.ndim == 2:
            x = x.expand(self.copies, -1, -1)
        if x.ndim != 3 or x.shape[0] != self.copies or x.shape[2] != self.in_features:
            raise ValueError(f"x must have shape (N, {self.in_features}) or ({self.copies}, N, "
                             f"{self.in_features}), got {tuple(x.shape)}")
        return x

    def stream(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream ``[h_0, h_1, ..., h_depth]``, each (copies, N, width)."""
        h = _linear(self._inputs(x), self.embed, self.embed_bias)
        hs = [h]
        for block in self.blocks:
            h = block(h)
            hs.append(h)
        return hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in) or (copies, N, in) -> logits (copies, N, out)."""
        return _linear(self.stream(x)[-1], self.head, self.head_bias)

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The classifier's weight and bias (NFNets leave them out of AGC)."""
        return [self.head, self.head_bias]

    def body_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the classifier's."""
        head = {id(p) for p in self.classifier_parameters()}
        return [p for p in self.parameters() if id(p) not in head]


def stream_variance(model: ResidualMLP, x: torch.Tensor) -> torch.Tensor:
    """Variance of the residual stream after each block, shape (copies, depth + 1).

    The variance is taken over the examples and units of each copy, ``h_0`` (the embedding's
    output) first. The model's mode (train / eval) is used as it is.
    """
    if not isinstance(model, ResidualMLP):
        raise TypeError(f"model must be a ResidualMLP, got {type(model).__name__}")
    with torch.no_grad():
        return torch.stack([h.flatten(1).var(dim=1) for h in model.stream(x)], dim=1)


@dataclass
class CopiesRun:
    """What :func:`train_copies` recorded, one entry per copy (network).

    Attributes
    ----------
    loss : ndarray, shape (steps, copies)
        Training loss of each copy at each step (NaN or inf once a copy diverged).
    test_acc : ndarray, shape (copies,)
        Eval-mode test accuracy after the last step; NaN for a copy that diverged.
    clipped : ndarray, shape (steps, copies)
        Fraction of units whose gradient AGC clipped at each step (zeros without AGC).
    """

    loss: np.ndarray
    test_acc: np.ndarray
    clipped: np.ndarray

    def stable(self, last: int = 20) -> np.ndarray:
        """Per copy: the loss stayed finite and its mean over the ``last`` steps is below the
        loss at step 1 (training made progress instead of blowing up)."""
        finite = np.isfinite(self.loss).all(axis=0)
        with np.errstate(invalid="ignore"):
            progress = self.loss[-last:].mean(axis=0) < self.loss[0]
        return finite & progress


def train_copies(model: ResidualMLP, data: Split, steps: int, lrs: Sequence[float] | torch.Tensor,
                 batch_size: int = 64, momentum: float = 0.9, seed: int = 0,
                 clipping: float | None = None) -> CopiesRun:
    """Train the ``copies`` networks of ``model`` with SGD, each with its own learning rate and
    its own shuffled batches.

    Parameters
    ----------
    model : ResidualMLP
    data : Split
        Rows of ``data.X_train`` (N, in_features).
    steps, batch_size : int
    lrs : sequence of float, length ``model.copies``
        Learning rate of each copy. (Plain SGD with momentum is linear in the gradient, so
        scaling copy r's gradient by ``lrs[r]`` and stepping with rate 1 is exactly SGD with
        rate ``lrs[r]``.)
    momentum : float
    seed : int
        Seed of the batches (copy r draws its own permutations).
    clipping : float, optional
        AGC's :math:`\\lambda` (``companion.agc``) on every parameter but the classifier's;
        ``None``: no clipping.
    """
    if not isinstance(model, ResidualMLP):
        raise TypeError(f"model must be a ResidualMLP, got {type(model).__name__}")
    steps = _checks.positive_int("steps", steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    lr = torch.as_tensor(lrs, dtype=torch.float32)
    if lr.shape != (model.copies,) or not bool((lr > 0).all()):
        raise ValueError(f"lrs must hold {model.copies} positive learning rates, got {lrs!r}")
    if clipping is not None:
        clipping = _checks.positive_float("clipping", clipping)
    X, y = data.X_train, data.y_train
    if batch_size > len(X):
        raise ValueError(f"batch_size must be at most the {len(X)} training rows, got {batch_size}")
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=_checks.momentum(momentum, allow_none=False))
    gen = torch.Generator().manual_seed(seed)
    r = model.copies
    losses, clipped = np.zeros((steps, r)), np.zeros((steps, r))
    order = torch.empty(0, r, dtype=torch.long)
    model.train()
    for step in range(steps):
        if len(order) < batch_size:  # a new epoch: a fresh permutation per copy
            order = torch.stack([torch.randperm(len(X), generator=gen) for _ in range(r)], dim=1)
        idx, order = order[:batch_size].T, order[batch_size:]  # idx: (R, B)
        logits = model(X[idx])
        per_copy = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="none")
        per_copy = per_copy.view(r, batch_size).mean(dim=1)
        opt.zero_grad()
        per_copy.sum().backward()
        if clipping is not None:
            clipped[step] = adaptive_clip_grad_(model.body_parameters(), clipping, batch_dims=1).numpy()
        with torch.no_grad():
            for p in model.parameters():
                p.grad.mul_(lr.view((r,) + (1,) * (p.ndim - 1)))
        opt.step()
        losses[step] = per_copy.detach().numpy()
    model.eval()
    with torch.no_grad():
        acc = (model(data.X_test).argmax(-1) == data.y_test).double().mean(dim=1).numpy()
    run = CopiesRun(losses, acc, clipped)
    run.test_acc[~np.isfinite(losses).all(axis=0)] = np.nan
    return run
