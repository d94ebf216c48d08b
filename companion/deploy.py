r"""Fold an inference-mode batch norm into the linear or convolution layer before it.

In eval mode batch norm is a fixed affine map per channel,
:math:`y = \gamma (z - \mu) / \sigma + \beta` with :math:`\sigma = \sqrt{\text{running\_var} + \epsilon}`,
and ``z = W x + b`` is affine too, so the two collapse into one layer (Ioffe & Szegedy 2015,
Algorithm 2; ``torch.nn.utils.fusion``):

.. math::
    W' = W \cdot \frac{\gamma}{\sigma} \ \text{(row / output channel } c \text{ scaled by } \gamma_c/\sigma_c), \qquad
    b' = (b - \mu) \frac{\gamma}{\sigma} + \beta .

One layer instead of two: one pass over the activations less at inference, same outputs.
"""

from __future__ import annotations

import copy

import torch

from companion.frozen import _FrozenBatchNorm

__all__ = ["FoldedConv1d", "FoldedConv2d", "FoldedConv3d", "FoldedLinear", "fold_batchnorm", "fold_sequential"]


class _Folded:
    """Mixin of a layer with a batch norm folded in: refuses the inputs on which the fold is not exact.

    Batch norm normalizes dimension 1 of its input. ``Linear`` maps the *last* dimension, so a
    ``Linear`` followed by ``BatchNorm1d`` folds exactly only for 2-D (N, features) input, where the
    two coincide; on (N, C, L) input the unfolded model normalizes C while the folded weights scale
    L. Likewise a convolution folds exactly for batched input only (unbatched (C, L) output would be
    read by ``BatchNorm1d`` as (N, C)). ``input_ndim`` is the one input dimensionality allowed.
    """

    input_ndim: int

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.dim() != self.input_ndim:
            raise ValueError(
                f"input must be {self.input_ndim}-D, got {input.dim()}-D input of shape {tuple(input.shape)}: "
                f"this {type(self).__name__} has a batch norm folded in, which equals the unfolded pair "
                f"only when the batch norm saw the layer's output channels at dim 1 ({self.input_ndim}-D input)"
            )
        return super().forward(input)  # type: ignore[misc]


class FoldedLinear(_Folded, torch.nn.Linear):
    """A ``torch.nn.Linear`` with a batch norm folded in; accepts (N, in_features) input only."""

    input_ndim = 2


class FoldedConv1d(_Folded, torch.nn.Conv1d):
    """A ``torch.nn.Conv1d`` with a batch norm folded in; accepts batched (N, C, L) input only."""

    input_ndim = 3


class FoldedConv2d(_Folded, torch.nn.Conv2d):
    """A ``torch.nn.Conv2d`` with a batch norm folded in; accepts batched (N, C, H, W) input only."""

    input_ndim = 4


class FoldedConv3d(_Folded, torch.nn.Conv3d):
    """A ``torch.nn.Conv3d`` with a batch norm folded in; accepts batched (N, C, D, H, W) input only."""

    input_ndim = 5


# exact layer type -> the folded type (a folded layer can take a second batch norm)
_FOLDED: dict[type, type] = {
    torch.nn.Linear: FoldedLinear,
    torch.nn.Conv1d: FoldedConv1d,
    torch.nn.Conv2d: FoldedConv2d,
    torch.nn.Conv3d: FoldedConv3d,
}
_FOLDED.update({folded: folded for folded in list(_FOLDED.values())})


def _out_channels(layer: torch.nn.Module) -> int:
    return layer.out_features if isinstance(layer, torch.nn.Linear) else layer.out_channels


