"""Claims: a number the prose states, asserted against its criterion and glued into the text.

One call does the three things a quantitative sentence of the book needs::

    claim("speedup", t_staged / t_compact, above=1.0, fmt=".1f",
          says="the compact backward pass is faster than the staged one")

1. It **asserts** the measured value against the criterion (``above``, ``below``, ``between``
   or ``near``) and raises :class:`ClaimError`, showing value and criterion, when it fails.
2. It **glues** the value, formatted with ``fmt``, under ``name``, so that the markdown writes
   ``{glue:text}`speedup``` instead of a typed number (MyST-NB's glue format; the book is built
   from the stored outputs, so prose and outputs agree by construction).
3. It **records** the claim (name, words, value, criterion, rule) in the cell's output, from
   which the book's claims ledger is built.

Results that vary with the seed are passed as one value per seed, with a ``rule``:

``rule="every"``
    every seed meets the criterion. Glued: ``name`` (the mean), ``name_min``, ``name_max``,
    ``name_sd`` (sample standard deviation) and ``name_n``. (``over="splits"`` and the like
    name what the repeated values are, when they are not seeds.)
``rule="mean"``
    the two-sided ``level`` confidence interval of the mean (Student's t) lies inside the
    criterion. Glued: ``name`` (the mean), ``name_lo``, ``name_hi``, ``name_pm`` (the
    half-width), ``name_sd`` and ``name_n``. For a paired comparison pass the per-seed
    differences: this is the paired t-test at level ``level``.

Values are glued as formatted strings, never as full-precision floats: the stored outputs are
compared by ``pytest --nbval``, and last digits differ between thread counts and machines.
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RULES = ("every", "mean")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
GLUE_PREFIX = "application/papermill.record/"
CLAIM_METADATA_KEY = "companion_claim"


class ClaimError(AssertionError):
    """A claim of the book that the measurement does not support."""


@dataclass(frozen=True)
class Criterion:
    """Where a value must lie: ``lo < value < hi`` (either side may be open), or within ``tol`` of
    ``target``."""

    lo: float = -math.inf
    hi: float = math.inf
    target: float | None = None
    tol: float | None = None

    def holds(self, value: float) -> bool:
        if self.target is not None:
            return abs(value - self.target) <= self.tol
        return self.lo < value < self.hi

    def interval_inside(self, lo: float, hi: float) -> bool:
        if self.target is not None:
            return self.target - self.tol <= lo and hi <= self.target + self.tol
        return self.lo < lo and hi < self.hi

    def describe(self, fmt: str) -> str:
        def f(v: float) -> str:
            text = format(v, fmt)
            return text if v == 0 or float(re.sub(r"[^0-9.eE+-]", "", text) or 0) != 0 else format(v, ".3g")

        if self.target is not None:
            return f"within {f(self.tol)} of {f(self.target)}"
        if self.lo > -math.inf and self.hi < math.inf:
            return f"between {f(self.lo)} and {f(self.hi)}"
        if self.lo > -math.inf:
            return f"> {f(self.lo)}"
        return f"< {f(self.hi)}"


def _finite_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{what} must not be NaN")
    return value


def criterion(
    above: float | None = None,
    below: float | None = None,
    between: tuple[float, float] | None = None,
    near: float | None = None,
    tol: float | None = None,
) -> Criterion:
    """Build the criterion from exactly one of ``above`` / ``below`` / ``above`` with ``below`` /
    ``between`` / ``near`` with ``tol``."""
    if near is not None:
        if above is not None or below is not None or between is not None:
            raise ValueError("near= cannot be combined with above=, below= or between=")
        if tol is None:
            raise ValueError("near= needs tol=, the largest allowed |value - near|")
        tol = _finite_number(tol, "tol")
        if tol < 0:
            raise ValueError(f"tol must be >= 0, got {tol}")
        return Criterion(target=_finite_number(near, "near"), tol=tol)
    if tol is not None:
        raise ValueError("tol= goes with near=")
    if between is not None:
        if above is not None or below is not None:
            raise ValueError("between= cannot be combined with above= or below=")
        if not isinstance(between, (tuple, list)) or len(between) != 2:
            raise TypeError(f"between must be a pair (lo, hi), got {between!r}")
        above, below = between
    if above is None and below is None:
        raise ValueError("a claim needs a criterion: above=, below=, between=(lo, hi) or near= with tol=")
    lo = -math.inf if above is None else _finite_number(above, "above")
    hi = math.inf if below is None else _finite_number(below, "below")
    if not lo < hi:
        raise ValueError(f"the criterion is empty: nothing is > {lo} and < {hi}")
    return Criterion(lo=lo, hi=hi)


def _values(value: object) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"value must be a number or a sequence of numbers, got {value!r}")
    if np.iscomplexobj(arr):
        raise TypeError("value must be real, got a complex number")
    arr = arr.astype(np.float64).ravel()
    if arr.size == 0:
        raise ValueError("value is empty: a claim needs at least one measurement")
    if not np.all(np.isfinite(arr)):
        raise ClaimError(f"value holds NaN or infinity: {arr}")
    return arr


def t_quantile(level: float, dof: int) -> float:
    """The two-sided Student-t quantile :math:`t_{(1+level)/2,\\,dof}`."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2.0, dof))


