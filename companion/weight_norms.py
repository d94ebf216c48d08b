r"""Normalizing the weights instead of the activations: weight normalization, spectral
normalization, weight standardization and its scaled variant.

Each of the four is a *reparameterization*: the layer keeps a free tensor and computes its
weight from it on every forward pass, so the gradient flows through the normalization.

Weight normalization (Salimans & Kingma, 2016), per output unit :math:`i`:

.. math:: w_i = g_i \, \frac{v_i}{\lVert v_i \rVert}.

Spectral normalization (Miyato et al., 2018): :math:`W / \sigma(W)`, with the largest singular
value :math:`\sigma` estimated by power iteration on two persistent vectors, one step per
training forward pass:

.. math:: u \leftarrow \frac{W v}{\max(\lVert W v\rVert, \epsilon)}, \quad
          v \leftarrow \frac{W^\top u}{\max(\lVert W^\top u\rVert, \epsilon)}, \quad
          \sigma \approx u^\top W v.

Weight standardization (Qiao et al., 2019), per output unit over its fan-in of :math:`n`
entries, with the *unbiased* standard deviation :math:`s_i` as in the authors' code:

.. math:: \hat w_{ij} = \frac{w_{ij} - \bar w_i}{s_i + \epsilon}.

Scaled weight standardization (Brock, De & Smith, 2021; used by NFNets), with the biased
variance :math:`\sigma_i^2`, a learnable gain :math:`g_i` and a gain :math:`\gamma` of the
non-linearity that follows the layer's input (:func:`relu_gain`):

.. math:: \hat w_{ij} = \gamma\, g_i \, \frac{w_{ij} - \bar w_i}{\sqrt{\max(n\, \sigma_i^2, \epsilon)}}.

:func:`weight_norm` and :func:`spectral_norm` register the first two as parametrizations
(``torch.nn.utils.parametrize``) under the same names as PyTorch's own
``torch.nn.utils.parametrizations.weight_norm`` / ``spectral_norm``, so that state dicts,
buffers and gradients can be compared one to one (``tests/test_weight_norms.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from companion import _checks


def norm_except_dim(v: torch.Tensor, dim: int | None) -> torch.Tensor:
    """The 2-norm of ``v`` over every dimension but ``dim``, kept broadcastable against ``v``.

    ``dim=None`` gives the norm of the whole tensor (a 0-d tensor).
    """
    _checks.float_tensor("v", v)
    if dim is None:
        return v.norm()
    dims = [d for d in range(v.ndim) if d != dim % v.ndim]
    return v.pow(2).sum(dim=dims, keepdim=True).sqrt()


class WeightNorm(nn.Module):
    r"""The parametrization :math:`(g, v) \mapsto g\, v / \lVert v\rVert` (norm over all
    dimensions but ``dim``; ``dim=None``: one norm for the whole tensor)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            raise TypeError(f"dim must be an int or None, got {dim!r}")
        self.dim = dim

    def forward(self, weight_g: torch.Tensor, weight_v: torch.Tensor) -> torch.Tensor:
        return weight_g * weight_v / norm_except_dim(weight_v, self.dim)

    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split a weight into its magnitude ``g`` and its direction ``v = weight``."""
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module: nn.Module, name: str = "weight", dim: int | None = 0) -> nn.Module:
    """Reparameterize ``module.<name>`` as ``g * v / ||v||``, in place; returns ``module``.

    ``g`` and ``v`` are ``module.parametrizations.<name>.original0`` and ``original1``, as with
    ``torch.nn.utils.parametrizations.weight_norm``.
    """
    _check_param(module, name)
    if dim is not None and not -getattr(module, name).ndim <= dim < getattr(module, name).ndim:
        raise ValueError(f"dim must index a dimension of {name} (ndim {getattr(module, name).ndim}), got {dim}")
    parametrize.register_parametrization(module, name, WeightNorm(dim), unsafe=True)
    return module


def _unit(x: torch.Tensor, eps: float, out: torch.Tensor) -> torch.Tensor:
    """``x / max(||x||, eps)`` written into ``out`` (what ``F.normalize`` computes)."""
    return torch.div(x, x.norm().clamp_min(eps), out=out)


class SpectralNorm(nn.Module):
    r"""The parametrization :math:`W \mapsto W / \sigma(W)` with power iteration on buffers
    ``_u`` (length: size of ``dim``) and ``_v`` (the product of the other sizes).

    Parameters
    ----------
    weight : Tensor
        The weight it will normalize (its shape and dtype size the buffers).
    n_power_iterations : int
        Power-iteration steps per forward pass in training mode (eval mode uses the stored
        vectors unchanged).
    dim : int
        The output dimension; the weight is seen as a matrix of shape (size of ``dim``, rest).
    eps : float
        Floor of the norms in the normalizations.

    The buffers are drawn from the global torch generator, ``u`` first, then ``v``, each
    normalized and followed by 15 power iterations, in the order PyTorch uses; seeded the
    same way, both implementations hold the same vectors.
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        _checks.float_tensor("weight", weight)
        self.n_power_iterations = _checks.positive_int("n_power_iterations", n_power_iterations)
        self.eps = _checks.positive_float("eps", eps)
        if weight.ndim < 2:
            raise ValueError(f"weight must have at least 2 dimensions, got shape {tuple(weight.shape)}")
        if not -weight.ndim <= dim < weight.ndim:
            raise ValueError(f"dim must index a dimension of weight (ndim {weight.ndim}), got {dim}")
        self.dim = dim % weight.ndim
        mat = self.as_matrix(weight)
        h, w = mat.shape
        u = mat.new_empty(h).normal_(0, 1)
        v = mat.new_empty(w).normal_(0, 1)
        self.register_buffer("_u", u / u.norm().clamp_min(self.eps))
        self.register_buffer("_v", v / v.norm().clamp_min(self.eps))
        self.power_iteration(mat, 15)

    def as_matrix(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight as a matrix: ``dim`` first, the other dimensions flattened."""
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.flatten(1)

    @torch.no_grad()
    def power_iteration(self, mat: torch.Tensor, steps: int) -> None:
        """``steps`` updates of ``_u`` and ``_v``, in place (so that copies sharing the buffers
        see them)."""
        for _ in range(steps):
            _unit(mat @ self._v, self.eps, out=self._u)
            _unit(mat.T @ self._u, self.eps, out=self._v)

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        r"""The current estimate :math:`u^\top W v` of the largest singular value (differentiable
        in ``weight``; ``u`` and ``v`` are constants)."""
        return torch.dot(self._u.clone(), self.as_matrix(weight) @ self._v.clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.power_iteration(self.as_matrix(weight.detach()), self.n_power_iterations)
        return weight / self.sigma(weight)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value


def spectral_norm(module: nn.Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> nn.Module:
    """Reparameterize ``module.<name>`` as ``W / sigma(W)``, in place; returns ``module``.

    ``dim`` defaults to 1 for transposed convolutions (their output channels) and 0 otherwise,
    as in ``torch.nn.utils.parametrizations.spectral_norm``.
    """
    weight = _check_param(module, name)
    if dim is None:
        transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
        dim = 1 if isinstance(module, transposed) else 0
    parametrize.register_parametrization(module, name, SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


def _check_param(module: nn.Module, name: str) -> torch.Tensor:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    weight = getattr(module, name, None)
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"module has no tensor named {name!r}")
    return weight


def relu_gain() -> float:
    r"""The gain :math:`\gamma = \sqrt{2 / (1 - 1/\pi)} \approx 1.713` that restores unit variance
    after a ReLU of a standard normal input: :math:`\operatorname{Var}(\mathrm{relu}(z)) =
    \tfrac12 (1 - \tfrac1\pi)` for :math:`z \sim \mathcal N(0, 1)`."""
    return math.sqrt(2.0 / (1.0 - 1.0 / math.pi))


def standardize_weight(weight: torch.Tensor, eps: float = 1e-5, scaled: bool = False,
                       gain: torch.Tensor | None = None, gamma: float = 1.0,
                       unit_dim: int = 0) -> torch.Tensor:
    """Weight standardization of ``weight`` per output unit (module docstring).

    Parameters
    ----------
    weight : Tensor
        Shape (out, in) or (out, in, *kernel); with ``unit_dim=1``, a leading dimension of
        side-by-side copies: (copies, out, in, ...).
    eps : float
        ``scaled=False``: added to the unbiased standard deviation (Qiao et al. use 1e-5).
        ``scaled=True``: floor of ``fan_in * variance`` (NFNets use 1e-4).
    scaled : bool
        Scaled WS: divide by ``sqrt(fan_in * var)`` (biased variance), so that a unit-variance
        input gives a unit-variance output.
    gain : Tensor, optional
        Per-unit gain, shape of ``weight`` up to ``unit_dim`` inclusive (e.g. (out,)).
    gamma : float
        Constant factor (the non-linearity's gain, :func:`relu_gain`).
    unit_dim : int
        The dimension of the output units; the statistics run over all later dimensions.
    """
    _checks.float_tensor("weight", weight)
    eps = _checks.positive_float("eps", eps)
    if weight.ndim < unit_dim + 2:
        raise ValueError(f"weight must have an output dimension {unit_dim} and a fan-in after it, "
                         f"got shape {tuple(weight.shape)}")
    dims = tuple(range(unit_dim + 1, weight.ndim))
    fan_in = math.prod(weight.shape[unit_dim + 1:])
    mean = weight.mean(dim=dims, keepdim=True)
    if scaled:
        var = weight.var(dim=dims, keepdim=True, unbiased=False)
        w = (weight - mean) * torch.rsqrt((fan_in * var).clamp_min(eps))
    else:
        if fan_in < 2:
            raise ValueError("weight standardization needs a fan-in of at least 2")
        w = (weight - mean) / (weight.std(dim=dims, keepdim=True) + eps)
    if gain is not None:
        if tuple(gain.shape) != tuple(weight.shape[: unit_dim + 1]):
            raise ValueError(f"gain must have shape {tuple(weight.shape[: unit_dim + 1])}, "
                             f"got {tuple(gain.shape)}")
        w = w * gain.reshape(gain.shape + (1,) * len(dims))
    return gamma * w if gamma != 1.0 else w


class StandardizedLinear(nn.Linear):
    """``nn.Linear`` whose weight is standardized on every forward pass.

    ``scaled=True`` is scaled WS with a learnable per-unit ``gain`` (initialized to 1) and the
    constant ``gamma``; ``scaled=False`` is Qiao et al.'s WS (no gain).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, scaled: bool = False,
                 gamma: float = 1.0, eps: float | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.scaled = _checks.boolean("scaled", scaled)
        self.gamma = _checks.positive_float("gamma", gamma)
        self.eps = _checks.positive_float("eps", eps if eps is not None else (1e-4 if scaled else 1e-5))
        self.gain = nn.Parameter(torch.ones(out_features)) if scaled else None

    def standardized_weight(self) -> torch.Tensor:
        return standardize_weight(self.weight, self.eps, self.scaled, self.gain, self.gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.standardized_weight(), self.bias)


class StandardizedConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is standardized per output channel on every forward pass.

    Grouped convolutions are fine: each output channel's fan-in is its own group's
    (in/groups) x kh x kw entries. ``scaled``, ``gamma``, ``eps`` as in :class:`StandardizedLinear`.
    """

    def __init__(self, *args, scaled: bool = False, gamma: float = 1.0, eps: float | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scaled = _checks.boolean("scaled", scaled)
        self.gamma = _checks.positive_float("gamma", gamma)
        self.eps = _checks.positive_float("eps", eps if eps is not None else (1e-4 if scaled else 1e-5))
        self.gain = nn.Parameter(torch.ones(self.out_channels)) if scaled else None

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, scaled: bool = False, gamma: float = 1.0) -> StandardizedConv2d:
        """A standardized copy of ``conv`` (same configuration, a copy of its weight and bias)."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                  bias=conv.bias is not None, padding_mode=conv.padding_mode, scaled=scaled, gamma=gamma)
        with torch.no_grad():
            new.weight.copy_(conv.weight)
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        return new

    def standardized_weight(self) -> torch.Tensor:
        return standardize_weight(self.weight, self.eps, self.scaled, self.gain, self.gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.standardized_weight(), self.bias)


def standardize_convs(model: nn.Module, scaled: bool = False) -> nn.Module:
    """Replace every ``nn.Conv2d`` inside ``model`` by a :class:`StandardizedConv2d` copy, in
    place; returns ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, child in model.named_children():
        if type(child) is nn.Conv2d:
            setattr(model, name, StandardizedConv2d.from_conv(child, scaled=scaled))
        else:
            standardize_convs(child, scaled)
    return model
