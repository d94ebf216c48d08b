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

__all__ = ["fold_batchnorm", "fold_sequential"]

_FOLDABLE = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def _out_channels(layer: torch.nn.Module) -> int:
    return layer.out_features if isinstance(layer, torch.nn.Linear) else layer.out_channels


def _running_stats(bn: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Check that ``bn`` looks like an eval-mode batch norm with running statistics; return them."""
    missing = [a for a in ("running_mean", "running_var", "eps", "weight", "bias", "training") if not hasattr(bn, a)]
    if missing:
        raise TypeError(
            f"bn must be a batch norm layer (with running_mean, running_var, eps, weight, bias, training), "
            f"got {type(bn).__name__} without {', '.join(missing)}"
        )
    if bn.training:
        raise ValueError("bn is in training mode: fold only an eval-mode batch norm: call bn.eval() first")
    if bn.running_mean is None or bn.running_var is None or getattr(bn, "track_running_stats", True) is False:
        raise ValueError(
            "bn has no running statistics (track_running_stats=False): in eval mode it still normalizes "
            "with batch statistics, which no fixed layer can reproduce"
        )
    return torch.as_tensor(bn.running_mean), torch.as_tensor(bn.running_var)


def fold_batchnorm(layer: torch.nn.Module, bn: torch.nn.Module) -> torch.nn.Module:
    """Return a new layer equal to ``bn(layer(x))`` with ``bn`` in eval mode.

    Parameters
    ----------
    layer : torch.nn.Linear or torch.nn.Conv1d / Conv2d / Conv3d
        With or without bias, any ``groups``, stride, padding or dilation (the copy keeps them).
    bn : batch norm in eval mode
        ``torch.nn.BatchNorm1d/2d/3d`` or any module with the same attributes (``running_mean``,
        ``running_var``, ``eps``, ``weight``, ``bias``, ``training``), e.g. ``companion.nn``'s.
        ``affine=False`` (weight and bias None) counts as γ = 1, β = 0.

    Returns
    -------
    torch.nn.Module
        A deep copy of ``layer`` with weight W' and bias b' (the bias is added if ``layer`` had
        none), in the layer's dtype and device, with the ``requires_grad`` flag of ``layer.weight``.
        ``layer`` and ``bn`` are not modified. The arithmetic is done in float64.

    Raises
    ------
    TypeError
        ``layer`` is not one of the supported types, or ``bn`` lacks batch norm's attributes.
    ValueError
        ``bn`` is in training mode, has no running statistics, or its channel count differs from
        the layer's output channels.
    """
    if not isinstance(layer, _FOLDABLE):
        raise TypeError(
            f"layer must be a torch.nn.Linear, Conv1d, Conv2d or Conv3d, got {type(layer).__name__}"
        )
    running_mean, running_var = _running_stats(bn)
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
        As :func:`fold_batchnorm`, e.g. a batch norm still in training mode.
    """
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential, got {type(model).__name__}")
    modules = list(model)
    folded: list[torch.nn.Module] = []
    i = 0
    while i < len(modules):
        module = modules[i]
        following = modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(module, _FOLDABLE) and getattr(following, "running_mean", None) is not None:
            folded.append(fold_batchnorm(module, following))
            i += 2
            continue
        folded.append(fold_sequential(module) if isinstance(module, torch.nn.Sequential) else copy.deepcopy(module))
        i += 1
    return torch.nn.Sequential(*folded)
