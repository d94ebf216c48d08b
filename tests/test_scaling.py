"""companion.scaling against sklearn.preprocessing, with hypothesis for the invariances."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
import sklearn.preprocessing as skp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from companion.scaling import MinMaxScaler, NotFittedError, RobustScaler, StandardScaler

PAIRS = [
    (MinMaxScaler, skp.MinMaxScaler, {}),
    (MinMaxScaler, skp.MinMaxScaler, {"feature_range": (-1, 3)}),
    (StandardScaler, skp.StandardScaler, {}),
    (StandardScaler, skp.StandardScaler, {"with_mean": False}),
    (StandardScaler, skp.StandardScaler, {"with_std": False}),
    (StandardScaler, skp.StandardScaler, {"with_mean": False, "with_std": False}),
    (RobustScaler, skp.RobustScaler, {}),
    (RobustScaler, skp.RobustScaler, {"quantile_range": (10.0, 90.0)}),
    (RobustScaler, skp.RobustScaler, {"with_centering": False}),
    (RobustScaler, skp.RobustScaler, {"with_scaling": False}),
]
ATTRIBUTES = [
    "mean_", "var_", "scale_", "n_samples_seen_", "data_min_", "data_max_", "data_range_", "min_",
    "center_", "n_features_in_",
]


def awkward_data(seed=0, n=60):
    """Features on very different scales, a constant one, a near-constant one, and outliers."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([
        rng.standard_normal(n) * 1000 + 5,
        rng.uniform(0, 1e-3, n),
        np.full(n, 7.25),
        1e8 + rng.standard_normal(n) * 1e-9,  # a variance at the rounding level of the mean
        rng.standard_normal(n),
    ])
    X[:3, 4] = [50.0, -80.0, 120.0]  # outliers
    return X


@pytest.mark.parametrize(("ours", "theirs", "params"), PAIRS)
@pytest.mark.parametrize("seed", [0, 1])
def test_equal_to_sklearn(ours, theirs, params, seed):
    X, X_test = awkward_data(seed), awkward_data(seed + 10, n=15)
    mine, ref = ours(**params).fit(X), theirs(**params).fit(X)
    for name in ATTRIBUTES:
        if hasattr(ref, name):
            expected, got = getattr(ref, name), getattr(mine, name)
            if expected is None:
                assert got is None, name
            else:
                np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, err_msg=name)
    np.testing.assert_allclose(mine.transform(X_test), ref.transform(X_test), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mine.fit_transform(X), ref.fit_transform(X), rtol=1e-9, atol=1e-12)
    scaled = ref.transform(X_test)
    np.testing.assert_allclose(mine.inverse_transform(scaled), ref.inverse_transform(scaled), rtol=1e-12)


def test_constant_features_are_shifted_not_divided():
    X = awkward_data()
    assert StandardScaler().fit(X).scale_[2] == 1.0
    assert StandardScaler().fit(X).scale_[3] == 1.0  # near-constant: scikit-learn's bound
    np.testing.assert_array_equal(StandardScaler().fit_transform(X)[:, 2], 0.0)
    np.testing.assert_array_equal(MinMaxScaler((-1, 1)).fit_transform(X)[:, 2], -1.0)
    np.testing.assert_array_equal(RobustScaler().fit_transform(X)[:, 2], 0.0)


def test_integer_and_float32_input():
    X = np.arange(24).reshape(8, 3) ** 2
    for ours, theirs in [(StandardScaler, skp.StandardScaler), (MinMaxScaler, skp.MinMaxScaler), (RobustScaler, skp.RobustScaler)]:
        out = ours().fit_transform(X)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, theirs().fit_transform(X), rtol=1e-12)
        X32 = X.astype(np.float32)
        out32 = ours().fit_transform(X32)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, theirs().fit_transform(X32), rtol=1e-5, atol=1e-6)


