"""Layout of the notebooks as the book shows them: code and printed output fit an 80-character column.

At 1280 px the book's code column holds 80 characters of monospace (``_theme/course.css``);
longer lines are cut off on screen and lost in print. Markdown is wrapped by the browser and may
be longer.
"""

from __future__ import annotations

import pytest

from bookinfo import code_cells, load, notebooks, source

MAX_COLUMNS = 80
NOTEBOOKS = notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def long_lines(nb: dict, limit: int = MAX_COLUMNS) -> list[str]:
    """Every code line and every stored text output line longer than ``limit``, described."""
    found = []
    for i, cell in enumerate(code_cells(nb), start=1):
        for n, line in enumerate(source(cell).splitlines(), start=1):
            if len(line) > limit:
                found.append(f"code cell {i}, line {n} ({len(line)} chars): {line[:60]}...")
        for out in cell.get("outputs", []):
            texts = []
            if out["output_type"] == "stream":
                texts.append(_text(out["text"]))
            elif out["output_type"] in ("execute_result", "display_data"):
                if "text/html" not in out.get("data", {}) and "image/png" not in out.get("data", {}):
                    texts.append(_text(out.get("data", {}).get("text/plain", "")))
            elif out["output_type"] == "error":  # the message; the traceback's frames are Python's
                texts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
            for text in texts:
                for line in text.splitlines():
                    if len(line) > limit:
                        found.append(f"code cell {i}, output ({len(line)} chars): {line[:60]}...")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_and_output_lines_fit_the_column(path):
    found = long_lines(load(path))
    assert not found, (
        f"{path.name}: {len(found)} lines longer than {MAX_COLUMNS} characters (wrap the code, print "
        "fewer columns):\n" + "\n".join(found[:30])
    )


def test_the_rule_sees_long_code_and_long_prints():
    nb = {"cells": [{
        "cell_type": "code", "source": "x = 1\n" + "y" * 81,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": ["ok\n", "z" * 81 + "\n"]}],
    }]}
    assert len(long_lines(nb)) == 2
    nb["cells"][0]["source"] = "x = 1"
    nb["cells"][0]["outputs"][0]["text"] = ["z" * 80]
    assert long_lines(nb) == []
