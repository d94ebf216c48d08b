"""The ``claims-ledger`` directive: one table row for every claim the book's notebooks assert.

Each call of ``companion.claims.claim`` leaves, in the stored output of its cell, a record (name,
the claim in words, the measured value, the criterion and the seed rule) and an HTML anchor
``claim-<name>``. This directive reads those records from the notebooks as they are stored, in
the order of ``_toc.yml``; it never executes anything. A notebook that changes rebuilds the page.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.errors import NoUri
from sphinx.util.docutils import SphinxDirective

CLAIM_METADATA_KEY = "companion_claim"  # as in companion.claims
RULE_WORDS = {"every": "every seed", "mean": "mean, interval", "single": "one measurement"}


def toc_documents(root: Path) -> list[str]:
    """Every document of ``_toc.yml`` in reading order, as docnames (``book/03_bn_backward``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    docs = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return docs


def notebook_claims(path: Path) -> tuple[str | None, list[dict]]:
    """The chapter label (the ``(label)=`` line opening the notebook) and its claim records."""
    nb = json.loads(path.read_text())
    label = None
    records = []
    for cell in nb["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if label is None and cell["cell_type"] == "markdown":
            first = text.strip().splitlines()[0] if text.strip() else ""
            if first.startswith("(") and first.endswith(")="):
                label = first[1:-2]
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get(CLAIM_METADATA_KEY)
            if record:
                records.append(record)
    return label, records


def _cell(*children: nodes.Node) -> nodes.entry:
    entry = nodes.entry()
    entry += nodes.paragraph("", "", *children)
    return entry


class ClaimsLedger(SphinxDirective):
    """Render the ledger: the totals, then for each page a table of its claims."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir)
        rows = []
        for docname in toc_documents(root):
            path = root / f"{docname}.ipynb"
            if not path.exists():
                continue
            self.env.note_dependency(str(path))
            label, records = notebook_claims(path)
            rows.extend((docname, label, r) for r in records)

        rules = Counter(r["rule"] for _, _, r in rows)
        chapters = len({d for d, _, _ in rows})
        summary = nodes.paragraph(
            text=(
                f"{len(rows)} claims on {chapters} pages: {rules['every']} hold for every seed, "
                f"{rules['mean']} are means whose confidence interval lies inside the criterion, and "
                f"{rules['single']} are single measurements. Every one of them was asserted when its "
                "notebook last ran; the tests re-run them all."
            )
        )
        summary["classes"].append("claims-summary")

        builder = self.env.app.builder
        result: list[nodes.Node] = [summary]
        for docname in dict.fromkeys(d for d, _, _ in rows):
            page = [(label, r) for d, label, r in rows if d == docname]
            label = page[0][0]
            heading = nodes.paragraph(classes=["claims-page"])
            if label:
                xref = addnodes.pending_xref(
                    "", refdomain="std", reftype="ref", reftarget=label, refexplicit=False, refwarn=True
                )
                xref += nodes.inline("", label)
                heading += nodes.strong("", "", xref)
            else:
                heading += nodes.strong("", docname)
            heading += nodes.Text(f" — {len(page)} claims")
            result += [heading, self._table(builder, docname, [r for _, r in page])]
        return result

    def _link(self, builder: Any, docname: str, record: dict) -> nodes.Node:
        """The claim's words, linked to its ``claim-<name>`` anchor where the builder has page URIs
        (HTML); plain words where it has none (the single LaTeX document of the PDF)."""
        anchor = "claim-" + record["name"].replace("_", "-")
        try:
            uri = builder.get_relative_uri(self.env.docname, docname)
        except NoUri:
            return nodes.Text(record["says"])
        return nodes.reference("", record["says"], refuri=f"{uri}#{anchor}", internal=True)

    def _table(self, builder: Any, docname: str, records: list[dict]) -> nodes.table:
        """One page's claims: glue name, the claim (linked to its cell), value, criterion, rule."""
        table = nodes.table(classes=["claims-ledger"])
        group = nodes.tgroup(cols=5)
        table += group
        for width in (14, 36, 20, 22, 8):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        header = nodes.row()
        for title in ("Name", "Claim", "Measured", "Criterion", "Rule"):
            header += _cell(nodes.Text(title))
        head += header
        body = nodes.tbody()
        group += body
        for record in records:
            row = nodes.row()
            row += _cell(nodes.literal("", record["name"]))
            row += _cell(self._link(builder, docname, record))
            row += _cell(nodes.Text(record["value"]))
            row += _cell(nodes.Text(record["criterion"]))
            row += _cell(nodes.Text(RULE_WORDS.get(record["rule"], record["rule"])))
            body += row
        return table


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("claims-ledger", ClaimsLedger)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
