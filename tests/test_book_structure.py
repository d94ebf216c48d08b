"""The book's notebooks are complete and verifiable: executed in order, with the python3 kernel,
reproducible from their first cell, with captioned figures and asserted claims.

nbval compares nothing in a cell stored without outputs, so a notebook committed unexecuted would
pass `pytest --nbval` while checking nothing: these tests close that gap.
"""

from __future__ import annotations

import re

import pytest

from bookinfo import ROOT, claim_records, code_cells, config, load, notebooks, source, source_of, tags, toc_files
from prose_numbers import unglued_numbers

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
    """The hidden first cell installs the companion *release* the notebook was executed with:
    ``git+<repository.url of _config.yml>@v<project.version of pyproject.toml>`` (the block of
    tools/nbtools.py; ``make pin-install-cells`` writes it), then seeds."""
    from nbtools import install_block, release

    first = code_cells(load(path))[0]
    text = source(first)
    url = config()["repository"]["url"]
    block = install_block(url, release())
    assert "remove-cell" in tags(first), f"{path.name}: the first code cell must be tagged remove-cell"
    assert text.startswith(block), (
        f"{path.name}: the first cell must begin with the pinned install of {url} at {release()} "
        f"(run make pin-install-cells); expected:\n{block}"
    )
    assert re.search(r"^rng = setup_notebook\(seed=\d+\)$", text, re.M), (
        f"{path.name}: the first code cell must call setup_notebook"
    )


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
def test_title_label(path):
    markdown = [source(c) for c in load(path)["cells"] if c["cell_type"] == "markdown"]
    assert re.match(r"\(\w[\w-]*\)=\n# \S", markdown[0]), (
        f"{path.name}: the first markdown cell must be a label line '(ch-...)=' then '# Title'"
    )


_EXERCISE = re.compile(r"^(:{3,}|`{3,})\{exercise\}.*\n:label: ([\w-]+)", re.M)
_SOLUTION = re.compile(r"^(:{3,}|`{3,})\{solution(?:-start)?\} ([\w-]+)\s*\n((?::[\w-]+:.*\n)*)", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_have_hidden_solutions(path):
    text = "\n".join(source(c) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    exercises = [m.group(2) for m in _EXERCISE.finditer(text)]
    assert len(exercises) >= 3, f"{path.name}: {len(exercises)} labelled {{exercise}} blocks; a chapter has at least three"
    solutions = {m.group(2): m.group(3) for m in _SOLUTION.finditer(text)}
    for label in exercises:
        assert label in solutions, f"{path.name}: exercise {label!r} has no {{solution}} / {{solution-start}} block"
        assert ":class: dropdown" in solutions[label], f"{path.name}: the solution to {label!r} is not hidden (:class: dropdown)"
    assert text.count("{solution-start}") == text.count("{solution-end}"), f"{path.name}: unbalanced solution-start/end"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_a_solution_opens_with_one_toggle(path):
    inside = False
    for i, cell in enumerate(load(path)["cells"]):
        text = source(cell)
        if cell["cell_type"] == "markdown":
            inside = ("{solution-start}" in text or inside) and "{solution-end}" not in text
        elif inside:
            hidden = [t for t in tags(cell) if t.startswith(("hide-", "remove-"))]
            assert not hidden, (
                f"{path.name}, cell {i}: a code cell inside a solution tagged {hidden}: the solution's "
                "dropdown already hides it, and a second toggle would have to be opened too"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_claims_are_made_with_the_claim_api(path):
    records = claim_records(load(path))
    assert len(records) >= 3, f"{path.name}: {len(records)} claims recorded; a chapter asserts at least three"
    names = [r["name"] for r in records]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"{path.name}: claim names used twice: {duplicates}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_prose_numbers_are_glued(path):
    nb = load(path)
    markdown = [source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    typed = unglued_numbers(markdown, [source(c) for c in code_cells(nb)])
    listing = "\n".join(f"  markdown cell {i}: {token!r} in: {sentence}" for i, token, sentence in typed)
    assert not typed, (
        f"{path.name}: measured-looking numbers typed into the prose; glue them from a claim, cite their "
        f"source in the same sentence, or type the setting in code (README, Adding a chapter):\n{listing}"
    )


def test_prose_number_rule_catches_a_typed_speedup():
    old = ("On the machine that built this book, the compact pass was about 2.4 times faster than the "
           "staged one, and between about 1.7 and 10 times faster at the other sizes.")
    tokens = [t for _, t, _ in unglued_numbers([old], ["ratio = t_staged / t_compact"])]
    assert "2.4 times" in tokens and "1.7" in tokens


def test_prose_number_rule_lets_glue_citations_settings_and_numbering_through():
    prose = [
        "The compact pass was {glue:text}`speedup` times faster (Exercise 3.2, Fig. 3.1).",
        "Wu and He report 34.7 % against 24.1 % {cite:p}`wu2018group`.",
        "We use a momentum of 0.1 and keep 80 % of the data; see `eps=1e-5` and version 2.13.0.",
    ]
    assert unglued_numbers(prose, ["bn = BatchNorm1d(4, momentum=0.1)", "split = 0.8"]) == []


def test_no_stale_build_copies_are_collected():
    assert not (ROOT / "book" / "_build").exists()
