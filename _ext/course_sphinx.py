"""Local Sphinx extension of the book: small fixes to Jupyter Book 1's HTML output.

- With no repository address set in ``_config.yml``, switch off the buttons that need one
  (launch, repository, issues) instead of failing the build.
- Sphinx 7.4 with sphinx-book-theme emits the same inline script twice on every page (the second
  copy throws ``Identifier 'THEBE_JS_URL' has already been declared`` in the console); keep each
  script once.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config


def _buttons_need_a_repository(app: Sphinx, config: Config) -> None:
    options = config.html_theme_options
    if not options.get("repository_url"):
        for key in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
            options[key] = False
        options["launch_buttons"] = {}


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
    app.connect("config-inited", _buttons_need_a_repository)
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
