"""Local Sphinx extension of the book: small fixes to Jupyter Book 1's HTML output.

- With no repository address set in ``_config.yml``, switch off the buttons that need one
  (launch, repository, issues) instead of failing the build.
- pydata-sphinx-theme 0.17.1 (which sphinx-book-theme 1.3.0 pins) fills an otherwise empty site
  header with a second search box, and with it a hidden menu button and a hidden contents button;
  the book theme's script binds to the first ``.primary-toggle`` of the page, the hidden one, so
  the visible menu and contents buttons did nothing. Keep the header empty (``navbar_persistent``
  set to nothing): pydata then renders no header, and both themes' scripts bind to the buttons the
  reader sees. The search box of the sidebar stays the one search box of a page.
- The bibliography labels its entries as the text cites them, author and year ("Ioffe and
  Szegedy, 2015", "Ba et al., 2016"), not with alpha codes ("[BKH16]"): the pybtex style
  ``authoryear`` (``bibtex_default_style`` in ``_config.yml``), sorted by author, year, title.
- Sphinx 7.4 with sphinx-book-theme emits the same inline script twice on every page (the second
  copy throws ``Identifier 'THEBE_JS_URL' has already been declared`` in the console); keep each
  script once.
"""

from __future__ import annotations

from typing import Any

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx
from sphinx.config import Config


def author_year_label(entry: Any) -> str:
    """"Ioffe, 2015", "Ioffe and Szegedy, 2015", "Ba et al., 2016": as ``author_year`` cites it."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(p.last_names) for p in people]
    if not names:
        who = entry.fields.get("key", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    year = entry.fields.get("year", "n.d.")
    return f"{who}, {year}".replace("{", "").replace("}", "")


class AuthorYearLabels(BaseLabelStyle):
    """Author–year labels, with a, b, ... appended where two entries would share one."""

    def format_labels(self, sorted_entries):
        labels = [author_year_label(e) for e in sorted_entries]
        counts = {label: labels.count(label) for label in labels}
        seen: dict[str, int] = {}
        for label in labels:
            if counts[label] == 1:
                yield label
            else:
                seen[label] = seen.get(label, 0) + 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]


class AuthorYearStyle(UnsrtStyle):
    """The unsrt entry format, labelled author–year and sorted by author, year and title."""

    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def _buttons_need_a_repository(app: Sphinx, config: Config) -> None:
    options = config.html_theme_options
    if not options.get("repository_url"):
        for key in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
            options[key] = False
        options["launch_buttons"] = {}


def _one_header(app: Sphinx, config: Config) -> None:
    config.html_theme_options.setdefault("navbar_persistent", [])


def _unique_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""), str(getattr(script, "attributes", {}).get("body", "")))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle, force=True)
    app.connect("config-inited", _buttons_need_a_repository)
    app.connect("config-inited", _one_header)
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
