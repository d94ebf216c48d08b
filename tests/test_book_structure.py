"""The book's notebooks are complete and verifiable: executed in order, with the python3 kernel,
reproducible from their first cell, with captioned figures and asserted claims.

nbval compares nothing in a cell stored without outputs, so a notebook committed unexecuted would
pass `pytest --nbval` while checking nothing: these tests close that gap.
"""

from __future__ import annotations

import re

import pytest

from bookinfo import ROOT, code_cells, config, load, notebooks, source, source_of, tags, toc_files

NOTEBOOKS = notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def test_every_toc_entry_has_a_file():
    missing = [entry for entry in toc_files() if source_of(entry) is None]
    assert not missing, f"_toc.yml lists entries with no .ipynb or .md file: {missing}"


def test_every_notebook_is_in_the_toc():
    listed = set(toc_files())
    orphans = [p.name for p in NOTEBOOKS if f"book/{p.stem}" not in listed]
    assert not orphans, f"notebooks missing from _toc.yml: {orphans}"


def test_the_book_has_chapters():
    assert NOTEBOOKS, "book/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_kernel_is_python3(path):
    kernel = load(path)["metadata"].get("kernelspec", {}).get("name")
    assert kernel == "python3", f"{path.name}: kernelspec is {kernel!r}, not 'python3'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executed_top_to_bottom(path):
    counts = [c.get("execution_count") for c in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts}: run the notebook top to bottom in one kernel "
        "(make execute) before committing"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_cell_installs_and_seeds(path):
    first = code_cells(load(path))[0]
    text = source(first)
    url = config()["repository"]["url"]
    assert "remove-cell" in tags(first), f"{path.name}: the first code cell must be tagged remove-cell"
    assert 'importlib.util.find_spec("companion") is None' in text, f"{path.name}: no guarded install"
    assert f"git+{url}" in text, f"{path.name}: the install cell must install from {url} (_config.yml)"
    assert re.search(r"^rng = setup_notebook\(seed=\d+\)$", text, re.M), (
        f"{path.name}: the first code cell must call setup_notebook"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_claims_are_asserted(path):
    asserts = sum(len(re.findall(r"^\s*assert\b", source(c), re.M)) for c in code_cells(load(path)))
    assert asserts >= 3, f"{path.name}: only {asserts} assert statements back its prose"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_errors_or_warnings_in_outputs(path):
    for i, cell in enumerate(code_cells(load(path)), start=1):
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                assert "raises-exception" in tags(cell), f"{path.name}, code cell {i}: stored error"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                pytest.fail(f"{path.name}, code cell {i}: stderr output: {''.join(out['text'])[:200]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_figures_are_captioned(path):
    nb = load(path)
    figures = 0
    for i, cell in enumerate(code_cells(nb), start=1):
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if not images:
            continue
        figures += len(images)
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        assert figure.get("caption") and figure.get("name"), (
            f"{path.name}, code cell {i}: a figure without mystnb.figure caption and name"
        )
        assert len(images) == 1, f"{path.name}, code cell {i}: one figure per captioned cell"
    assert figures >= 2, f"{path.name}: {figures} figures; a chapter shows at least two"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_title_label_and_exercises(path):
    nb = load(path)
    markdown = [source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert re.match(r"\(\w[\w-]*\)=\n# \S", markdown[0]), (
        f"{path.name}: the first markdown cell must be a label line '(ch-...)=' then '# Title'"
    )
    text = "\n".join(markdown)
    exercises = len(re.findall(r"\{admonition\} Exercise", text))
    assert exercises >= 3, f"{path.name}: {exercises} exercises; a chapter has at least three"
    solutions = len(re.findall(r"\{admonition\} Solution", text)) + sum(
        "hide-input" in tags(c) for c in code_cells(nb)
    )
    assert solutions >= exercises, f"{path.name}: {exercises} exercises but {solutions} hidden solutions"


def test_no_stale_build_copies_are_collected():
    assert not (ROOT / "book" / "_build").exists()
