"""companion.exercises.check_function: exact verdicts first, details after, validated arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.exercises import check_function


def reference(x):
    return (x - x.mean(axis=0)) / x.std(axis=0)


def eps_outside(x, eps=1e-5):
    return (x - x.mean(axis=0)) / (x.std(axis=0) + eps)


def eps_inside(x, eps=1e-5):
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)


rng = np.random.default_rng(0)
INPUTS = [(rng.normal(size=(5, 3)),), (rng.normal(size=(9, 2)),), (rng.normal(size=(4, 3)),)]


def lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_correct_verdict_is_exact(capsys):
    assert check_function(reference, reference, INPUTS, name="standardize")
    assert lines(capsys) == ["standardize: correct on 3 of 3 inputs."]


def test_two_wrong_of_three_says_two_and_details_follow_the_verdict(capsys):
    def wrong_on_two(x):
        return reference(x) + (0.2 if x.shape[0] != 9 else 0.0)

    assert not check_function(wrong_on_two, reference, INPUTS, name="standardize")
    out = lines(capsys)
    assert out[0] == "standardize: wrong on 2 of 3 inputs:"
    assert out[1].startswith("  inputs[0]: max |difference| = 2.0e-01")
    assert out[2].startswith("  inputs[2]: max |difference| = 2.0e-01")
    assert len(out) == 3 and all(len(line) <= 80 for line in out)


def test_eps_outside_the_square_root_is_caught_with_a_small_sigma_feature(capsys):
    x = np.column_stack([rng.normal(0, 1, 50), rng.normal(0, 1e-3, 50)])
    assert not check_function(eps_outside, eps_inside, [(x,)], name="bn")
    assert lines(capsys)[0] == "bn: wrong on 1 of 1 inputs:"


@pytest.mark.parametrize("wrong, says", [
    (lambda x: 1 / 0, "raised ZeroDivisionError: division by zero"),
    (lambda x: reference(x).T, "has shape"),
    (lambda x: (reference(x), x), "returned 2 arrays, expected 1"),
    (lambda x: reference(x) + 0j, "result is complex"),
])
def test_each_kind_of_mistake_is_named(capsys, wrong, says):
    assert not check_function(wrong, reference, INPUTS[:1], name="f")
    out = lines(capsys)
    assert out[0] == "f: wrong on 1 of 1 inputs:" and says in out[1] and out[1].startswith("  inputs[0]: ")


def test_complex_result_with_the_right_real_part_fails(capsys):
    assert not check_function(lambda x: reference(x) + 1e-3j, reference, INPUTS[:1])
    assert "complex" in capsys.readouterr().out


def test_nan_where_the_reference_is_nan_is_correct(capsys):
    def ref(x):
        return np.log(x)  # NaN for negative entries

    x = np.array([1.0, -1.0, 2.0])
    with np.errstate(invalid="ignore"):
        assert check_function(ref, ref, [(x,)], name="log")
        assert not check_function(lambda a: np.log(np.abs(a)), ref, [(x,)], name="log")
    out = lines(capsys)
    assert out[0] == "log: correct on 1 of 1 inputs."
    assert out[1] == "log: wrong on 1 of 1 inputs:" and "1 NaN mismatched" in out[2]


def test_a_bare_array_is_refused_with_a_hint():
    for bad in (np.ones((1, 3)), np.ones((5, 3)), torch.ones(2, 3)):
        with pytest.raises(TypeError, match=r"inputs must be a list of argument tuples.*inputs=\[\(x,\)\]"):
            check_function(reference, reference, bad)
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a tuple"):
        check_function(reference, reference, [np.ones((5, 3))])


def test_generators_are_accepted(capsys):
    assert check_function(reference, reference, ((x,) for (x,) in INPUTS), name="g")
    assert lines(capsys) == ["g: correct on 3 of 3 inputs."]


@pytest.mark.parametrize("kwargs", [{"atol": "big"}, {"atol": float("nan")}, {"rtol": -1.0},
                                    {"rtol": True}, {"atol": float("inf")}])
def test_tolerances_are_validated(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        check_function(reference, reference, INPUTS, **kwargs)


def test_long_messages_are_clipped_to_80_characters(capsys):
    def long_error(x):
        raise ValueError("a very long message " * 10)

    check_function(long_error, reference, INPUTS, name="n" * 90)
    assert all(len(line) <= 80 for line in lines(capsys))


def test_tensors_and_tuples_compare(capsys):
    t = torch.randn(4, 3)
    assert check_function(lambda a: (a * 2, a.sum()), lambda a: ((a * 2).numpy(), float(a.sum())), [(t,)])


def test_shapes_are_dropped_rather_than_cut(capsys):
    args = tuple(np.ones(3) for _ in range(8))
    check_function(lambda *a: a[0] + 1, lambda *a: a[0], [args], name="f")
    out = lines(capsys)
    assert out[1] == "  inputs[0]: max |difference| = 1.0e+00, 3 of 3 values off"
