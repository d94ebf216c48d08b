"""Feature scalers, written out: min-max scaling, standardization, robust scaling.

Each scaler learns per-feature statistics with ``fit(X)`` on the training data and applies them
with ``transform(X)`` to any data, the scikit-learn way; learned attributes end in ``_`` and carry
scikit-learn's names, and the results equal ``sklearn.preprocessing``'s (checked in the tests).

============== ============================== =============================== ===============
scaler         center                         scale                           an outlier...
============== ============================== =============================== ===============
MinMaxScaler   min (mapped to range's low)    (max − min) / (high − low)      squeezes the rest
StandardScaler mean                           standard deviation (biased)     inflates the scale
RobustScaler   median                         interquartile range             barely matters
============== ============================== =============================== ===============

The scalers are scikit-learn estimators (``BaseEstimator``, ``TransformerMixin``): ``get_params``,
``set_params`` and ``sklearn.base.clone`` work, so they fit in a ``Pipeline`` and a ``GridSearchCV``
over their parameters. The parameters are stored as given and checked twice: in ``__init__``
(this course's rule: a clear error at the line that wrote the bad value) and again in ``fit`` (for
values set later by ``set_params``).

Differences from scikit-learn, all on purpose: NaN and infinity are refused (scikit-learn
ignores NaN); bad parameters raise in ``__init__`` already (scikit-learn waits for ``fit``); no
sparse input, ``partial_fit`` or ``sample_weight``; ``quantile_range`` must have ``q_min < q_max``
(scikit-learn allows equality); the repr lists every parameter. Integer and boolean input is cast
to float64, float16 and float32 are kept (as in scikit-learn); the learned statistics are float64.
Data so large that its variance overflows float64 (values near 1e200) is standardized exactly
(the spread is computed in rescaled units, ``var_`` is then ``inf``); statistics that still
overflow raise instead of returning NaN.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = ["NotFittedError", "MinMaxScaler", "StandardScaler", "RobustScaler"]

_KEPT_FLOATS = (np.float16, np.float32, np.float64)


class NotFittedError(_SklearnNotFittedError):
    """A scaler was used before ``fit``; scikit-learn's ``NotFittedError`` (a ValueError and an AttributeError)."""


def _near_zero_to_one(scale: np.ndarray, constant: np.ndarray | None = None) -> np.ndarray:
    """Replace the scale of (near-)constant features by 1, so they are shifted but not divided.

    scikit-learn's ``_handle_zeros_in_scale``: unless a mask is given, a scale below
    ``10 · eps`` (``eps`` of float64, 2.2e-16) counts as zero.
    """
    if constant is None:
        constant = scale < 10 * np.finfo(np.float64).eps
    scale = scale.copy()
    scale[constant] = 1.0
    return scale


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


class _Scaler(TransformerMixin, BaseEstimator):
    """Shared checks and the fit / transform / inverse_transform protocol.

    Subclasses implement ``_check_params()`` (validate the stored parameters, raise naming them),
    ``_fit(X)`` (set the learned attributes), ``_transform(X)`` and ``_inverse_transform(X)`` (in
    place on a float copy of X).
    """

    def _check_X(self, X: object, fitting: bool) -> np.ndarray:
        """Return a float copy of X, shape (n_samples, n_features), or raise naming X.

        The messages contain the phrases scikit-learn's ``check_estimator`` looks for.
        """
        name = type(self).__name__
        if scipy.sparse.issparse(X):
            raise TypeError("X is sparse: sparse input is not supported; pass X.toarray()")
        X = np.asarray(X)
        if np.iscomplexobj(X):
            raise ValueError(f"X must hold real numbers: Complex data not supported, got dtype {X.dtype}")
        if X.dtype == object:
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"X must hold real numbers: {exc}") from None
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-D, shape (n_samples, n_features), got shape {X.shape}; "
                "Reshape your data: use X.reshape(-1, 1) for a single feature"
            )
        for axis, what in ((1, "feature(s)"), (0, "sample(s)")):
            if X.shape[axis] == 0:
                raise ValueError(
                    f"X must hold at least one sample and one feature: found 0 {what} "
                    f"(shape={X.shape}) while a minimum of 1 is required."
                )
        X = X.astype(X.dtype if X.dtype.type in _KEPT_FLOATS else np.float64)  # a copy
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinity")
        if not fitting and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {name} is expecting {self.n_features_in_} "
                f"features as input (it was fitted with {self.n_features_in_})"
            )
        return X

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "n_features_in_"):
            name = type(self).__name__
            raise NotFittedError(f"{name} is not fitted yet: call fit(X) before {method}(X)")

    def fit(self, X: np.ndarray, y: object = None) -> _Scaler:
        """Learn the per-feature statistics of X, shape (n_samples, n_features). Returns self."""
        self._check_params()
        X = self._check_X(X, fitting=True)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: checked just below
            self._fit(X)
        for name, value in vars(self).items():
            if name.endswith("_") and isinstance(value, np.ndarray) and not np.all(np.isfinite(value)):
                if name != "var_":  # var_ may be inf when only the variance exceeds float64
                    raise ValueError(f"X is too large: its {name.rstrip('_')} overflows float64")
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale X, shape (n_samples, n_features), with the statistics learned by ``fit``."""
        self._check_fitted("transform")
        return self._transform(self._check_X(X, fitting=False))

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo ``transform``: map scaled data back to the original units."""
        self._check_fitted("inverse_transform")
        return self._inverse_transform(self._check_X(X, fitting=False))

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:  # noqa: N803 (BaseEstimator's signature)
        """Every parameter, defaults included (scikit-learn shows only the changed ones)."""
        names = inspect.signature(type(self).__init__).parameters
        params = ", ".join(f"{k}={getattr(self, k)!r}" for k in names if k != "self")
        return f"{type(self).__name__}({params})"


