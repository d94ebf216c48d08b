"""The claims ledger (_ext/claims_ledger.py) reads what companion.claims records, in toc order."""

from __future__ import annotations

import json
import sys

from companion import claims
from companion.claims import claim

from bookinfo import ROOT, claim_records, load, notebooks, toc_files

sys.path.insert(0, str(ROOT / "_ext"))
import claims_ledger  # noqa: E402


def test_the_ledger_and_the_tests_agree_on_the_metadata_key():
    assert claims_ledger.CLAIM_METADATA_KEY == claims.CLAIM_METADATA_KEY


def test_toc_documents_walks_parts_chapters_and_sections_in_order(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: A\n    chapters:\n      - file: a\n"
        "        sections:\n          - file: a1\n      - file: b\n  - caption: B\n    chapters:\n"
        "      - file: c\n"
    )
    assert claims_ledger.toc_documents(tmp_path) == ["intro", "a", "a1", "b", "c"]
    assert toc_files()[0] == "book/intro"


def test_a_notebook_claim_reaches_the_ledger(tmp_path, monkeypatch):
    outputs = []

    def display(data, metadata):
        outputs.append({"output_type": "display_data", "data": data, "metadata": metadata})

    monkeypatch.setattr(claims, "_display", display)
    claim("speedup", 3.0, above=1.0, fmt=".1f", says="compact is faster")
    claim("acc", [0.91, 0.93], above=0.9, rule="every", fmt=".0%", says="BN reaches 90 %")
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["(ch-demo)=\n", "# Demo\n"]},
            {"cell_type": "code", "metadata": {}, "source": "claim(...)", "outputs": outputs,
             "execution_count": 1},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "demo.ipynb"
    path.write_text(json.dumps(nb))
    label, records = claims_ledger.notebook_claims(path)
    assert label == "ch-demo"
    assert [r["name"] for r in records] == ["speedup", "acc"]
    assert records[1]["value"] == "92% (min 91%, max 93%)"
    assert records == claim_records(nb)


def test_every_stored_claim_has_the_fields_the_ledger_shows():
    for path in notebooks():
        for record in claim_records(load(path)):
            assert set(record) == {"name", "says", "value", "criterion", "rule"}, (path.name, record)
            assert record["rule"] in claims_ledger.RULE_WORDS, (path.name, record)
