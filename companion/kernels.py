"""Kernels timed by `make bench` and the appendix: batch norm, the numpy backward passes, folding.

1. :func:`batchnorm_case`: ``companion.functional`` (numpy) against torch's native CPU
   ``batch_norm`` with autograd, forward and forward+backward, and a plain copy of the same array:
   the memory-bandwidth floor, since the forward pass must at least read x and write y.
2. :func:`backward_case`: the staged (readable) against the compact numpy backward pass.
3. :func:`folding_case`: a Conv2d followed by an eval-mode BatchNorm2d, against the single
   convolution ``companion.deploy.fold_batchnorm`` folds them into.

All times are medians over interleaved rounds in this one process (:mod:`companion.timing`).
"""

from __future__ import annotations

import numpy as np
import torch

from companion.timing import Timing, compare
from companion.deploy import fold_batchnorm
from companion.functional import batchnorm_backward, batchnorm_backward_compact, batchnorm_forward

#: The shapes of issue 7: a wide fully connected layer and a small convolutional feature map.
SHAPES = [(256, 1024), (32, 64, 32, 32)]
#: Small shapes for ``--quick`` (tests, the appendix): the same layouts, 64-128 KiB of float32.
QUICK_SHAPES = [(64, 256), (8, 16, 16, 16)]
FOLD_BATCHES = [1, 64]

#: Bytes each operation must move at least, in units of the array's size: a copy and a forward
#: pass read x and write y (2); forward+backward also reads x and dout and writes dx (2 + 3).
MIN_TRAFFIC = {"copy": 2, "forward": 2, "forward_backward": 5}
KIND = {
    "copy": "copy",
    "companion_forward": "forward",
    "torch_forward": "forward",
    "companion_forward_backward": "forward_backward",
    "torch_forward_backward": "forward_backward",
}


def batchnorm_inputs(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, ...]:
    """float32 x (mean 0.5, sd 2), gamma, beta of shape (C,) and an upstream gradient dout."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, shape[1]).astype(np.float32)
    beta = rng.uniform(-0.5, 0.5, shape[1]).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    return x, gamma, beta, dout


def _summary(timings: dict[str, Timing]) -> dict[str, dict[str, float | int]]:
    return {name: t.as_dict() for name, t in timings.items()}


def batchnorm_case(shape: tuple[int, ...], rounds: int, round_s: float, seed: int = 0) -> dict:
    """Part 1 for one shape: times, companion/torch ratios, bandwidth and distance to the floor.

    The candidates: ``copy`` (``x.copy()``); ``companion_forward`` (``batchnorm_forward``);
    ``companion_forward_backward`` (then ``batchnorm_backward_compact``); ``torch_forward``
    (``torch.nn.functional.batch_norm`` in training mode on inputs that require grad, so that it
    records what autograd needs, as in training); ``torch_forward_backward`` (then
    ``torch.autograd.grad`` for x, weight and bias).

    Returns
    -------
    dict
        ``shape``, ``dtype``, ``megabytes`` (of x); ``seconds`` (a :class:`Timing` dict per
        candidate); ``ratio`` (companion/torch, ``forward`` and ``forward_backward``);
        ``gb_per_s`` (the minimum bytes of :data:`MIN_TRAFFIC` over the median time);
        ``floor_multiple`` (median time over the time a copy would take to move those bytes:
        1 is the floor); ``max_abs_difference`` between companion and torch (``out``, ``dx``).
    """
    x, gamma, beta, dout = batchnorm_inputs(shape, seed)
    xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, gamma, beta))
    dout_t = torch.from_numpy(dout)

    def torch_forward() -> torch.Tensor:
        return torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True)

    def torch_forward_backward() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(torch_forward(), (xt, wt, bt), dout_t)

    def companion_forward_backward() -> tuple[np.ndarray, ...]:
        return batchnorm_backward_compact(dout, batchnorm_forward(x, gamma, beta)[1])

    timings = compare(
        {
            "copy": x.copy,
            "companion_forward": lambda: batchnorm_forward(x, gamma, beta),
            "torch_forward": torch_forward,
            "companion_forward_backward": companion_forward_backward,
            "torch_forward_backward": torch_forward_backward,
        },
        rounds=rounds,
        round_s=round_s,
    )
    median = {name: t.median for name, t in timings.items()}
    copy_bandwidth = MIN_TRAFFIC["copy"] * x.nbytes / median["copy"]
    moved = {name: MIN_TRAFFIC[kind] * x.nbytes for name, kind in KIND.items()}
    out, _ = batchnorm_forward(x, gamma, beta)
    dx = companion_forward_backward()[0]
    return {
        "shape": list(shape),
        "dtype": str(x.dtype),
        "megabytes": x.nbytes / 2**20,
        "seconds": _summary(timings),
        "ratio": {
            "forward": median["companion_forward"] / median["torch_forward"],
            "forward_backward": median["companion_forward_backward"] / median["torch_forward_backward"],
        },
        "gb_per_s": {name: moved[name] / median[name] / 1e9 for name in KIND},
        "floor_multiple": {name: median[name] * copy_bandwidth / moved[name] for name in KIND},
        "max_abs_difference": {
            "out": float(np.max(np.abs(out - torch_forward().detach().numpy()))),
            "dx": float(np.max(np.abs(dx - torch_forward_backward()[0].numpy()))),
        },
    }


def backward_case(shape: tuple[int, ...], rounds: int, round_s: float, seed: int = 0) -> dict:
    """Part 2 for one shape: the staged and the compact numpy backward pass, same cache.

    Returns
    -------
    dict
        ``shape``, ``seconds`` (``staged``, ``compact``), ``ratio`` (staged/compact) and
        ``max_abs_difference`` between their ``dx``.
    """
    x, gamma, beta, dout = batchnorm_inputs(shape, seed)
    _, cache = batchnorm_forward(x, gamma, beta)
    timings = compare(
        {"staged": lambda: batchnorm_backward(dout, cache), "compact": lambda: batchnorm_backward_compact(dout, cache)},
        rounds=rounds,
        round_s=round_s,
    )
    difference = np.max(np.abs(batchnorm_backward(dout, cache)[0] - batchnorm_backward_compact(dout, cache)[0]))
    return {
        "shape": list(shape),
        "seconds": _summary(timings),
        "ratio": timings["staged"].median / timings["compact"].median,
        "max_abs_difference": float(difference),
    }


def conv_bn(in_channels: int = 16, out_channels: int = 32, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A 3×3 Conv2d + eval-mode BatchNorm2d with non-trivial statistics, and its folded conv."""
    generator = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)
    bn = torch.nn.BatchNorm2d(out_channels)
    with torch.no_grad():
        for tensor, low, high in [
            (conv.weight, -0.3, 0.3), (conv.bias, -0.3, 0.3), (bn.weight, 0.5, 1.5), (bn.bias, -0.5, 0.5),
            (bn.running_mean, -1.0, 1.0), (bn.running_var, 0.5, 2.0),
        ]:
            tensor.copy_(torch.empty_like(tensor).uniform_(low, high, generator=generator))
    unfolded = torch.nn.Sequential(conv, bn).eval()
    return unfolded, fold_batchnorm(conv, bn).eval()