def _display(data: dict, metadata: dict) -> None:
    """Show a raw output bundle in Jupyter; outside it, print its text (glue records are silent)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(data, raw=True, metadata=metadata)
    elif "text/plain" in data:
        print(data["text/plain"])


def glue_text(name: str, text: str) -> None:
    """Glue ``text`` under ``name`` for ``{glue:text}`name``` (MyST-NB's record format)."""
    _display({GLUE_PREFIX + "text/plain": repr(text)}, {"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})


def claim(
    name: str,
    value: float | Sequence[float] | np.ndarray,
    *,
    says: str,
    above: float | None = None,
    below: float | None = None,
    between: tuple[float, float] | None = None,
    near: float | None = None,
    tol: float | None = None,
    rule: str | None = None,
    level: float = 0.95,
    fmt: str = ".2f",
    over: str = "seeds",
) -> float:
    """Assert a measured value against its criterion, glue it for the prose, record it.

    Parameters
    ----------
    name : str
        The glue key (lower case, digits, underscores), unique in the notebook.
    value : float or sequence of float
        The measurement; a sequence holds one value per seed and needs ``rule``.
    says : str
        The claim in words, as the ledger lists it ("BN reaches 85 % sooner").
    above, below, between, near, tol
        The criterion: ``value > above``, ``value < below``, ``lo < value < hi``, or
        ``|value - near| <= tol``.
    rule : {"every", "mean"}, optional
        For per-seed values: every seed meets the criterion, or the ``level`` confidence
        interval of the mean lies inside it. Required when ``value`` has more than one entry.
    level : float
        Confidence level of ``rule="mean"``.
    fmt : str
        Format spec of every glued value and of the recorded text (``".2f"``, ``".1%"``, ...).
    over : str
        What the repeated values are, for the recorded text: ``"seeds"`` (the default),
        ``"splits"``, ``"sizes"``...

    Returns
    -------
    float
        The value (the mean, for per-seed values), so that the claim can be used in code.

    Raises
    ------
    ClaimError
        When the measurement does not meet the criterion; the message shows both.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be lower case letters, digits and underscores, got {name!r}")
    if not isinstance(says, str) or not says.strip():
        raise ValueError("says must state the claim in words")
    try:
        format(1.0, fmt)
    except (TypeError, ValueError):
        raise ValueError(f"fmt must be a format spec for a float such as '.2f', got {fmt!r}") from None
    crit = criterion(above=above, below=below, between=between, near=near, tol=tol)
    values = _values(value)
    if values.size > 1 and rule is None:
        raise ValueError(f"value has {values.size} entries (seeds?): say rule='every' or rule='mean'")
    if rule is not None and rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if not isinstance(over, str) or not over.strip():
        raise ValueError(f"over must name what the values are (e.g. 'seeds'), got {over!r}")
    if not (isinstance(level, float) and 0.5 <= level < 1.0):
        raise ValueError(f"level must be a float in [0.5, 1), got {level!r}")

    f = lambda v: format(v, fmt)  # noqa: E731
    mean = float(values.mean())
    glued = {name: f(mean)}
    if rule is None:
        ok = crit.holds(mean)
        shown = f(mean)
        how = ""
    else:
        n = values.size
        sd = float(values.std(ddof=1)) if n > 1 else 0.0
        glued.update({f"{name}_sd": f(sd), f"{name}_n": str(n)})
        if rule == "every":
            ok = all(crit.holds(v) for v in values)
            glued.update({f"{name}_min": f(values.min()), f"{name}_max": f(values.max())})
            shown = f"{f(mean)} (min {f(values.min())}, max {f(values.max())})"
            how = f", every one of {n} {over}"
        else:
            if n < 2:
                raise ValueError("rule='mean' needs at least two seeds")
            pm = t_quantile(level, n - 1) * sd / math.sqrt(n)
            lo, hi = mean - pm, mean + pm
            ok = crit.interval_inside(lo, hi)
            glued.update({f"{name}_lo": f(lo), f"{name}_hi": f(hi), f"{name}_pm": f(pm)})
            shown = f"{f(mean)} ± {f(pm)}"
            how = f", {level:.0%} interval of the mean over {n} {over}"
    wanted = crit.describe(fmt)
    if not ok:
        detail = "" if rule is None else f"; per seed: {', '.join(f(v) for v in values)}"
        raise ClaimError(f"claim {name!r} does not hold: {says}: measured {shown}, wanted {wanted}{how}{detail}")

    for key, text in glued.items():
        glue_text(key, text)
    line = f"✔ {says}: {shown}, {wanted}{how}"
    text = textwrap.fill(line, width=80, subsequent_indent="  ", break_on_hyphens=False)
    record = {"name": name, "says": says, "value": shown, "criterion": wanted + how, "rule": rule or "single"}
    anchor = f"claim-{name.replace('_', '-')}"
    _display(
        {
            "text/plain": text,
            "text/html": f'<p class="claim" id="{anchor}">{html.escape(line)}</p>',
        },
        {CLAIM_METADATA_KEY: record},
    )
    return mean