class MinMaxScaler(_Scaler):
    r"""Map each feature's training range ``[min, max]`` linearly onto ``feature_range``.

    .. math::
        x' = x \cdot s + m, \quad s = \frac{b - a}{\max - \min}, \quad m = a - \min \cdot s

    for ``feature_range = (a, b)``. A constant feature (range below ``10·eps``) gets ``s = b − a``,
    so it maps to ``a`` instead of dividing by zero.

    Parameters
    ----------
    feature_range : tuple (a, b), a < b
        Target range of the training data.

    Attributes
    ----------
    data_min_, data_max_, data_range_ : ndarray, shape (n_features,)
        Per-feature minimum, maximum and ``max − min`` of the training data.
    scale_, min_ : ndarray, shape (n_features,)
        ``s`` and ``m`` above: ``transform(X) = X * scale_ + min_``.
    n_samples_seen_ : int
    n_features_in_ : int
    """

    def __init__(self, feature_range: tuple[float, float] = (0, 1)) -> None:
        self.feature_range = feature_range
        self._check_params()

    def _check_params(self) -> None:
        feature_range = self.feature_range
        ok = (
            isinstance(feature_range, (tuple, list))
            and len(feature_range) == 2
            and all(isinstance(v, numbers.Real) and np.isfinite(v) for v in feature_range)
            and feature_range[0] < feature_range[1]
        )
        if not ok:
            raise ValueError(f"feature_range must be a tuple (min, max) of finite numbers with min < max, got {feature_range!r}")

    def _fit(self, X: np.ndarray) -> None:
        low, high = self.feature_range
        self.data_min_ = X.min(axis=0).astype(np.float64)
        self.data_max_ = X.max(axis=0).astype(np.float64)
        self.data_range_ = self.data_max_ - self.data_min_
        self.scale_ = (high - low) / _near_zero_to_one(self.data_range_)
        self.min_ = low - self.data_min_ * self.scale_
        self.n_samples_seen_ = X.shape[0]

    def _transform(self, X: np.ndarray) -> np.ndarray:
        X *= self.scale_.astype(X.dtype)
        X += self.min_.astype(X.dtype)
        return X

    def _inverse_transform(self, X: np.ndarray) -> np.ndarray:
        X -= self.min_.astype(X.dtype)
        X /= self.scale_.astype(X.dtype)
        return X


