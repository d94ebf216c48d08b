"""Contributor tools for the book's notebooks: execute what changed, pin the install cell, start a chapter.

Run from the repository root with the course's environment (the Makefile does)::

    python tools/nbtools.py execute [--all] [book/X.ipynb ...]   # make execute [ALL=1]
    python tools/nbtools.py pin-install-cells                    # make pin-install-cells
    python tools/nbtools.py new-chapter 12_slug                  # make new-chapter NAME=12_slug

``execute`` re-runs a notebook only when what it was last executed from has changed: its cells'
sources and tags, the companion library (``companion/**/*.py``) and ``requirements.txt``. The
SHA-256 of those inputs is kept in the notebook's metadata (``execution_inputs``), so a fresh clone
knows which stored outputs are current. What it writes is normalized so that re-running an
unchanged notebook changes no byte: no execution timestamps in cell metadata, consecutive stream
outputs merged, and an image whose pixels did not change keeps its stored encoding.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
STAMP_KEY = "execution_inputs"
PACKAGE = "normalization-measured"


# --- the install cell -------------------------------------------------------------------------

def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` of ``_config.yml``: where the notebooks install the companion from."""
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]


def release(root: Path = ROOT) -> str:
    """The release tag the notebooks install: ``v`` + ``project.version`` of ``pyproject.toml``."""
    return "v" + tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def install_block(url: str, tag: str) -> str:
    """The head of every chapter's first cell: install the companion release when it is missing.

    On Colab or Binder, where ``companion`` is not importable, it installs the release ``tag`` of
    the repository ``url`` (pip needs git and network); in the course's environment, where the
    companion is installed from the checkout, it does nothing. Every line fits in 80 characters
    (IPython expands ``{REPOSITORY}`` and ``{RELEASE}`` in the ``%pip`` line).
    """
    return (
        "# On Colab or Binder: install the companion library. Hidden in the book.\n"
        "import importlib.util\n"
        "\n"
        f'REPOSITORY = "{url}"\n'
        f'RELEASE = "{tag}"  # the companion release this notebook was executed with\n'
        'if importlib.util.find_spec("companion") is None:\n'
        f'    %pip install --quiet "{PACKAGE} @ git+{{REPOSITORY}}@{{RELEASE}}"\n'
    )


def pinned_first_cell(text: str, url: str, tag: str) -> str:
    """``text`` (a first cell) with everything before ``from companion ...`` replaced by the block."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("from companion")), None)
    if start is None:
        raise ValueError("the first code cell has no 'from companion import setup_notebook' line")
    return install_block(url, tag) + "\n" + "".join(lines[start:])


def _source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _first_code_cell(nb: dict) -> dict:
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            return cell
    raise ValueError("the notebook has no code cell")


def pin_install_cells(paths: list[Path], root: Path = ROOT) -> list[Path]:
    """Rewrite the first cell of each notebook to the pinned install block; return those changed."""
    url, tag = repository_url(root), release(root)
    changed = []
    for path in paths:
        nb = _read(path)
        cell = _first_code_cell(nb)
        new = pinned_first_cell(_source(cell), url, tag)
        if new != _source(cell):
            cell["source"] = new
            _write(path, nb)
            changed.append(path)
    return changed


# --- reading and writing like Jupyter does ---------------------------------------------------

def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _write(path: Path, nb: dict) -> None:
    import nbformat

    node = nbformat.from_dict(nb)
    path.write_text(nbformat.writes(node) + "\n")


# --- execute what changed ---------------------------------------------------------------------

def inputs_digest(nb: dict, root: Path = ROOT) -> str:
    """SHA-256 of what a notebook's outputs depend on: its cells, the companion, the pins."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        h.update(cell["cell_type"].encode())
        h.update(_source(cell).encode())
        h.update(json.dumps(cell.get("metadata", {}).get("tags", [])).encode())
    for path in sorted((root / "companion").rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    h.update((root / "requirements.txt").read_bytes())
    return h.hexdigest()


def is_current(nb: dict, root: Path = ROOT) -> bool:
    """True when the notebook was executed from exactly its present inputs."""
    return nb.get("metadata", {}).get(STAMP_KEY, {}).get("sha256") == inputs_digest(nb, root)


def _pixels(png_b64: str):
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(base64.b64decode(png_b64)), format="png")


