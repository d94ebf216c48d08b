"""tools/nbtools.py: a new chapter passes the structure tests as created, install cells are pinned,
and executing writes nothing that changes from run to run."""

from __future__ import annotations

import base64
import io
import json
import shutil

import matplotlib
import numpy as np
import pytest

import nbtools
import test_book_layout
import test_book_structure as structure
from bookinfo import ROOT, code_cells, load, source

matplotlib.use("Agg")


@pytest.fixture
def repo(tmp_path):
    """A copy of what the tools read: configuration, table of contents, pins and the companion."""
    for name in ("_config.yml", "_toc.yml", "pyproject.toml", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "companion", tmp_path / "companion", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "book").mkdir()
    return tmp_path


def test_a_new_chapter_passes_the_structure_tests_as_created(repo):
    path = nbtools.new_chapter("12_my_topic", root=repo)
    assert "      - file: book/12_my_topic\n" in (repo / "_toc.yml").read_text()
    for check in (
        structure.test_kernel_is_python3,
        structure.test_executed_top_to_bottom,
        structure.test_first_cell_installs_and_seeds,
        structure.test_no_errors_or_warnings_in_outputs,
        structure.test_figures_are_captioned,
        structure.test_title_label,
        structure.test_exercises_have_hidden_solutions,
        structure.test_claims_are_made_with_the_claim_api,
        structure.test_prose_numbers_are_glued,
        test_book_layout.test_code_and_output_lines_fit_the_column,
    ):
        check(path)
    nb = load(path)
    assert any("check_function(" in source(c) for c in code_cells(nb)), "the template shows check_function"
    assert nbtools.is_current(nb, repo), "a new chapter is stamped as executed from its inputs"
    with pytest.raises(FileExistsError):
        nbtools.new_chapter("12_my_topic", root=repo, run=False)
    with pytest.raises(ValueError, match="NAME"):
        nbtools.new_chapter("My Topic", root=repo, run=False)


def test_pinning_rewrites_only_the_install_head(repo):
    old = ("# Colab / Binder: install the companion library when it is missing.\nimport importlib.util\n"
           'if importlib.util.find_spec("companion") is None:\n    %pip install --quiet "x @ git+https://a/b"\n\n'
           "from companion import setup_notebook\nrng = setup_notebook(seed=3)\n")
    path = repo / "book" / "01_x.ipynb"
    nb = {"cells": [{"cell_type": "code", "execution_count": 1, "id": "a", "metadata": {"tags": ["remove-cell"]},
                     "outputs": [], "source": old}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    assert nbtools.pin_install_cells([path], root=repo) == [path]
    text = source(load(path)["cells"][0])
    block = nbtools.install_block(nbtools.repository_url(repo), nbtools.release(repo))
    assert text == block + "\nfrom companion import setup_notebook\nrng = setup_notebook(seed=3)\n"
    assert f'RELEASE = "{nbtools.release(repo)}"' in text and max(map(len, text.splitlines())) <= 80
    assert nbtools.pin_install_cells([path], root=repo) == [], "pinning twice changes nothing"


def _png(value: float, **savefig) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, value])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def test_normalize_strips_timestamps_merges_streams_and_keeps_equal_images():
    stored_png = _png(1.0)
    reencoded = _png(1.0, metadata={"Software": "something else"})
    assert reencoded != stored_png
    cell = lambda png, outputs: {  # noqa: E731
        "cell_type": "code", "source": "plot()", "execution_count": 1,
        "metadata": {"execution": {"iopub.execute_input": "2026-12-01T10:00:00Z"}, "tags": ["x"]},
        "outputs": outputs + [{"output_type": "display_data", "metadata": {}, "data": {"image/png": png}}],
    }
    old = {"cells": [cell(stored_png, [])]}
    new = {"cells": [cell(reencoded, [
        {"output_type": "stream", "name": "stdout", "text": "a\n"},
        {"output_type": "stream", "name": "stdout", "text": ["b\n"]},
    ])]}
    out = nbtools.normalize(new, old)["cells"][0]
    assert out["metadata"] == {"tags": ["x"]}
    assert out["outputs"][0] == {"output_type": "stream", "name": "stdout", "text": "a\nb\n"}
    assert out["outputs"][1]["data"]["image/png"] == stored_png, "same pixels: the stored bytes stay"
    changed = {"cells": [cell(_png(2.0), [])]}
    assert nbtools.normalize(changed, old)["cells"][0]["outputs"][0]["data"]["image/png"] != stored_png


def test_the_stamp_follows_sources_and_companion(repo):
    nb = {"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}], "metadata": {}}
    digest = nbtools.inputs_digest(nb, repo)
    nb["metadata"][nbtools.STAMP_KEY] = {"sha256": digest}
    assert nbtools.is_current(nb, repo)
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1"}]
    assert nbtools.is_current(nb, repo), "outputs are not inputs"
    (repo / "companion" / "repro.py").write_text("# changed\n")
    assert not nbtools.is_current(nb, repo), "a change of the companion re-runs the notebook"
    nb["metadata"][nbtools.STAMP_KEY] = {"sha256": nbtools.inputs_digest(nb, repo)}
    nb["cells"][0]["source"] = "x = 2"
    assert not nbtools.is_current(nb, repo), "a change of a cell re-runs the notebook"


def test_pixels_compare_by_value():
    a = _png(1.0)
    assert nbtools._same_image(a, _png(1.0, metadata={"Software": None}))
    assert not nbtools._same_image(a, _png(3.0))
    assert np.asarray(nbtools._pixels(a)).ndim == 3