class StandardScaler(_Scaler):
    r"""Standardize each feature: subtract the mean, divide by the standard deviation.

    .. math::
        z = \frac{x - \mu}{\sigma}, \quad \sigma^2 = \frac{1}{n}\sum_i (x_i - \mu)^2

    (the biased variance, like scikit-learn and batch norm). A feature whose variance is
    indistinguishable from rounding error is treated as constant and gets ``scale_ = 1``, by
    scikit-learn's rule: ``var <= n·eps·var + (n·mean·eps)²`` with ``eps`` of float64 (Chan,
    Golub & LeVeque's error bound of the two-pass algorithm).

    Parameters
    ----------
    with_mean : bool
        Subtract the mean.
    with_std : bool
        Divide by the standard deviation.

    Attributes
    ----------
    mean_ : ndarray, shape (n_features,), or None
        Per-feature mean; None when both ``with_mean`` and ``with_std`` are False.
    var_ : ndarray, shape (n_features,), or None
        Per-feature biased variance; None when ``with_std`` is False; ``inf`` for a feature whose
        variance exceeds float64 (its ``scale_`` is still exact).
    scale_ : ndarray, shape (n_features,), or None
        ``sqrt(var_)`` with constant features set to 1; None when ``with_std`` is False.
    n_samples_seen_ : int
    n_features_in_ : int
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        self.with_mean = with_mean
        self.with_std = with_std
        self._check_params()

    def _check_params(self) -> None:
        _check_bool("with_mean", self.with_mean)
        _check_bool("with_std", self.with_std)

    def _fit(self, X: np.ndarray) -> None:
        n = X.shape[0]
        self.n_samples_seen_ = n
        self.mean_ = self.var_ = self.scale_ = None
        if not (self.with_mean or self.with_std):
            return
        X64 = X.astype(np.float64, copy=False)
        # Everything in units of u = the largest |x| of each feature (a power of 2, so the rescaling
        # is exact): sums of squares of values near 1e200 would overflow float64, rescaled they don't.
        u = np.exp2(np.ceil(np.log2(np.maximum(np.abs(X64).max(axis=0), np.finfo(np.float64).tiny))))
        Xu = X64 / u
        mean_u = Xu.mean(axis=0)
        self.mean_ = mean_u * u
        if self.with_std:
            deviations = Xu - mean_u
            # two-pass variance with the rounding correction of the first pass's mean
            var_u = (deviations**2).mean(axis=0) - deviations.mean(axis=0) ** 2
            eps = np.finfo(np.float64).eps
            constant = var_u <= n * eps * var_u + (n * mean_u * eps) ** 2
            with np.errstate(over="ignore"):
                self.var_ = var_u * u**2  # inf when the variance itself exceeds float64
            self.scale_ = _near_zero_to_one(np.sqrt(var_u) * u, constant)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        if self.with_mean:
            X -= self.mean_.astype(X.dtype)
        if self.with_std:
            X /= self.scale_.astype(X.dtype)
        return X

    def _inverse_transform(self, X: np.ndarray) -> np.ndarray:
        if self.with_std:
            X *= self.scale_.astype(X.dtype)
        if self.with_mean:
            X += self.mean_.astype(X.dtype)
        return X


class RobustScaler(_Scaler):
    r"""Center each feature on its median and divide by its interquartile range.

    .. math::
        x' = \frac{x - \operatorname{median}}{Q_{q_{max}} - Q_{q_{min}}}

    with the percentiles of ``quantile_range`` (default the 25th and 75th) computed by linear
    interpolation (numpy's default, scikit-learn's too). Quantiles ignore how far out the extreme
    values lie, so a few outliers barely move the statistics. A scale below ``10·eps`` is set to 1.

    Parameters
    ----------
    with_centering : bool
        Subtract the median.
    with_scaling : bool
        Divide by the interquantile range.
    quantile_range : tuple (q_min, q_max), 0 <= q_min < q_max <= 100
        Percentiles that delimit the range.

    Attributes
    ----------
    center_ : ndarray, shape (n_features,), or None
        Per-feature median; None when ``with_centering`` is False.
    scale_ : ndarray, shape (n_features,), or None
        Per-feature interquantile range; None when ``with_scaling`` is False.
    n_features_in_ : int
    """

    def __init__(
        self,
        with_centering: bool = True,
        with_scaling: bool = True,
        quantile_range: tuple[float, float] = (25.0, 75.0),
    ) -> None:
        self.with_centering = with_centering
        self.with_scaling = with_scaling
        self.quantile_range = quantile_range
        self._check_params()

    def _check_params(self) -> None:
        _check_bool("with_centering", self.with_centering)
        _check_bool("with_scaling", self.with_scaling)
        quantile_range = self.quantile_range
        ok = (
            isinstance(quantile_range, (tuple, list))
            and len(quantile_range) == 2
            and all(isinstance(q, numbers.Real) for q in quantile_range)
            and 0 <= quantile_range[0] < quantile_range[1] <= 100
        )
        if not ok:
            raise ValueError(
                f"quantile_range must be a tuple (q_min, q_max) with 0 <= q_min < q_max <= 100, got {quantile_range!r}"
            )

    def _fit(self, X: np.ndarray) -> None:
        X64 = X.astype(np.float64, copy=False)
        self.center_ = np.median(X64, axis=0) if self.with_centering else None
        self.scale_ = None
        if self.with_scaling:
            low, high = np.percentile(X64, self.quantile_range, axis=0)
            self.scale_ = _near_zero_to_one(high - low)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        if self.with_centering:
            X -= self.center_.astype(X.dtype)
        if self.with_scaling:
            X /= self.scale_.astype(X.dtype)
        return X

    def _inverse_transform(self, X: np.ndarray) -> np.ndarray:
        if self.with_scaling:
            X *= self.scale_.astype(X.dtype)
        if self.with_centering:
            X += self.center_.astype(X.dtype)
        return X