def _same_image(old: str, new: str) -> bool:
    import numpy as np

    if old == new:
        return True
    try:
        a, b = _pixels(old), _pixels(new)
    except Exception:  # undecodable: treat as changed
        return False
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _merged_streams(outputs: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out["output_type"] == "stream" and prev is not None and prev["output_type"] == "stream"
                and prev["name"] == out["name"]):
            prev["text"] = _text(prev["text"]) + _text(out["text"])
        else:
            merged.append(out)
    return merged


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def normalize(new: dict, old: dict | None) -> dict:
    """Strip what changes on every run from an executed notebook ``new``.

    Cell metadata loses ``execution`` (timestamps); consecutive stream outputs of one stream are
    merged; an image output whose pixels equal those stored in the same cell of ``old`` (same
    source) keeps the stored bytes, so re-encoding never shows up as a change.
    """
    old_cells = old["cells"] if old and len(old["cells"]) == len(new["cells"]) else None
    for i, cell in enumerate(new["cells"]):
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] != "code":
            continue
        cell["outputs"] = _merged_streams(cell.get("outputs", []))
        if old_cells is None or _source(old_cells[i]) != _source(cell):
            continue
        stored = [o for o in old_cells[i].get("outputs", []) if "image/png" in o.get("data", {})]
        fresh = [o for o in cell["outputs"] if "image/png" in o.get("data", {})]
        for s, f in zip(stored, fresh):
            if _same_image(_text(s["data"]["image/png"]), _text(f["data"]["image/png"])):
                f["data"]["image/png"] = s["data"]["image/png"]
    return new


def execute(path: Path, root: Path = ROOT, timeout: int = 600) -> None:
    """Run ``path`` top to bottom in a fresh python3 kernel, normalize and stamp what it writes."""
    import nbclient
    import nbformat

    old = _read(path)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    result = normalize(json.loads(nbformat.writes(nb)), old)
    result["metadata"][STAMP_KEY] = {"sha256": inputs_digest(result, root)}
    _write(path, result)


def execute_changed(paths: list[Path], everything: bool = False, root: Path = ROOT) -> list[Path]:
    """Execute each notebook whose inputs changed since its last run (all of them with ``everything``)."""
    ran = []
    for path in paths:
        if not everything and is_current(_read(path), root):
            print(f"up to date: {path.relative_to(root)}")
            continue
        print(f"executing:  {path.relative_to(root)}", flush=True)
        execute(path, root)
        ran.append(path)
    return ran


# --- a new chapter ------------------------------------------------------------------------------

_NAME = re.compile(r"^(\d{2}[a-z]?)_([a-z][a-z0-9_]*)$")


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n") + "\n"}


def _code(text: str, tags: list[str] | None = None, figure: tuple[str, str] | None = None) -> dict:
    metadata: dict = {}
    if tags:
        metadata["tags"] = tags
    if figure:
        metadata["mystnb"] = {"figure": {"caption": figure[0], "name": figure[1]}}
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [],
            "source": text.strip("\n") + "\n"}


