"""Part 4 of the benchmark: the book's execution time against its budgets.

Each notebook runs top to bottom in a fresh kernel (nbclient, nothing written back), then the
whole ``pytest --nbval`` run and the HTML build are timed as the Makefile runs them. This takes
minutes, so ``python -m benchmarks`` runs it only with ``--notebooks``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Seconds: each notebook alone, the whole ``pytest --nbval`` run, the HTML build.
BUDGETS = {"notebook_s": 40.0, "nbval_s": 300.0, "html_s": 60.0}


def _environment(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def time_notebook(path: Path | str, threads: int = 1, timeout_s: float = 600.0) -> float:
    """Execute a notebook in a fresh python3 kernel, in its own folder; return the wall time in seconds.

    Kernel start-up is included: a reader pays it too. The kernel gets ``OMP_NUM_THREADS=threads``.
    Raises ``nbclient``'s ``CellExecutionError`` if a cell fails.
    """
    import nbclient
    import nbformat

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute(env=_environment(threads), stderr=subprocess.DEVNULL)  # the kernel's own log lines
    return time.perf_counter() - start


def time_command(command: list[str], threads: int = 1, cwd: Path = ROOT) -> dict[str, object]:
    """Run a command with ``threads`` BLAS/OpenMP threads; return ``seconds``, ``returncode``, ``command``."""
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=_environment(threads), capture_output=True, text=True)
    return {
        "command": " ".join(command),
        "seconds": time.perf_counter() - start,
        "returncode": completed.returncode,
    }


def nbval_command() -> list[str]:
    """The Makefile's test run: unit tests and every notebook, two workers, one file per worker."""
    return [sys.executable, "-m", "pytest", "--nbval", "-q", "-n", "2", "--dist", "loadfile"]


def html_command(output: Path) -> list[str]:
    """The Makefile's book build (warnings are errors), into ``output`` instead of ``_build``."""
    jupyter_book = str(Path(sys.executable).with_name("jupyter-book"))
    return [jupyter_book, "build", str(ROOT), "--path-output", str(output), "--warningiserror", "--nitpick", "--keep-going"]


def run_budget(
    notebooks: list[Path] | None = None,
    threads: int = 1,
    nbval: list[str] | None = None,
    html: list[str] | None = None,
    budgets: dict[str, float] = BUDGETS,
) -> dict:
    """Time every notebook, the ``pytest --nbval`` run and the HTML build; compare with ``budgets``.

    Parameters
    ----------
    notebooks : list of Path, optional
        Default: every ``book/*.ipynb``.
    threads : int
        ``OMP_NUM_THREADS`` (and BLAS threads) of the kernels and commands.
    nbval, html : list of str, optional
        The test command and the build command; default :func:`nbval_command` and
        :func:`html_command` (into a temporary folder).

    Returns
    -------
    dict
        ``budgets``; ``notebooks``: ``[{"path", "seconds", "ok"}]``; ``notebooks_total_s``;
        ``nbval`` and ``html``: ``{"command", "seconds", "returncode", "budget_s", "ok"}`` (ok
        means it succeeded within budget).
    """
    paths = sorted((ROOT / "book").glob("*.ipynb")) if notebooks is None else [Path(p) for p in notebooks]
    timed = []
    for path in paths:
        seconds = time_notebook(path, threads)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        timed.append({"path": str(shown), "seconds": seconds, "ok": seconds <= budgets["notebook_s"]})
    runs = {"nbval": time_command(nbval or nbval_command(), threads)}
    with tempfile.TemporaryDirectory() as output:
        runs["html"] = time_command(html or html_command(Path(output)), threads)
    for key, run in runs.items():
        run["budget_s"] = budgets[f"{key}_s"]
        run["ok"] = run["returncode"] == 0 and run["seconds"] <= run["budget_s"]
    return {
        "budgets": dict(budgets),
        "notebooks": timed,
        "notebooks_total_s": sum(n["seconds"] for n in timed),
        **runs,
    }
