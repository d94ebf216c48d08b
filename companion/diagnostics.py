"""Training diagnostics: what the signal and its gradient look like inside a network.

Three measurements, each on plain numbers a learner can print or plot:

* :class:`Recorder` — forward hooks on chosen modules record, at every forward pass, summary
  statistics of each module's **output** (mean, standard deviation, percentiles, and the fraction
  of saturated units); a hook on that output records the same statistics of the **gradient of the
  loss with respect to it** when ``backward()`` runs. Attach it with ``with Recorder(...) as rec:``;
  the hooks are removed on exit.
* :func:`weight_grad_norms` — after ``backward()``, the norm of each layer's weight gradient.
* :class:`UpdateRatios` — the update-to-data ratio
  :math:`\\lVert\\theta_{t+1} - \\theta_t\\rVert / \\lVert\\theta_t\\rVert` of each parameter at
  every optimizer step; for plain SGD that is :math:`\\eta\\lVert g_t\\rVert / \\lVert\\theta_t\\rVert`.

Saturation
----------
A tanh unit with output :math:`a` has local derivative :math:`1 - a^2`; a sigmoid unit
:math:`a(1-a)`, at most 1/4. Since :math:`\\tanh(x) = 2\\sigma(2x) - 1`, a sigmoid output maps to a
tanh output by :math:`2a - 1`. A unit is counted *saturated* when :math:`|a| > t` (tanh) or
:math:`|2a - 1| > t` (sigmoid), with threshold :math:`t = 0.97` by default: there its derivative is
below :math:`1 - t^2 \\approx 6\\,\\%` of its peak value, so almost no gradient passes through it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

#: Percentiles recorded by default (in percent).
DEFAULT_PERCENTILES: tuple[float, ...] = (1.0, 15.0, 50.0, 85.0, 99.0)

_SATURATION_KINDS = ("tanh", "sigmoid")


def _check_threshold(threshold: object) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a float in (0, 1), got {threshold!r}")
    return float(threshold)


def _check_percentiles(percentiles: object) -> tuple[float, ...]:
    if isinstance(percentiles, (str, bytes)) or not isinstance(percentiles, Sequence) or len(percentiles) == 0:
        raise ValueError(f"percentiles must be a non-empty sequence of numbers in [0, 100], got {percentiles!r}")
    values = []
    for q in percentiles:
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.0 <= q <= 100.0:
            raise ValueError(f"percentiles must be numbers in [0, 100], got {q!r}")
        values.append(float(q))
    return tuple(values)


def _as_tensor(name: str, x: object) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        # from_numpy refuses negative strides (a reversed view) and non-native byte order
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("=")))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must hold floating-point values, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    return x


def saturation_fraction(a: torch.Tensor | np.ndarray, kind: str = "tanh", threshold: float = 0.97) -> float:
    """Fraction of entries of an activation that sit in the flat tails of a squashing function.

    Parameters
    ----------
    a : Tensor or ndarray, any shape
        Outputs of a tanh (values in [-1, 1]) or sigmoid (values in [0, 1]) layer.
    kind : {"tanh", "sigmoid"}
        Which function produced ``a``. A sigmoid output is mapped to the tanh scale by ``2a - 1``.
    threshold : float in (0, 1)
        A tanh output is saturated when ``|a| > threshold``; its derivative ``1 - a**2`` is then
        below ``1 - threshold**2`` of its peak (6 % for the default 0.97).

    Returns
    -------
    float
        The saturated fraction, in [0, 1].
    """
    if kind not in _SATURATION_KINDS:
        raise ValueError(f"kind must be 'tanh' or 'sigmoid', got {kind!r}")
    t = _check_threshold(threshold)
    x = _as_tensor("a", a).detach()
    if kind == "sigmoid":
        x = 2.0 * x - 1.0
    return (x.abs() > t).double().mean().item()


def tensor_stats(
    x: torch.Tensor | np.ndarray,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    saturation: str | None = None,
    threshold: float = 0.97,
) -> dict[str, float | np.ndarray]:
    """Summary statistics of all entries of a tensor, as plain Python/numpy numbers.

    Parameters
    ----------
    x : Tensor or ndarray, any shape
        The values, pooled over every axis (batch and features together).
    percentiles : sequence of float in [0, 100]
        Percentiles to report (linear interpolation, as ``numpy.percentile``).
    saturation : {"tanh", "sigmoid"}, optional
        Also report the saturated fraction (:func:`saturation_fraction`).
    threshold : float
        Saturation threshold.

    Returns
    -------
    dict
        ``mean``, ``std`` (population, ``ddof=0``), ``rms`` (:math:`\\sqrt{\\mathrm{mean}(x^2)}`),
        ``norm`` (Frobenius, :math:`\\lVert x\\rVert_2` over all entries), ``percentiles``
        (ndarray, shape (P,)), and ``saturation`` when asked for.
    """
    qs = _check_percentiles(percentiles)
    values = _as_tensor("x", x).detach().double().reshape(-1).cpu().numpy()
    stats: dict[str, float | np.ndarray] = {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "rms": float(np.sqrt(np.mean(values**2))),
        "norm": float(np.linalg.norm(values)),
        "percentiles": np.percentile(values, qs),
    }
    if saturation is not None:
        stats["saturation"] = saturation_fraction(values, kind=saturation, threshold=threshold)
    return stats


def _numpy_copy(x: torch.Tensor) -> np.ndarray:
    """A flat numpy copy of ``x``; bfloat16 (which numpy lacks) becomes float32, exactly."""
    x = x.detach().reshape(-1).cpu()
    if x.dtype == torch.bfloat16:
        x = x.float()
    return x.numpy().copy()


def _stack(records: list[dict[str, float | np.ndarray]]) -> dict[str, np.ndarray]:
    """Turn a list of per-call stat dicts into one dict of arrays, first axis = call."""
    if not records:
        return {}
    return {key: np.array([r[key] for r in records]) for key in records[0]}


def _check_modules(modules: object) -> dict[str, nn.Module]:
    if isinstance(modules, nn.Module):
        raise TypeError("modules must be a dict {name: module} or a list of modules, not a single module; "
                        "use layers_of_type(model, ...) to pick layers by type")
    if isinstance(modules, Mapping):
        named = dict(modules)
    elif isinstance(modules, Sequence) and not isinstance(modules, (str, bytes)):
        named = {str(i): m for i, m in enumerate(modules)}
    else:
        raise TypeError(f"modules must be a dict {{name: module}} or a list of modules, got {type(modules).__name__}")
    if not named:
        raise ValueError("modules must name at least one module")
    for name, module in named.items():
        if not isinstance(module, nn.Module):
            raise TypeError(f"modules[{name!r}] must be an nn.Module, got {type(module).__name__}")
    return named


def layers_of_type(model: nn.Module, *types: type[nn.Module]) -> dict[str, nn.Module]:
    """The submodules of ``model`` that are instances of ``types``, in order, named ``"Type k"``.

    Example: ``layers_of_type(model, nn.Tanh)`` gives ``{"Tanh 1": ..., "Tanh 2": ...}``, ready to
    pass to :class:`Recorder`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
        raise TypeError(f"types must be one or more nn.Module classes, got {types!r}")
    found: dict[str, nn.Module] = {}
    counts: dict[str, int] = {}
    for module in model.modules():
        if module is not model and isinstance(module, types):
            kind = type(module).__name__
            counts[kind] = counts.get(kind, 0) + 1
            found[f"{kind} {counts[kind]}"] = module
    if not found:
        names = ", ".join(t.__name__ for t in types)
        raise ValueError(f"model has no submodule of type {names}")
    return found