def _running_stats(bn: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Check that ``bn`` looks like an eval-mode batch norm with running statistics; return them.

    In eval mode a batch norm uses its running statistics whenever it has the buffers, even if
    ``track_running_stats`` was switched off after training (PyTorch's rule), so only missing
    buffers make the fold impossible. A frozen batch norm has no training mode: always accepted.
    """
    missing = [a for a in ("running_mean", "running_var", "eps", "weight", "bias", "training") if not hasattr(bn, a)]
    if missing:
        raise TypeError(
            f"bn must be a batch norm layer (with running_mean, running_var, eps, weight, bias, training), "
            f"got {type(bn).__name__} without {', '.join(missing)}"
        )
    if bn.training and not isinstance(bn, _FrozenBatchNorm):
        raise ValueError("bn is in training mode: fold only an eval-mode batch norm: call bn.eval() first")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "bn has no running statistics (track_running_stats=False): in eval mode it still normalizes "
            "with batch statistics, which no fixed layer can reproduce"
        )
    return torch.as_tensor(bn.running_mean), torch.as_tensor(bn.running_var)


def _check_bn_accepts(layer: torch.nn.Module, bn: object) -> None:
    """Refuse a pair whose batch norm cannot normalize the layer's output at dim 1.

    The layer's output is ``input_ndim``-D in the only case the fold is exact (see :class:`_Folded`);
    a batch norm with ``_check_input_dim`` (torch's, companion's, frozen) is asked whether it takes
    that. A duck-typed batch norm without the method is assumed to.
    """
    ndim = _FOLDED[type(layer)].input_ndim
    check = getattr(bn, "_check_input_dim", None)
    if check is None:
        return
    try:
        check(torch.empty((1,) * ndim))
    except (ValueError, NotImplementedError):
        raise ValueError(
            f"bn ({type(bn).__name__}) does not normalize the {ndim}-D output of a {type(layer).__name__} "
            f"at dim 1: this pair cannot be folded exactly"
        ) from None


def fold_batchnorm(layer: torch.nn.Module, bn: torch.nn.Module) -> torch.nn.Module:
    """Return a new layer equal to ``bn(layer(x))`` with ``bn`` in eval mode.

    Parameters
    ----------
    layer : torch.nn.Linear or torch.nn.Conv1d / Conv2d / Conv3d (exactly these types)
        With or without bias, any ``groups``, stride, padding or dilation (the copy keeps them).
    bn : batch norm in eval mode, or a frozen batch norm (``companion.frozen``, in any mode)
        ``torch.nn.BatchNorm1d/2d/3d``, ``companion.nn``'s batch norms, or any module with the same
        attributes (``running_mean``, ``running_var``, ``eps``, ``weight``, ``bias``, ``training``).
        ``affine=False`` (weight and bias None) counts as γ = 1, β = 0. A layer whose
        ``track_running_stats`` was switched off after training but still holds the buffers is
        folded: in eval mode it normalizes with them.

    Returns
    -------
    FoldedLinear, FoldedConv1d, FoldedConv2d or FoldedConv3d
        A deep copy of ``layer`` (an instance of its type) with weight W' and bias b' (the bias is
        added if ``layer`` had none), in the layer's dtype and device, with the ``requires_grad``
        flag of ``layer.weight``. It refuses inputs on which the fold is not exact: a
        ``FoldedLinear`` takes 2-D (N, features) input only, a folded convolution batched input only
        (see :class:`_Folded`). ``layer`` and ``bn`` are not modified. The arithmetic is done in float64.

    Raises
    ------
    TypeError
        ``layer`` is not one of the supported types, or ``bn`` lacks batch norm's attributes.
    ValueError
        ``bn`` is in training mode, has no running statistics, does not normalize the layer's
        output at dim 1 (e.g. ``Linear`` then ``BatchNorm2d``), or its channel count differs from
        the layer's output channels.
    """
    if type(layer) not in _FOLDED:
        raise TypeError(
            f"layer must be a torch.nn.Linear, Conv1d, Conv2d or Conv3d (not a subclass, whose forward "
            f"may differ), got {type(layer).__name__}"
        )
    running_mean, running_var = _running_stats(bn)
    _check_bn_accepts(layer, bn)
    channels = _out_channels(layer)
    if running_mean.numel() != channels:
        raise ValueError(
            f"bn has {running_mean.numel()} channels but layer has {channels} output channels: "
            "they must match"
        )

    def float64(value: object, default: float) -> torch.Tensor:
        if value is None:
            return torch.full((channels,), default, dtype=torch.float64)
        return torch.as_tensor(value).detach().to(device="cpu", dtype=torch.float64)

    weight = float64(layer.weight, 0.0)
    bias = float64(layer.bias, 0.0)
    gamma, beta = float64(bn.weight, 1.0), float64(bn.bias, 0.0)
    mean, var = float64(running_mean, 0.0), float64(running_var, 1.0)
    scale = gamma / torch.sqrt(var + bn.eps)  # γ/σ, one per output channel
    folded_weight = weight * scale.reshape((-1,) + (1,) * (weight.dim() - 1))  # scale row / filter c
    folded_bias = (bias - mean) * scale + beta

    fused = copy.deepcopy(layer)
    fused.__class__ = _FOLDED[type(layer)]  # same state; refuses inputs where the fold is not exact
    like = {"dtype": layer.weight.dtype, "device": layer.weight.device}
    requires_grad = layer.weight.requires_grad
    fused.weight = torch.nn.Parameter(folded_weight.to(**like), requires_grad)
    fused.bias = torch.nn.Parameter(folded_bias.to(**like), requires_grad)
    return fused


def fold_sequential(model: torch.nn.Sequential) -> torch.nn.Sequential:
    """Return a copy of ``model`` with every (layer, batch norm) pair folded into one layer.

    A pair is a foldable layer (see :func:`fold_batchnorm`) directly followed by a module with
    running statistics; nested ``Sequential`` containers are folded too. Every other module is
    deep-copied unchanged, so the result computes the same function in eval mode. ``model`` is
    not modified.

    Raises
    ------
    TypeError
        ``model`` is not a ``torch.nn.Sequential``.
    ValueError
        As :func:`fold_batchnorm`, e.g. a batch norm still in training mode, or a pair that cannot
        be folded exactly. The folded model refuses inputs on which it would differ from ``model``
        (a ``Linear`` + ``BatchNorm1d`` pair folds for 2-D input only).
    """
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential, got {type(model).__name__}")
    modules = list(model)
    folded: list[torch.nn.Module] = []
    i = 0
    while i < len(modules):
        module = modules[i]
        following = modules[i + 1] if i + 1 < len(modules) else None
        if type(module) in _FOLDED and getattr(following, "running_mean", None) is not None:
            folded.append(fold_batchnorm(module, following))
            i += 2
            continue
        folded.append(fold_sequential(module) if isinstance(module, torch.nn.Sequential) else copy.deepcopy(module))
        i += 1
    return torch.nn.Sequential(*folded)
