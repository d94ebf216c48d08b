"""What the tests know about the book: its root, its table of contents and its notebooks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

sys.path.insert(0, str(ROOT / "_ext"))
from claims_ledger import toc_documents  # noqa: E402


def config() -> dict:
    """The parsed ``_config.yml``."""
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files() -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (and its root), in reading order, without suffix.

    The claims ledger's Sphinx extension walks the table of contents the same way; the tests use
    its function so that both read one order.
    """
    return toc_documents(ROOT)


def source_of(entry: str) -> Path | None:
    """The file behind a toc entry (``.ipynb`` or ``.md``), or None when there is none."""
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{entry}{suffix}"
        if path.exists():
            return path
    return None


def notebooks() -> list[Path]:
    """Every notebook under ``book/``."""
    return sorted(BOOK.glob("*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def claim_records(nb: dict) -> list[dict]:
    """The claims a notebook's stored outputs record (``companion.claims.claim``), in order."""
    from companion.claims import CLAIM_METADATA_KEY

    return [
        out["metadata"][CLAIM_METADATA_KEY]
        for cell in code_cells(nb)
        for out in cell.get("outputs", [])
        if CLAIM_METADATA_KEY in out.get("metadata", {})
    ]