def test_outlier_effect():
    """One outlier squeezes min-max scaling and inflates the std; the IQR barely moves."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 1))
    X_out = np.vstack([X, [[1000.0]]])
    assert MinMaxScaler().fit(X_out).transform(X).std() < 0.01
    assert StandardScaler().fit(X_out).scale_[0] > 50
    assert abs(RobustScaler().fit(X_out).scale_[0] / RobustScaler().fit(X).scale_[0] - 1) < 0.05


def test_repr_has_no_address():
    assert repr(StandardScaler()) == "StandardScaler(with_mean=True, with_std=True)"
    assert repr(MinMaxScaler((-1, 1))) == "MinMaxScaler(feature_range=(-1, 1))"
    assert repr(RobustScaler()) == (
        "RobustScaler(with_centering=True, with_scaling=True, quantile_range=(25.0, 75.0))"
    )


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
matrices = st.tuples(st.integers(2, 12), st.integers(1, 4)).flatmap(lambda s: arrays(np.float64, s, elements=finite))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(X=matrices, kind=st.sampled_from([MinMaxScaler, StandardScaler, RobustScaler]))
def test_inverse_transform_undoes_transform(X, kind):
    scaler = kind().fit(X)
    back = scaler.inverse_transform(scaler.transform(X))
    np.testing.assert_allclose(back, X, rtol=1e-9, atol=1e-9 * (1 + np.abs(X).max()))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(X=matrices)
def test_standardized_columns_have_mean_0_and_std_1(X):
    Z = StandardScaler().fit_transform(X)
    spread = X.max(axis=0) - X.min(axis=0)
    varying = spread > 1e-6 * (1 + np.abs(X).max(axis=0))
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(Z[:, varying].std(axis=0), 1, rtol=1e-9)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(X=matrices)
def test_minmax_maps_training_data_onto_the_range(X):
    Z = MinMaxScaler((-2, 5)).fit_transform(X)
    varying = (X.max(axis=0) - X.min(axis=0)) > 1e-6 * (1 + np.abs(X).max(axis=0))
    assert np.all(Z >= -2 - 1e-9) and np.all(Z <= 5 + 1e-9)
    np.testing.assert_allclose(Z[:, varying].min(axis=0), -2, atol=1e-9)
    np.testing.assert_allclose(Z[:, varying].max(axis=0), 5, atol=1e-9)


# ----------------------------------------------------------------------------- bad input

SCALERS = [MinMaxScaler, StandardScaler, RobustScaler]


@pytest.mark.parametrize("kind", SCALERS)
@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
def test_use_before_fit_is_refused(kind, method):
    with pytest.raises(NotFittedError, match=rf"{kind.__name__} is not fitted yet: call fit\(X\) before {method}"):
        getattr(kind(), method)(np.ones((3, 2)))
    assert issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize("kind", SCALERS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_refused(kind, bad):
    X = np.ones((4, 2))
    X[1, 1] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        kind().fit(X)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        kind().fit(np.ones((4, 2))).transform(X)


@pytest.mark.parametrize("kind", SCALERS)
def test_wrong_number_of_features_is_refused(kind):
    scaler = kind().fit(np.random.default_rng(0).standard_normal((5, 4)))
    with pytest.raises(ValueError, match=f"X has 3 features, but {kind.__name__} is expecting 4 features as input"):
        scaler.transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match="X has 3 features"):
        scaler.inverse_transform(np.ones((2, 3)))


@pytest.mark.parametrize("kind", SCALERS)
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_x_that_is_not_2d_is_refused(kind, shape):
    with pytest.raises(ValueError, match=r"X must be 2-D, shape \(n_samples, n_features\)"):
        kind().fit(np.ones(shape))


@pytest.mark.parametrize("kind", SCALERS)
def test_empty_or_non_numeric_x_is_refused(kind):
    with pytest.raises(ValueError, match="X must hold at least one sample and one feature"):
        kind().fit(np.ones((0, 3)))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        kind().fit(np.array([["a", "b"]]))


@pytest.mark.parametrize("feature_range", [(1, 0), (0, 0), (0,), "01", (0, np.inf), (0, "1")])
def test_bad_feature_range_is_refused(feature_range):
    with pytest.raises(ValueError, match="feature_range must be a tuple"):
        MinMaxScaler(feature_range)


@pytest.mark.parametrize("quantile_range", [(75, 25), (50, 50), (-1, 50), (25, 101), (25,), None])
def test_bad_quantile_range_is_refused(quantile_range):
    with pytest.raises(ValueError, match="quantile_range must be a tuple"):
        RobustScaler(quantile_range=quantile_range)


@pytest.mark.parametrize(("kind", "name"), [
    (StandardScaler, "with_mean"), (StandardScaler, "with_std"),
    (RobustScaler, "with_centering"), (RobustScaler, "with_scaling"),
])
def test_non_bool_flags_are_refused(kind, name):
    with pytest.raises(TypeError, match=f"{name} must be a bool"):
        kind(**{name: "yes"})


# ----------------------------------------------------------------------------- issue 14, item 13


@pytest.mark.parametrize("kind", [MinMaxScaler, StandardScaler, RobustScaler])
def test_float16_and_float32_are_kept(kind):
    X = np.random.default_rng(0).normal(size=(20, 3))
    for dtype in (np.float16, np.float32):
        assert kind().fit_transform(X.astype(dtype)).dtype == dtype


def test_standard_scaler_on_huge_finite_data_is_exact():
    X = np.random.default_rng(0).normal(size=(50, 2)) * 1e200
    scaler = StandardScaler().fit(X)
    Z = scaler.transform(X)
    assert np.all(np.isfinite(Z)) and np.all(np.isfinite(scaler.scale_))
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, (X / 1e200).std(axis=0) * 1e200, rtol=1e-12)
    assert np.all(np.isinf(scaler.var_))  # documented: the variance itself exceeds float64


def test_statistics_that_overflow_raise_instead_of_nan():
    X = np.array([[-1.5e308], [1.5e308]])
    with pytest.raises(ValueError, match="X is too large: its data_range overflows float64"):
        MinMaxScaler().fit(X)


@pytest.mark.parametrize("scaler", [MinMaxScaler((-1, 1)), StandardScaler(with_mean=False),
                                    RobustScaler(quantile_range=[10, 90])])
def test_clone_and_params_follow_sklearn(scaler):
    copy = clone(scaler)
    assert copy.get_params() == scaler.get_params() and copy is not scaler
    assert isinstance(scaler, sklearn.base.TransformerMixin)


def test_grid_search_over_scaler_parameters():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) * [1, 100, 0.01]
    y = (X[:, 0] + X[:, 1] / 100 > 0).astype(int)
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()),
                          {"standardscaler__with_std": [True, False]}, cv=3).fit(X, y)
    assert search.best_params_["standardscaler__with_std"] in (True, False)


def test_set_params_with_a_bad_value_is_refused_at_fit():
    scaler = StandardScaler().set_params(with_mean="yes")
    with pytest.raises(TypeError, match="with_mean must be a bool"):
        scaler.fit(np.ones((3, 2)))


def test_not_fitted_error_is_sklearns():
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(SklearnNotFittedError):
        StandardScaler().transform(np.ones((2, 2)))
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(StandardScaler())


_DELIBERATE = {
    "check_do_not_raise_errors_in_init_or_set_params":
        "deliberate: a bad parameter raises in __init__ already (the course's early-error rule)",
}


@parametrize_with_checks([MinMaxScaler(), StandardScaler(), RobustScaler()],
                         expected_failed_checks=lambda estimator: _DELIBERATE)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)
