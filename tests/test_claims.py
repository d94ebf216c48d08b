"""companion.claims: a claim asserts its criterion, glues its values and records itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from companion import claims
from companion.claims import ClaimError, claim, criterion


@pytest.fixture
def shown(monkeypatch):
    """Every output bundle a claim displays, as (data, metadata) pairs."""
    bundles = []
    monkeypatch.setattr(claims, "_display", lambda data, metadata: bundles.append((data, metadata)))
    return bundles


def glued(bundles):
    prefix = claims.GLUE_PREFIX
    return {
        meta["scrapbook"]["name"]: eval(data[prefix + "text/plain"])  # the repr of a str
        for data, meta in bundles
        if "scrapbook" in meta
    }


def records(bundles):
    return [meta[claims.CLAIM_METADATA_KEY] for _, meta in bundles if claims.CLAIM_METADATA_KEY in meta]


def test_a_true_single_claim_glues_and_records(shown):
    assert claim("speedup", 4.2391, above=1.0, fmt=".1f", says="compact is faster") == pytest.approx(4.2391)
    assert glued(shown) == {"speedup": "4.2"}
    (record,) = records(shown)
    assert record == {"name": "speedup", "says": "compact is faster", "value": "4.2", "criterion": "> 1.0",
                      "rule": "single"}
    html = next(data["text/html"] for data, meta in shown if claims.CLAIM_METADATA_KEY in meta)
    assert 'id="claim-speedup"' in html and "compact is faster" in html


def test_a_false_claim_raises_with_value_and_criterion(shown):
    with pytest.raises(ClaimError, match=r"'speedup'.*measured 0\.9.*wanted > 1\.0"):
        claim("speedup", 0.93, above=1.0, fmt=".1f", says="compact is faster")
    assert shown == [], "a failing claim glues nothing"


def test_claim_error_is_an_assertion_error():
    assert issubclass(ClaimError, AssertionError)


@pytest.mark.parametrize(
    ("kwargs", "value", "holds"),
    [
        ({"above": 1.0}, 1.0, False),
        ({"below": 1.0}, 0.999, True),
        ({"between": (0.2, 0.4)}, 0.3, True),
        ({"between": (0.2, 0.4)}, 0.4, False),
        ({"near": 2.0, "tol": 0.1}, 2.09, True),
        ({"near": 2.0, "tol": 0.1}, 1.85, False),
    ],
)
def test_criteria(kwargs, value, holds):
    assert criterion(**kwargs).holds(value) is holds


def test_every_seed_rule_needs_each_seed(shown):
    claim("acc", [0.93, 0.95, 0.94], above=0.9, rule="every", fmt=".1%", says="BN reaches 90 %")
    assert glued(shown) == {"acc": "94.0%", "acc_sd": "1.0%", "acc_n": "3", "acc_min": "93.0%", "acc_max": "95.0%"}
    with pytest.raises(ClaimError, match=r"per seed: 95\.0%, 85\.0%"):
        claim("acc2", [0.95, 0.85], above=0.9, rule="every", fmt=".1%", says="BN reaches 90 %")


def test_mean_rule_is_the_t_interval(shown):
    diffs = np.array([0.006, 0.007, 0.004, 0.008, 0.005])
    claim("gain", diffs, above=0.0, rule="mean", fmt=".4f", says="BN raises test accuracy")
    lo, hi = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    g = glued(shown)
    assert float(g["gain_lo"]) == pytest.approx(lo, abs=1e-4)
    assert float(g["gain_hi"]) == pytest.approx(hi, abs=1e-4)
    assert g["gain_n"] == "5"


def test_mean_rule_fails_when_the_interval_crosses_the_threshold(shown):
    with pytest.raises(ClaimError):
        claim("gain", [0.01, -0.008, 0.012, -0.006], above=0.0, rule="mean", says="BN raises test accuracy")


def test_the_paired_mean_claim_agrees_with_a_paired_t_test(shown):
    rng = np.random.default_rng(3)
    a = rng.normal(0.9, 0.01, 8)
    b = a + rng.normal(0.004, 0.003, 8)
    p = stats.ttest_rel(b, a).pvalue
    try:
        claim("paired", b - a, above=0.0, rule="mean", fmt=".4f", says="b beats a")
        held = True
    except ClaimError:
        held = False
    # the two-sided 95 % interval lies above 0 exactly when the two-sided paired test rejects at 5 %
    assert held == (p < 0.05 and (b - a).mean() > 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "needs a criterion"),
        ({"above": 2.0, "below": 1.0}, ValueError, "empty"),
        ({"near": 1.0}, ValueError, "tol"),
        ({"tol": 0.1, "above": 0.0}, ValueError, "tol= goes with near="),
        ({"near": 1.0, "tol": -1.0}, ValueError, "tol must be >= 0"),
        ({"above": float("nan")}, ValueError, "NaN"),
        ({"above": "1"}, TypeError, "above must be a real number"),
        ({"between": (1.0,)}, TypeError, "pair"),
        ({"between": (0.0, 1.0), "above": 0.5}, ValueError, "cannot be combined"),
    ],
)
def test_bad_criteria_are_refused(kwargs, error, match, shown):
    with pytest.raises(error, match=match):
        claim("x", 1.5, says="something", **kwargs)


@pytest.mark.parametrize(
    ("name", "value", "extra", "error", "match"),
    [
        ("Bad-Name", 1.0, {}, ValueError, "name must be"),
        ("x", [1.0, 2.0], {}, ValueError, "rule='every' or rule='mean'"),
        ("x", [1.0, 2.0], {"rule": "most"}, ValueError, "rule must be one of"),
        ("x", [1.0], {"rule": "mean"}, ValueError, "at least two seeds"),
        ("x", [], {}, ValueError, "empty"),
        ("x", "fast", {}, TypeError, "value must be a number"),
        ("x", 1 + 2j, {}, TypeError, "real"),
        ("x", float("nan"), {}, ClaimError, "NaN"),
        ("x", 1.0, {"fmt": "%.2f"}, ValueError, "fmt must be a format spec"),
        ("x", 1.0, {"says": " "}, ValueError, "says must state"),
        ("x", [1.0, 2.0], {"rule": "mean", "level": 95}, ValueError, "level must be"),
    ],
)
def test_bad_arguments_are_refused(name, value, extra, error, match, shown):
    kwargs = {"says": "something", "above": 0.0, **extra}
    with pytest.raises(error, match=match):
        claim(name, value, **kwargs)


def test_a_torch_tensor_is_a_value(shown):
    import torch

    claim("t", torch.tensor([0.5, 0.6]), above=0.4, rule="every", says="tensor values")
    assert glued(shown)["t"] == "0.55"


def test_criterion_text_keeps_small_bounds_visible(shown):
    claim("err", 3e-9, below=1e-6, fmt=".2f", says="parity")
    assert records(shown)[0]["criterion"] == "< 1e-06"


def test_outside_jupyter_the_claim_line_is_printed(capsys):
    claim("speed", 2.0, above=1.0, fmt=".1f", says="it is faster")
    assert capsys.readouterr().out.strip() == "✔ it is faster: 2.0, > 1.0"


def test_glue_text_is_the_myst_nb_record_format(shown):
    claims.glue_text("ratio", "2.7")
    ((data, meta),) = shown
    assert data == {"application/papermill.record/text/plain": "'2.7'"}
    assert meta == {"scrapbook": {"name": "ratio", "mime_prefix": "application/papermill.record/"}}
    assert not math.isnan(float(eval(data["application/papermill.record/text/plain"])))


def test_the_printed_claim_line_fits_80_columns(capsys):
    claim("long", [0.91, 0.93, 0.95], above=0.9, rule="every", fmt=".1%", over="splits",
          says="a rather long sentence that states what this claim measures, in words")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and all(len(line) <= 80 for line in lines)
    assert "every one of 3 splits" in " ".join(lines)


def test_over_must_name_something(shown):
    with pytest.raises(ValueError, match="over must name"):
        claim("x", [1.0, 2.0], above=0.0, rule="every", over="", says="something")