def chapter_cells(slug: str, title: str, url: str, tag: str) -> list[dict]:
    """The cells of a new chapter: every element the structure tests ask for, once, as a pattern."""
    s = slug.replace("_", "-")
    first = install_block(url, tag) + "\nfrom companion import setup_notebook\n\nrng = setup_notebook(seed=0)"
    return [
        _md(f"""
({f"ch-{s}"})=
# {title}

```{{index}} standardization
```

One paragraph: the question this chapter answers, and what it measures to answer it. Every
number the prose states is glued from the claim that asserts it, such as the mean of a
standardized feature, {{glue:text}}`{slug}_mean`.
"""),
        _code(first, tags=["remove-cell"]),
        _code("""
import matplotlib.pyplot as plt
import numpy as np

from companion.claims import claim
from companion.exercises import check_function
"""),
        _md("""
## A measurement

Each claim asserts one measured value against its criterion, glues it for the prose and records it
for the claims ledger. Results that vary with the seed are one value per seed with a stated rule.
"""),
        _code(f"""
x = rng.normal(loc=3.0, scale=2.0, size=1000)
z = (x - x.mean()) / x.std()
claim("{slug}_mean", abs(z.mean()), below=1e-9, fmt=".3f",
      says="a standardized feature has mean zero (up to rounding)")
claim("{slug}_std", z.std(), near=1.0, tol=1e-9, fmt=".3f",
      says="a standardized feature has standard deviation one")
"""),
        _code(f"""
seeds = range(5)
sds = [np.random.default_rng(k).normal(size=200).std() for k in seeds]
claim("{slug}_sd", sds, between=(0.8, 1.2), rule="every", fmt=".2f",
      says="the sample standard deviation is near one for every seed")
"""),
        _md(f"""
The sample standard deviation was {{glue:text}}`{slug}_sd` on average (from
{{glue:text}}`{slug}_sd_min` to {{glue:text}}`{slug}_sd_max` over {{glue:text}}`{slug}_sd_n` seeds).
"""),
        _code("""
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(x, bins=40, alpha=0.7, label="raw")
ax.hist(z, bins=40, alpha=0.7, label="standardized")
ax.set_xlabel("value")
ax.set_ylabel("count")
ax.legend()
plt.show()
""", figure=("A feature before and after standardization.", f"fig-{s}-histogram")),
        _code("""
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(list(seeds), sds, "o-")
ax.set_xlabel("seed")
ax.set_ylabel("sample standard deviation")
plt.show()
""", figure=("The sample standard deviation for each seed.", f"fig-{s}-seeds"), tags=["hide-input"]),
        _md(f"""
## Exercises

:::{{exercise}} Standardize
:label: ex-{s}-standardize

Write `my_standardize(x)` returning `(x - mean) / std` over the first axis, and check it.
:::

:::{{solution-start}} ex-{s}-standardize
:class: dropdown
:::

A solution, checked against a reference on inputs that catch the usual mistakes (a constant
offset, and statistics over the wrong axis):
"""),
        _code("""
def my_standardize(x):
    return (x - x.mean(axis=0)) / x.std(axis=0)


def reference(x):
    return (x - x.mean(0, keepdims=True)) / x.std(0, keepdims=True)


inputs = [(rng.normal(size=(8, 3)),), (rng.normal(5.0, 3.0, size=(16, 2)),)]
check_function(my_standardize, reference, inputs=inputs, name="my_standardize")
"""),
        _md("""
:::{solution-end}
:::
"""),
        _md(f"""
:::{{exercise}} Which axis?
:label: ex-{s}-axis

For a batch of shape `(N, D)`, over which axis does batch normalization take its statistics?
:::

:::{{solution}} ex-{s}-axis
:class: dropdown

Over the batch axis, axis 0: one mean and one variance per feature.
:::

:::{{exercise}} A constant feature
:label: ex-{s}-constant

What does standardization return for a feature that is constant over the batch?
:::

:::{{solution}} ex-{s}-constant
:class: dropdown

Its variance is zero: without an epsilon added to the variance the division is by zero.
:::
"""),
    ]


def new_chapter(name: str, root: Path = ROOT, run: bool = True) -> Path:
    """Write ``book/<name>.ipynb`` from the template, list it in ``_toc.yml``, and execute it."""
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"NAME must look like 12_slug (two digits, underscore, lower case), got {name!r}")
    path = root / "book" / f"{name}.ipynb"
    if path.exists():
        raise FileExistsError(f"{path.relative_to(root)} exists already")
    slug = match.group(2)
    title = slug.replace("_", " ").capitalize()
    nb = {
        "cells": chapter_cells(slug, title, repository_url(root), release(root)),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"{slug[:20]}-{i}"
    _write(path, nb)
    _add_to_toc(root / "_toc.yml", f"book/{name}")
    if run:
        execute(path, root)
    return path


def _add_to_toc(toc: Path, entry: str) -> None:
    """List ``entry`` as the last chapter before the Appendix part (or at the end)."""
    text = toc.read_text()
    line = f"      - file: {entry}\n"
    marker = '  - caption: "Appendix"'
    text = text.replace(marker, line + marker, 1) if marker in text else text.rstrip("\n") + "\n" + line
    toc.write_text(text)


# --- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/nbtools.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="re-run the notebooks whose inputs changed")
    ex.add_argument("--all", action="store_true", help="re-run every notebook given")
    ex.add_argument("paths", nargs="*", type=Path, help="notebooks (default: book/*.ipynb)")
    pin = sub.add_parser("pin-install-cells", help="rewrite every first cell to the pinned install")
    pin.add_argument("paths", nargs="*", type=Path)
    new = sub.add_parser("new-chapter", help="write and execute a chapter from the template")
    new.add_argument("name", help="file name without suffix, e.g. 12_slug")
    args = parser.parse_args(argv)

    if args.command == "new-chapter":
        path = new_chapter(args.name)
        print(f"wrote {path.relative_to(ROOT)} (listed in _toc.yml); edit it, then make execute")
        return 0
    paths = [p.resolve() for p in args.paths] or sorted(BOOK.glob("*.ipynb"))
    if args.command == "pin-install-cells":
        for path in pin_install_cells(paths):
            print(f"pinned: {path.relative_to(ROOT)}")
        return 0
    execute_changed(paths, everything=args.all)
    return 0


if __name__ == "__main__":
    sys.exit(main())
