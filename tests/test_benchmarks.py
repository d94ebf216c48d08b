"""The benchmark runs and its results are well formed. Never how fast anything is: timing is noise
on a shared machine, and the numbers belong to ``make bench``, not to the tests."""

from __future__ import annotations

import json
import math
import sys

import nbformat
import pytest
import torch
from threadpoolctl import threadpool_limits


from benchmarks import __main__ as cli
from benchmarks.budget import BUDGETS, run_budget
from companion.kernels import FOLD_BATCHES, KIND, MIN_TRAFFIC, QUICK_SHAPES, run_kernels
from benchmarks.report import format_table, write_json
from companion.timing import compare, fix_threads

ROUNDS = 2
CANDIDATES = set(KIND)


@pytest.fixture(scope="module")
def kernels() -> dict:
    return run_kernels(quick=True, rounds=ROUNDS)


@pytest.fixture()
def restore_threads():
    """Give back torch's and BLAS' thread counts after a test that fixes them."""
    torch_threads = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS limits it found on exit
        yield
    torch.set_num_threads(torch_threads)


def assert_timing(timing: dict, rounds: int = ROUNDS) -> None:
    assert set(timing) == {"median", "q1", "q3", "rounds", "calls"}
    for key in ("median", "q1", "q3"):
        assert math.isfinite(timing[key]) and timing[key] > 0, timing
    assert timing["q1"] <= timing["median"] <= timing["q3"]
    assert timing["rounds"] == rounds and timing["calls"] >= 1


def test_one_case_per_shape_and_batch(kernels):
    assert [c["shape"] for c in kernels["batchnorm"]] == [list(s) for s in QUICK_SHAPES]
    assert [c["shape"] for c in kernels["backward"]] == [list(s) for s in QUICK_SHAPES]
    assert [c["batch"] for c in kernels["folding"]] == FOLD_BATCHES
    assert [c["input_shape"][0] for c in kernels["folding"]] == FOLD_BATCHES


def test_batchnorm_cases_are_consistent(kernels):
    for case in kernels["batchnorm"]:
        assert set(case["seconds"]) == CANDIDATES
        for timing in case["seconds"].values():
            assert_timing(timing)
        median = {name: t["median"] for name, t in case["seconds"].items()}
        for kind in ("forward", "forward_backward"):
            assert case["ratio"][kind] == pytest.approx(median[f"companion_{kind}"] / median[f"torch_{kind}"], rel=1e-12)
        nbytes = case["megabytes"] * 2**20
        assert nbytes == 4 * math.prod(case["shape"]) and case["dtype"] == "float32"
        for name, kind in KIND.items():
            assert case["gb_per_s"][name] == pytest.approx(MIN_TRAFFIC[kind] * nbytes / median[name] / 1e9, rel=1e-12)
            # × floor is the copy's bandwidth over this candidate's
            assert case["floor_multiple"][name] == pytest.approx(case["gb_per_s"]["copy"] / case["gb_per_s"][name], rel=1e-12)
        assert case["floor_multiple"]["copy"] == pytest.approx(1.0)
        # the two implementations compute the same thing
        assert case["max_abs_difference"]["out"] < 1e-4 and case["max_abs_difference"]["dx"] < 1e-4


def test_backward_and_folding_cases_are_consistent(kernels):
    for case in kernels["backward"]:
        assert set(case["seconds"]) == {"staged", "compact"}
        for timing in case["seconds"].values():
            assert_timing(timing)
        assert case["ratio"] == pytest.approx(case["seconds"]["staged"]["median"] / case["seconds"]["compact"]["median"])
        assert case["max_abs_difference"] < 1e-4
    for case in kernels["folding"]:
        assert set(case["seconds"]) == {"unfolded", "folded"}
        for timing in case["seconds"].values():
            assert_timing(timing)
        assert case["ratio"] == pytest.approx(case["seconds"]["folded"]["median"] / case["seconds"]["unfolded"]["median"])
        assert 0 <= case["max_abs_difference"] < 1e-4
        assert case["layers"].startswith("Conv2d(")


def test_compare_and_fix_threads_refuse_bad_arguments():
    with pytest.raises(ValueError, match="candidates must name at least one function"):
        compare({})
    with pytest.raises(ValueError, match="rounds must be a positive int, got 0"):
        compare({"noop": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="threads must be a positive int, got 0"):
        fix_threads(0)


def test_compare_calls_every_candidate_in_every_round():
    calls = {"a": 0, "b": 0}

    def count(name):
        calls[name] += 1

    timings = compare({"a": lambda: count("a"), "b": lambda: count("b")}, rounds=3, round_s=0.0, warmup=1)
    # 1 warm-up + 1 calibration call + 3 rounds of `calls` calls each
    assert calls == {name: 2 + 3 * timings[name].calls for name in calls}


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys, restore_threads):
    out = tmp_path / "results" / "bench.json"
    results = cli.main(["--quick", "--rounds", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    for heading in ("1. Batch norm", "2. Backward in numpy", "3. Inference"):
        assert heading in printed
    assert "4. Execution budgets" not in printed
    stored = json.loads(out.read_text())
    assert stored == json.loads(json.dumps(results))
    threads = stored["environment"]["threads"]
    assert threads["requested"] == 1 and threads["torch"] == 1
    assert all(pool["threads"] == 1 for pool in threads["numpy"])
    assert stored["settings"] == {"quick": True, "rounds": 1, "threads": 1}


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--rounds", "0"], ["--bogus"]])
def test_cli_refuses_bad_options(argv):
    with pytest.raises(SystemExit):
        cli.parse(argv)


def test_budget_times_notebooks_and_commands(tmp_path, kernels):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("total = 1 + 1")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    budget = run_budget(
        notebooks=[path],
        nbval=[sys.executable, "-c", "raise SystemExit(3)"],  # a failing test run is never ok
        html=[sys.executable, "-c", "pass"],
    )
    assert budget["budgets"] == BUDGETS
    [timed] = budget["notebooks"]
    assert timed["path"].endswith("tiny.ipynb") and timed["seconds"] > 0 and isinstance(timed["ok"], bool)
    assert budget["notebooks_total_s"] == timed["seconds"]
    assert budget["nbval"]["returncode"] == 3 and budget["nbval"]["ok"] is False
    assert budget["html"]["returncode"] == 0 and budget["html"]["budget_s"] == BUDGETS["html_s"]
    results = {"environment": {"numpy": "", "torch": "", "processor": "", "cpus": 1,
                               "threads": {"torch": 1, "numpy": []}}, **kernels, "budget": budget}
    table = format_table(results)
    assert "4. Execution budgets" in table and "tiny.ipynb" in table and "OVER" in table
    assert json.loads(write_json(results, tmp_path / "b.json").read_text())["budget"] == budget