class Recorder:
    """Record statistics of chosen modules' outputs and of the gradients flowing back into them.

    Each forward pass through a watched module appends the :func:`tensor_stats` of its output to
    :attr:`activations`; when ``backward()`` later reaches that output, the stats of
    :math:`\\partial L/\\partial\\,\\text{output}` are appended to :attr:`gradients`.

    Parameters
    ----------
    modules : dict {name: nn.Module} or list of nn.Module
        The modules to watch (a list is named ``"0"``, ``"1"``, ...). See :func:`layers_of_type`.
    percentiles : sequence of float
        Percentiles (in percent) recorded for activations and gradients.
    saturation : {"tanh", "sigmoid"}, optional
        Record the saturated fraction of each activation (:func:`saturation_fraction`).
    threshold : float
        Saturation threshold, 0.97 by default.
    train_only : bool
        Record only forward passes made in training mode, so that evaluation passes in between
        (``model.eval()``) do not mix in.
    keep_values : bool
        Keep a numpy copy of the **last** recorded output (and output gradient) of each module in
        :attr:`values` (and :attr:`grad_values`), e.g. for histograms.

    Attributes
    ----------
    activations : dict {name: dict {stat: ndarray}}
        ``activations[name]["std"]`` has shape (T,), one entry per recorded forward pass;
        ``["percentiles"]`` has shape (T, P).
    gradients : dict {name: dict {stat: ndarray}}
        Same layout for the output gradients, one entry per backward pass.
    values, grad_values : dict {name: ndarray}
        Last output / output gradient, flattened, when ``keep_values``; in the tensor's dtype,
        except bfloat16, which numpy lacks: stored as float32 (exactly).

    Examples
    --------
    >>> rec = Recorder(layers_of_type(model, nn.Tanh), saturation="tanh", keep_values=True)
    >>> with rec:
    ...     loss_fn(model(x), y).backward()
    >>> rec.activations["Tanh 3"]["std"]        # one value per forward pass
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module] | Sequence[nn.Module],
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        saturation: str | None = None,
        threshold: float = 0.97,
        train_only: bool = True,
        keep_values: bool = False,
    ) -> None:
        self.modules = _check_modules(modules)
        self.percentiles = _check_percentiles(percentiles)
        if saturation is not None and saturation not in _SATURATION_KINDS:
            raise ValueError(f"saturation must be None, 'tanh' or 'sigmoid', got {saturation!r}")
        self.saturation = saturation
        self.threshold = _check_threshold(threshold)
        self.train_only = bool(train_only)
        self.keep_values = bool(keep_values)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self.clear()

    # -- recording -------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget everything recorded so far (the hooks stay attached)."""
        self._forward: dict[str, list] = {name: [] for name in self.modules}
        self._backward: dict[str, list] = {name: [] for name in self.modules}
        self.values: dict[str, np.ndarray] = {}
        self.grad_values: dict[str, np.ndarray] = {}

    def _make_hook(self, name: str):
        def forward_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if self.train_only and not module.training:
                return
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"Recorder: module {name!r} returned {type(output).__name__}, not a tensor")
            self._forward[name].append(tensor_stats(output, self.percentiles, self.saturation, self.threshold))
            if self.keep_values:
                self.values[name] = _numpy_copy(output)
            if output.requires_grad:
                output.register_hook(lambda grad: self._record_grad(name, grad))

        return forward_hook

    def _record_grad(self, name: str, grad: torch.Tensor) -> None:
        self._backward[name].append(tensor_stats(grad, self.percentiles))
        if self.keep_values:
            self.grad_values[name] = _numpy_copy(grad)

    def attach(self) -> Recorder:
        """Register the hooks (done by ``with``). Attaching twice raises."""
        if self._handles:
            raise RuntimeError("Recorder is already attached")
        self._handles = [m.register_forward_hook(self._make_hook(n)) for n, m in self.modules.items()]
        return self

    def detach(self) -> None:
        """Remove the hooks; what was recorded stays available."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> Recorder:
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    # -- results ---------------------------------------------------------------------------------
    @property
    def activations(self) -> dict[str, dict[str, np.ndarray]]:
        return {name: _stack(records) for name, records in self._forward.items()}

    @property
    def gradients(self) -> dict[str, dict[str, np.ndarray]]:
        return {name: _stack(records) for name, records in self._backward.items()}

    def last(self, stat: str, which: str = "activations") -> np.ndarray:
        """The last recorded value of one statistic for every module, shape (n_modules,) (or (n_modules, P)).

        Parameters
        ----------
        stat : str
            ``"mean"``, ``"std"``, ``"rms"``, ``"norm"``, ``"percentiles"`` or ``"saturation"``.
        which : {"activations", "gradients"}
        """
        if which not in ("activations", "gradients"):
            raise ValueError(f"which must be 'activations' or 'gradients', got {which!r}")
        records = self._forward if which == "activations" else self._backward
        empty = [name for name, recs in records.items() if not recs]
        if empty:
            raise RuntimeError(f"nothing recorded yet for {empty[0]!r}: run a forward (and backward) pass "
                               "with the recorder attached")
        available = records[next(iter(records))][-1].keys()
        if stat not in available:
            raise ValueError(f"stat must be one of {sorted(available)}, got {stat!r}")
        return np.array([recs[-1][stat] for recs in records.values()])


def weight_grad_norms(modules: Mapping[str, nn.Module] | Sequence[nn.Module]) -> dict[str, float]:
    """Frobenius norm :math:`\\lVert \\partial L/\\partial W\\rVert` of each module's ``weight.grad``.

    Call after ``loss.backward()``.

    Parameters
    ----------
    modules : dict {name: nn.Module} or list of nn.Module
        Modules with a ``weight`` parameter (Linear, Conv, norm layers...).

    Returns
    -------
    dict {name: float}
    """
    named = _check_modules(modules)
    norms: dict[str, float] = {}
    for name, module in named.items():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ValueError(f"modules[{name!r}] ({type(module).__name__}) has no weight parameter")
        if weight.grad is None:
            raise RuntimeError(f"modules[{name!r}].weight has no gradient: call loss.backward() first")
        norms[name] = weight.grad.detach().double().norm().item()
    return norms


def update_ratio(param: torch.Tensor, update: torch.Tensor) -> float:
    """The update-to-data ratio :math:`\\lVert \\Delta\\theta\\rVert / \\lVert\\theta\\rVert`.

    For plain SGD the update is :math:`\\Delta\\theta = -\\eta\\, g`, so pass ``lr * param.grad``.
    A rule of thumb (Karpathy) is that values around :math:`10^{-3}` per step are healthy; much
    smaller means the layer barely learns, much larger that it is being rewritten every step.

    Parameters
    ----------
    param : Tensor, any shape
        The parameter :math:`\\theta` before the update.
    update : Tensor, same shape
        The update :math:`\\Delta\\theta` (its sign does not matter).
    """
    p = _as_tensor("param", param).detach().double()
    u = _as_tensor("update", update).detach().double()
    if p.shape != u.shape:
        raise ValueError(f"update must have the shape of param {tuple(p.shape)}, got {tuple(u.shape)}")
    norm = p.norm().item()
    if norm == 0.0:
        raise ValueError("param is all zeros: the update-to-data ratio is undefined")
    return u.norm().item() / norm


class UpdateRatios:
    """Track :func:`update_ratio` of chosen parameters across optimizer steps.

    The tracker keeps a copy of each parameter; every call compares the current values with that
    copy, appends :math:`\\lVert\\theta_{t+1} - \\theta_t\\rVert / \\lVert\\theta_t\\rVert` and takes a new
    copy. It therefore measures the update the optimizer actually made (momentum, Adam and weight
    decay included). Its call signature fits ``companion.training.train(..., on_step=tracker)``.

    Parameters
    ----------
    params : dict {name: Tensor}
        Parameters to track, e.g. ``{name: m.weight for name, m in layers.items()}``.

    Attributes
    ----------
    ratios : dict {name: ndarray, shape (T,)}
        One ratio per call (step).

    Examples
    --------
    >>> tracker = UpdateRatios({"fc1": model[0].weight})
    >>> history = train(model, data, steps=100, on_step=tracker)
    >>> tracker.ratios["fc1"].shape
    (100,)
    """

    def __init__(self, params: Mapping[str, torch.Tensor]) -> None:
        if not isinstance(params, Mapping) or not params:
            raise TypeError("params must be a non-empty dict {name: parameter tensor}")
        for name, p in params.items():
            _as_tensor(f"params[{name!r}]", p)
        self.params = dict(params)
        self._previous = {name: p.detach().clone() for name, p in self.params.items()}
        self._ratios: dict[str, list[float]] = {name: [] for name in self.params}

    def __call__(self, step: int | None = None, model: nn.Module | None = None) -> None:
        """Record the update made since the previous call (``step`` and ``model`` are ignored)."""
        for name, p in self.params.items():
            current = p.detach()
            self._ratios[name].append(update_ratio(self._previous[name], current - self._previous[name]))
            self._previous[name] = current.clone()

    @property
    def ratios(self) -> dict[str, np.ndarray]:
        return {name: np.array(values) for name, values in self._ratios.items()}
