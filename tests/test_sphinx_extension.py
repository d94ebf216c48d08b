"""The book's local Sphinx extension (_ext/course_sphinx.py)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from sphinx.builders.html._assets import _JavaScript

from bookinfo import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import course_sphinx  # noqa: E402


def config_with(url: str) -> SimpleNamespace:
    return SimpleNamespace(html_theme_options={
        "repository_url": url,
        "use_repository_button": True,
        "use_issues_button": True,
        "use_edit_page_button": True,
        "launch_buttons": {"binderhub_url": "https://mybinder.org"},
    })


def test_buttons_stay_on_with_a_repository_address():
    config = config_with("https://github.com/owner/repo")
    course_sphinx._buttons_need_a_repository(None, config)
    assert config.html_theme_options["use_repository_button"]
    assert config.html_theme_options["launch_buttons"] == {"binderhub_url": "https://mybinder.org"}


def test_buttons_switch_off_without_one():
    config = config_with("")
    course_sphinx._buttons_need_a_repository(None, config)
    options = config.html_theme_options
    assert not options["use_repository_button"] and not options["use_issues_button"]
    assert options["launch_buttons"] == {}


def test_each_script_is_kept_once():
    thebe = "const THEBE_JS_URL = 1;"
    context = {"script_files": [
        _JavaScript("_static/a.js"),
        _JavaScript(None, body=thebe),
        _JavaScript("_static/a.js"),
        _JavaScript("", body=thebe),  # the same inline script, emitted a second time
        _JavaScript("", body="other"),
    ]}
    course_sphinx._unique_scripts(None, "page", "page.html", context, None)
    kept = [(s.filename, s.attributes.get("body")) for s in context["script_files"]]
    assert kept == [("_static/a.js", None), (None, thebe), ("", "other")]


def test_the_site_header_stays_empty():
    """pydata-sphinx-theme fills an unset ``navbar_persistent`` with a search box, and with it a
    header whose hidden buttons took the menu and contents clicks."""
    config = SimpleNamespace(html_theme_options={})
    course_sphinx._one_header(None, config)
    assert config.html_theme_options["navbar_persistent"] == []
    config = SimpleNamespace(html_theme_options={"navbar_persistent": ["theme-switcher"]})
    course_sphinx._one_header(None, config)
    assert config.html_theme_options["navbar_persistent"] == ["theme-switcher"]


def test_bibliography_labels_are_author_year():
    from pybtex.database import Entry, Person

    def entry(*authors, year="2016"):
        e = Entry("article", fields={"year": year, "title": "T"})
        e.persons["author"] = [Person(a) for a in authors]
        return e

    assert course_sphinx.author_year_label(entry("Welford, B. P.", year="1962")) == "Welford, 1962"
    assert course_sphinx.author_year_label(entry("Wu, Yuxin", "He, Kaiming", year="2018")) == "Wu and He, 2018"
    assert course_sphinx.author_year_label(entry("Ba, J.", "Kiros, J.", "Hinton, G.")) == "Ba et al., 2016"
    labels = list(course_sphinx.AuthorYearLabels().format_labels([entry("Li, Y."), entry("Li, Y.")]))
    assert labels == ["Li, 2016a", "Li, 2016b"]
