"""Batch renormalization (Ioffe 2017, arXiv:1702.03275).

Training mode corrects the batch statistics toward the running ones. Per channel, with
:math:`\\mu_B, \\sigma_B = \\sqrt{\\mathrm{var}_B + \\epsilon}` from the batch (biased variance) and
:math:`\\mu = \\texttt{running\\_mean}`, :math:`\\sigma = \\sqrt{\\texttt{running\\_var} + \\epsilon}`
as they stand *before* this step's update,

.. math::

    r = \\operatorname{clip}_{[1/r_{max},\\, r_{max}]}\\!\\left(\\frac{\\sigma_B}{\\sigma}\\right), \\qquad
    d = \\operatorname{clip}_{[-d_{max},\\, d_{max}]}\\!\\left(\\frac{\\mu_B - \\mu}{\\sigma}\\right), \\qquad
    y = \\gamma \\left(\\frac{x - \\mu_B}{\\sigma_B}\\, r + d\\right) + \\beta ,

where r and d are constants for autograd (computed from detached tensors): the gradient is batch
norm's, scaled by r. With ``r_max=1, d_max=0`` this is batch norm exactly. Eval mode is batch norm
with the running statistics, which is what training now matches: when the clips are inactive,
the training output equals :math:`\\gamma (x - \\mu)/\\sigma + \\beta`.

Schedule (the paper keeps r_max = 1, d_max = 0 for the first 5k steps, then relaxes them to reach
r_max = 3 at 40k steps and d_max = 5 at 25k). With ``t = num_batches_tracked`` (training steps so far):

.. math::

    \\rho(t, T) = \\begin{cases} 0 & t < \\texttt{warmup\\_steps} \\\\
        \\min\\!\\left(1, \\frac{t - \\texttt{warmup\\_steps}}{T}\\right) & \\text{otherwise (1 when } T = 0)
    \\end{cases}

    r_{max}(t) = 1 + (r_{max} - 1)\\,\\rho(t, \\texttt{r\\_ramp\\_steps}), \\qquad
    d_{max}(t) = d_{max}\\,\\rho(t, \\texttt{d\\_ramp\\_steps}).

The paper's schedule is ``warmup_steps=5000, r_ramp_steps=35000, d_ramp_steps=20000``; the
defaults (all 0) apply ``r_max`` and ``d_max`` from the first step.

Running statistics are updated as in ``torch.nn.BatchNorm`` (exponential average of the batch mean
and of the *unbiased* batch variance, ``momentum=None`` for a plain average) so that the buffers, the
eval output and the ``state_dict`` are batch norm's; the paper instead averages :math:`\\sigma_B` itself.
No extra buffer: ``num_batches_tracked`` is the step counter, and it travels with the state dict.
"""

from __future__ import annotations

import torch

from companion import _checks
from companion.nn._stats import channel_dims, count, unbiased
from companion.nn.batchnorm import _BatchNorm


def _ramp(step: int, warmup_steps: int, ramp_steps: int) -> float:
    """Fraction of the way from plain batch norm to the final limits after ``step`` training steps."""
    if step < warmup_steps:
        return 0.0
    if ramp_steps == 0:
        return 1.0
    return min(1.0, (step - warmup_steps) / ramp_steps)


class _BatchRenorm(_BatchNorm):
    """Batch renormalization over dimension 1; subclasses fix the accepted shapes."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
        r_max: float = 3.0,
        d_max: float = 5.0,
        warmup_steps: int = 0,
        r_ramp_steps: int = 0,
        d_ramp_steps: int = 0,
    ) -> None:
        if _checks.boolean("track_running_stats", track_running_stats) is False:
            raise ValueError(
                "track_running_stats must be True for batch renormalization: "
                "r and d compare the batch statistics with the running ones"
            )
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.r_max = _checks.float_at_least("r_max", r_max, 1.0)
        self.d_max = _checks.float_at_least("d_max", d_max, 0.0)
        self.warmup_steps = _checks.non_negative_int("warmup_steps", warmup_steps)
        self.r_ramp_steps = _checks.non_negative_int("r_ramp_steps", r_ramp_steps)
        self.d_ramp_steps = _checks.non_negative_int("d_ramp_steps", d_ramp_steps)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, r_max={self.r_max}, d_max={self.d_max}, "
            f"warmup_steps={self.warmup_steps}, r_ramp_steps={self.r_ramp_steps}, "
            f"d_ramp_steps={self.d_ramp_steps}"
        )

    def current_limits(self) -> tuple[float, float]:
        """The clipping limits ``(r_max(t), d_max(t))`` the next training step will use."""
        num_batches_tracked = self.num_batches_tracked
        step = 0 if num_batches_tracked is None else int(num_batches_tracked)
        r_limit = 1.0 + (self.r_max - 1.0) * _ramp(step, self.warmup_steps, self.r_ramp_steps)
        d_limit = self.d_max * _ramp(step, self.warmup_steps, self.d_ramp_steps)
        return r_limit, d_limit

    def _running_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The running statistics, or ``RuntimeError`` when they were removed after construction."""
        running_mean, running_var = self.running_mean, self.running_var
        if running_mean is None or running_var is None:
            raise RuntimeError(
                "batch renormalization needs running_mean and running_var, but they are None "
                "(removed, e.g. by torch.func.replace_all_batch_norm_modules_)"
            )
        return running_mean, running_var

    def correction(self, batch_mean: torch.Tensor, batch_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The constants r and d for batch statistics ``batch_mean`` and biased ``batch_var`` (any shape).

        Returns detached tensors of the same shape, clipped with :meth:`current_limits`.
        """
        r_limit, d_limit = self.current_limits()
        running_mean, running_var = self._running_stats()
        shape = batch_mean.shape
        sigma = torch.sqrt(running_var.reshape(shape) + self.eps)
        sigma_batch = torch.sqrt(batch_var.detach() + self.eps)
        r = torch.clamp(sigma_batch / sigma, 1.0 / r_limit, r_limit)
        d = torch.clamp((batch_mean.detach() - running_mean.reshape(shape)) / sigma, -d_limit, d_limit)
        return r, d

    def _normalize_with_batch_stats(self, input: torch.Tensor, update: bool) -> torch.Tensor:
        """Training-mode output ``gamma * (x_hat * r + d) + beta``, then the running-statistics update."""
        mean, centered, var = self._batch_moments(input)
        r, d = self.correction(mean, var)
        normalized = centered * torch.rsqrt(var + self.eps) * r + d
        if update:
            self._update_running_stats(mean, unbiased(var, count(input, channel_dims(input.dim()))))
        return self._affine(normalized)


class BatchRenorm1d(_BatchRenorm):
    """Batch renormalization of (N, C) or (N, C, L) input.

    ``BatchRenorm1d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
    device=None, dtype=None, *, bias=True, r_max=3.0, d_max=5.0, warmup_steps=0, r_ramp_steps=0,
    d_ramp_steps=0)``; ``track_running_stats`` must stay True. See the module docstring.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [2, 3], "(N, C) or (N, C, L)")


class BatchRenorm2d(_BatchRenorm):
    """Batch renormalization of (N, C, H, W) input; same constructor as :class:`BatchRenorm1d`."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        _checks.tensor_ndim("input", input, [4], "(N, C, H, W)")
