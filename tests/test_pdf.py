"""The whole book as one PDF (``make pdf``): Jupyter Book's LaTeX builder with XeLaTeX.

TeX Live is optional (the README names the Debian packages) and ``.ci/run`` does not install it,
so this check is not part of ``make test``: run it with ``.venv/bin/python -m pytest -m pdf``. Where
TeX Live is missing it is skipped with a message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bookinfo import ROOT

pytestmark = pytest.mark.pdf
TOOLS = ("xelatex", "latexmk", "xindy")


def test_the_book_builds_as_a_pdf(tmp_path):
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)}: install TeX Live (README, 'The PDF') to build the PDF")
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "--builder", "pdflatex", "--path-output", str(tmp_path), "--keep-going"],
        capture_output=True, text=True, cwd=ROOT,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"the PDF does not build:\n{log[-4000:]}"
    pdf = tmp_path / "_build" / "latex" / "normalization-measured.pdf"
    assert pdf.exists() and pdf.stat().st_size > 100_000
    assert "Missing character" not in log, sorted(set(re.findall(r"Missing character: .*", log)))[:10]
    assert "WARNING" not in log, [line for line in log.splitlines() if "WARNING" in line][:10]