def folding_case(batch: int, image: int, rounds: int, round_s: float, seed: int = 0) -> dict:
    """Part 3 for one batch size: inference time of conv → BN against the folded conv.

    Returns
    -------
    dict
        ``batch``, ``layers``, ``input_shape``, ``seconds`` (``unfolded``, ``folded``), ``ratio``
        (folded/unfolded) and ``max_abs_difference`` between their outputs.
    """
    unfolded, folded = conv_bn(seed=seed)
    x = torch.randn(batch, unfolded[0].in_channels, image, image, generator=torch.Generator().manual_seed(seed))

    def infer(model: torch.nn.Module) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    timings = compare(
        {"unfolded": lambda: infer(unfolded), "folded": lambda: infer(folded)}, rounds=rounds, round_s=round_s
    )
    conv, bn = unfolded
    return {
        "batch": batch,
        "layers": f"Conv2d({conv.in_channels}, {conv.out_channels}, 3, padding=1) → BatchNorm2d({bn.num_features})",
        "input_shape": list(x.shape),
        "seconds": _summary(timings),
        "ratio": timings["folded"].median / timings["unfolded"].median,
        "max_abs_difference": float((infer(unfolded) - infer(folded)).abs().max()),
    }


def run_kernels(quick: bool = False, rounds: int | None = None, seed: int = 0) -> dict:
    """Parts 1–3: a dict with lists ``batchnorm``, ``backward`` and ``folding`` (one entry per case).

    Parameters
    ----------
    quick : bool
        Small shapes (:data:`QUICK_SHAPES`, 8×8 images), 5 rounds: a few seconds in all.
    rounds : int, optional
        Override the number of rounds (default 5 quick, 21 full).
    """
    shapes = QUICK_SHAPES if quick else SHAPES
    rounds = rounds if rounds is not None else (5 if quick else 21)
    round_s = 0.002 if quick else 0.01
    image = 8 if quick else 32
    return {
        "batchnorm": [batchnorm_case(s, rounds, round_s, seed) for s in shapes],
        "backward": [backward_case(s, rounds, round_s, seed) for s in shapes],
        "folding": [folding_case(b, image, rounds, round_s, seed) for b in FOLD_BATCHES],
    }
