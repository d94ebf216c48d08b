r"""Adaptive gradient clipping (AGC), unit-wise, as in NFNets (Brock et al., 2021).

For every output unit :math:`i` of a weight (a row of a linear layer's (out, in) weight, an
output channel of a convolution's (out, in, kh, kw) kernel; a bias or gain vector counts as one
unit), with gradient :math:`G_i` and weight :math:`W_i`:

.. math::
    G_i \leftarrow \begin{cases}
        \lambda \dfrac{\max(\lVert W_i\rVert, \epsilon)}{\lVert G_i\rVert}\, G_i
            & \text{if } \dfrac{\lVert G_i\rVert}{\max(\lVert W_i\rVert, \epsilon)} > \lambda, \\[1ex]
        G_i & \text{otherwise,}
    \end{cases}

so that no unit's gradient is larger than a fraction :math:`\lambda` (``clipping``) of that
unit's weight. :math:`\epsilon` (``eps``, 1e-3) keeps zero-initialized weights from freezing.
This follows the authors' JAX code (``nfnets/agc_optax.py``) and timm's
``timm/utils/agc.py``, in PyTorch's (out, in, ...) layout.

Tensors may carry ``batch_dims`` leading dimensions of side-by-side copies (shape
(copies, out, in) for ``companion.residual``'s networks); the units are then counted per copy.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from companion import _checks


def unitwise_norm(x: torch.Tensor, batch_dims: int = 0) -> torch.Tensor:
    """The 2-norm of each output unit of ``x``, broadcastable against ``x``.

    A tensor with at most one dimension after the ``batch_dims`` is one unit (a scalar per copy
    included); otherwise the first dimension after them indexes the units and the norm runs
    over the rest.
    """
    _checks.float_tensor("x", x)
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int) or not 0 <= batch_dims <= x.ndim:
        raise ValueError(f"batch_dims must be an int in [0, {x.ndim}], got {batch_dims!r}")
    start = batch_dims if x.ndim - batch_dims <= 1 else batch_dims + 1
    dims = tuple(range(start, x.ndim))
    if not dims:  # one number per unit (a scalar per copy)
        return x.abs()
    return x.pow(2).sum(dim=dims, keepdim=True).sqrt()


def clip_unitwise(grad: torch.Tensor, weight: torch.Tensor, clipping: float = 0.01, eps: float = 1e-3,
                  batch_dims: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped gradient and the boolean mask of the units that were clipped.

    Parameters
    ----------
    grad, weight : Tensor
        A parameter's gradient and value, the same shape.
    clipping : float
        :math:`\\lambda`, the largest allowed ratio ``||G_i|| / max(||W_i||, eps)``.
    eps : float
        Floor of the weight norm.
    batch_dims : int
        Leading dimensions of side-by-side copies (:func:`unitwise_norm`).

    Returns
    -------
    clipped : Tensor, shape of ``grad``
    was_clipped : Tensor of bool, the shape of :func:`unitwise_norm` 's result
    """
    _checks.float_tensor("grad", grad)
    _checks.float_tensor("weight", weight)
    if grad.shape != weight.shape:
        raise ValueError(f"grad and weight must have the same shape, got {tuple(grad.shape)} "
                         f"and {tuple(weight.shape)}")
    clipping = _checks.positive_float("clipping", clipping)
    eps = _checks.positive_float("eps", eps)
    max_norm = unitwise_norm(weight, batch_dims).clamp_min(eps) * clipping
    grad_norm = unitwise_norm(grad, batch_dims)
    was_clipped = grad_norm > max_norm
    clipped = torch.where(was_clipped, grad * (max_norm / grad_norm.clamp_min(1e-6)), grad)
    return clipped, was_clipped


@torch.no_grad()
def adaptive_clip_grad_(parameters: Iterable[torch.nn.Parameter], clipping: float = 0.01,
                        eps: float = 1e-3, batch_dims: int = 0) -> torch.Tensor:
    """Clip the ``.grad`` of every parameter in place (parameters without a gradient are
    skipped); returns the fraction of units clipped per copy, shape (copies,) when
    ``batch_dims=1``, a 0-d tensor when ``batch_dims=0``.

    Call it between ``loss.backward()`` and ``optimizer.step()``. NFNets leave the final
    classifier layer unclipped: pass the parameters without it.
    """
    if isinstance(parameters, torch.Tensor):
        raise TypeError("parameters must be an iterable of tensors (wrap a single one in a list)")
    clipped_units, units = 0, 0
    for p in parameters:
        if p.grad is None:
            continue
        new, mask = clip_unitwise(p.grad, p, clipping, eps, batch_dims)
        p.grad.copy_(new)
        flat = mask.reshape(mask.shape[:batch_dims] + (-1,)).float()
        clipped_units = clipped_units + flat.sum(dim=-1)
        units += flat.shape[-1]
    if units == 0:
        raise ValueError("no parameter has a gradient: call loss.backward() first")
    return clipped_units / units
