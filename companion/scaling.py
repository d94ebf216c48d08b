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

Differences from scikit-learn, all on purpose: NaN and infinity are refused (scikit-learn
ignores NaN); no sparse input, ``partial_fit`` or ``sample_weight``; ``quantile_range`` must have
``q_min < q_max`` (scikit-learn allows equality). Integer and boolean input is cast to float64,
float32 stays float32 (as in scikit-learn); the learned statistics are float64.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["NotFittedError", "MinMaxScaler", "StandardScaler", "RobustScaler"]


class NotFittedError(ValueError, AttributeError):
    """A scaler was used before ``fit``; like scikit-learn's, both a ValueError and an AttributeError."""


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


class _Scaler:
    """Shared checks and the fit / transform / inverse_transform protocol.

    Subclasses implement ``_fit(X)`` (set the learned attributes), ``_transform(X)`` and
    ``_inverse_transform(X)`` (in place on a float copy of X), and ``_params()`` for the repr.
    """

    def _check_X(self, X: object, fitting: bool) -> np.ndarray:
        """Return a float copy of X, shape (n_samples, n_features), or raise naming X."""
        name = type(self).__name__
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-D, shape (n_samples, n_features), got shape {X.shape}; "
                "use X.reshape(-1, 1) for a single feature"
            )
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must hold at least one sample and one feature, got shape {X.shape}")
        X = X.astype(np.float32 if X.dtype == np.float32 else np.float64)  # a copy
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinity")
        if not fitting and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {name} was fitted with {self.n_features_in_}")
        return X

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "n_features_in_"):
            name = type(self).__name__
            raise NotFittedError(f"{name} is not fitted yet: call fit(X) before {method}(X)")

    def fit(self, X: np.ndarray, y: object = None) -> _Scaler:
        """Learn the per-feature statistics of X, shape (n_samples, n_features). Returns self."""
        X = self._check_X(X, fitting=True)
        self._fit(X)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale X, shape (n_samples, n_features), with the statistics learned by ``fit``."""
        self._check_fitted("transform")
        return self._transform(self._check_X(X, fitting=False))

    def fit_transform(self, X: np.ndarray, y: object = None) -> np.ndarray:
        """``fit(X)``, then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo ``transform``: map scaled data back to the original units."""
        self._check_fitted("inverse_transform")
        return self._inverse_transform(self._check_X(X, fitting=False))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
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
        ok = (
            isinstance(feature_range, (tuple, list))
            and len(feature_range) == 2
            and all(isinstance(v, numbers.Real) and np.isfinite(v) for v in feature_range)
            and feature_range[0] < feature_range[1]
        )
        if not ok:
            raise ValueError(f"feature_range must be a tuple (min, max) of finite numbers with min < max, got {feature_range!r}")
        self.feature_range = tuple(feature_range)

    def _params(self) -> dict[str, object]:
        return {"feature_range": self.feature_range}

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
        Per-feature biased variance; None when ``with_std`` is False.
    scale_ : ndarray, shape (n_features,), or None
        ``sqrt(var_)`` with constant features set to 1; None when ``with_std`` is False.
    n_samples_seen_ : int
    n_features_in_ : int
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        self.with_mean = _check_bool("with_mean", with_mean)
        self.with_std = _check_bool("with_std", with_std)

    def _params(self) -> dict[str, object]:
        return {"with_mean": self.with_mean, "with_std": self.with_std}

    def _fit(self, X: np.ndarray) -> None:
        n = X.shape[0]
        self.n_samples_seen_ = n
        self.mean_ = self.var_ = self.scale_ = None
        if not (self.with_mean or self.with_std):
            return
        X64 = X.astype(np.float64, copy=False)
        mean = X64.mean(axis=0)
        self.mean_ = mean
        if self.with_std:
            deviations = X64 - mean
            # two-pass variance with the rounding correction of the first pass's mean
            var = (deviations**2).mean(axis=0) - deviations.mean(axis=0) ** 2
            eps = np.finfo(np.float64).eps
            constant = var <= n * eps * var + (n * mean * eps) ** 2
            self.var_ = var
            self.scale_ = _near_zero_to_one(np.sqrt(var), constant)

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
        self.with_centering = _check_bool("with_centering", with_centering)
        self.with_scaling = _check_bool("with_scaling", with_scaling)
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
        self.quantile_range = tuple(float(q) for q in quantile_range)

    def _params(self) -> dict[str, object]:
        return {
            "with_centering": self.with_centering,
            "with_scaling": self.with_scaling,
            "quantile_range": self.quantile_range,
        }

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
