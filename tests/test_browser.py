"""Browser checks of the built book: every page opened in headless Chromium.

The book is built from the notebooks' stored outputs (seconds) into a temporary folder, with
warnings as errors, and served on 127.0.0.1. Each page must load with no console error and no
request leaving the machine, every image must have loaded, math must be typeset by the MathJax
served with the book, and every internal link must point at an existing page and anchor.

The interaction checks click as a reader does: the menu at phone width (390 px), the sidebar and
contents buttons at desktop width, every exercise solution (nothing of it visible before its one
toggle, all of it after), a dark system setting, and code or output wider than the column.

Without Chromium the checks are skipped with a message — except under CI (CI=true), where a
missing browser is a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from bookinfo import ROOT, claim_records, load, toc_files

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = [f"{entry}.html" for entry in toc_files()] + ["genindex.html", "search.html"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    """Build the book with warnings as errors into a temporary folder."""
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, f"the book does not build cleanly:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def server(html_dir):
    handler = functools.partial(QuietHandler, directory=str(html_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        message = "Chromium not found: install Debian's 'chromium' package to run the browser checks"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _Anchors(HTMLParser):
    """Collects a page's element ids and the href of its links."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


@functools.cache
def _parse(path: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(path.read_text(errors="replace"))
    return parser


def test_every_internal_link_resolves(html_dir):
    broken = []
    for page in sorted(html_dir.rglob("*.html")):
        rel = page.relative_to(html_dir).as_posix()
        if rel.startswith(("_static/", "_sources/")):
            continue
        for href in _parse(page).links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target_rel = urljoin(rel, unquote(parts.path)) if parts.path else rel
            target = html_dir / target_rel
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{rel}: {href} (no file {target_rel})")
            elif parts.fragment and target.suffix == ".html" and parts.fragment not in _parse(target).ids:
                broken.append(f"{rel}: {href} (no anchor #{parts.fragment})")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])


def test_index_redirects_to_the_first_page(html_dir):
    index = (html_dir / "index.html").read_text()
    first = toc_files()[0]
    assert f'url={first}.html"' in index, "index.html does not redirect to the book's first page"
    assert (html_dir / f"{first}.html").exists()


def test_every_chapter_has_a_download_link(html_dir):
    for entry in toc_files():
        page = html_dir / f"{entry}.html"
        links = _parse(page).links
        assert any("_sources/" in href for href in links), f"{entry}.html has no download link"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders(page, html_dir, server, browser):
    assert (html_dir / page).exists(), f"{page} was not built"
    context = browser.new_context()
    tab = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))

    def only_local(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    tab.route("**/*", only_local)
    try:
        response = tab.goto(server + page, wait_until="load")
        assert response is not None and response.ok, f"{page}: HTTP {response and response.status}"
        has_math = tab.evaluate("document.querySelectorAll('.math, span.math, div.math').length") > 0
        if has_math:
            tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15000)
            tab.evaluate("MathJax.startup.promise")
            typeset = tab.evaluate("document.querySelectorAll('mjx-container').length")
            assert typeset > 0, f"{page}: math on the page but nothing typeset by MathJax"
        broken = tab.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
        )
        assert not broken, f"{page}: images that did not load: {broken}"
        assert not outside, f"{page}: requests leaving the machine: {outside}"
        assert not errors, f"{page}: console errors: {errors}"
    finally:
        context.close()


# --- interaction: the checks click, as a reader does -------------------------------------------

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CHAPTERS = [entry for entry in toc_files()[1:] if (ROOT / f"{entry}.ipynb").exists()]

_VISIBLE = """el => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
}"""


@contextmanager
def opened(browser, server, page, viewport=DESKTOP, color_scheme="light"):
    """A fresh tab on ``page``, failing on console errors; closed afterwards."""
    context = browser.new_context(viewport=viewport, color_scheme=color_scheme)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        response = tab.goto(server + page, wait_until="load")
        assert response is not None and response.ok, f"{page}: HTTP {response and response.status}"
        yield tab
        assert not errors, f"{page}: console errors: {errors}"
    finally:
        context.close()


def visible_count(tab, selector: str) -> int:
    return tab.eval_on_selector_all(selector, f"els => els.filter({_VISIBLE}).length")


def toc_link_count(tab, scope: str) -> int:
    """Visible links in ``scope`` to the book's chapters (every toc entry but the landing page)."""
    targets = [entry.rsplit("/", 1)[-1] + ".html" for entry in toc_files()[1:]]
    return tab.eval_on_selector_all(
        f"{scope} a.reference.internal",
        f"(els, targets) => new Set(els.filter({_VISIBLE})"
        ".map(a => new URL(a.href).pathname.split('/').pop())"
        ".filter(h => targets.includes(h))).size",
        targets,
    )


def test_phone_menu_opens_the_chapter_list(server, browser):
    chapters = len(toc_files()) - 1
    with opened(browser, server, f"{CHAPTERS[0]}.html", viewport=PHONE) as tab:
        assert toc_link_count(tab, "#pst-primary-sidebar") == 0, "the chapter list shows on a phone before a tap"
        tab.locator(".primary-toggle").filter(visible=True).first.click()
        tab.wait_for_timeout(300)
        shown = toc_link_count(tab, "#pst-primary-sidebar-modal")
        assert shown == chapters, f"the phone menu shows links to {shown} of {chapters} chapters after a tap"


def test_phone_contents_button_opens_the_page_contents(server, browser):
    with opened(browser, server, f"{CHAPTERS[0]}.html", viewport=PHONE) as tab:
        assert visible_count(tab, ".bd-sidebar-secondary nav a") == 0
        tab.locator(".secondary-toggle").filter(visible=True).first.click()
        tab.wait_for_timeout(300)
        assert visible_count(tab, ".bd-sidebar-secondary nav a") > 0, "the contents button shows nothing"


def test_desktop_sidebar_button_hides_and_shows_the_chapter_list(server, browser):
    chapters = len(toc_files()) - 1
    with opened(browser, server, f"{CHAPTERS[0]}.html") as tab:
        assert toc_link_count(tab, "#pst-primary-sidebar") == chapters
        toggle = tab.locator(".primary-toggle").filter(visible=True).first
        toggle.click()
        tab.wait_for_timeout(300)
        assert toc_link_count(tab, "#pst-primary-sidebar") == 0, "the sidebar button does not hide the sidebar"
        toggle.click()
        tab.wait_for_timeout(300)
        assert toc_link_count(tab, "#pst-primary-sidebar") == chapters, "the sidebar does not come back"


def test_desktop_contents_are_shown_or_open_with_their_button(server, browser):
    """From 1200 px the book theme shows a page's contents beside it; narrower, its button opens them."""
    with opened(browser, server, f"{CHAPTERS[0]}.html") as tab:
        assert visible_count(tab, ".bd-sidebar-secondary nav a") > 0, "no contents beside the page at 1280 px"
    with opened(browser, server, f"{CHAPTERS[0]}.html", viewport={"width": 1024, "height": 800}) as tab:
        assert visible_count(tab, ".bd-sidebar-secondary nav a") == 0
        tab.locator(".secondary-toggle").filter(visible=True).first.click()
        tab.wait_for_timeout(300)
        assert visible_count(tab, ".bd-sidebar-secondary nav a") > 0, "the contents button shows nothing at 1024 px"


def test_one_search_box_per_page(server, browser):
    with opened(browser, server, f"{CHAPTERS[0]}.html") as tab:
        assert visible_count(tab, ".search-button-field") == 1, "not exactly one search box at 1280 px"
        assert visible_count(tab, "#pst-header") == 0, "a site header bar (with a second search box) is shown"
    with opened(browser, server, f"{CHAPTERS[0]}.html", viewport=PHONE) as tab:
        assert visible_count(tab, ".search-button, .search-button-field") >= 1, "no way to search on a phone"


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_page_follows_the_system_theme(scheme, server, browser):
    with opened(browser, server, f"{CHAPTERS[0]}.html", color_scheme=scheme) as tab:
        theme = tab.evaluate("document.documentElement.dataset.theme")
        assert theme == scheme, f"a reader whose system is {scheme} gets the {theme!r} theme"


def test_solutions_show_nothing_until_opened(server, browser):
    """Every solution of the book: before its one toggle only its title is visible, after it all."""
    seen = 0
    problems = []
    for entry in CHAPTERS:
        with opened(browser, server, f"{entry}.html") as tab:
            solutions = tab.locator(".solution.dropdown")
            for i in range(solutions.count()):
                sol = solutions.nth(i)
                title = sol.locator(":scope > .admonition-title").inner_text().strip()
                before = sol.inner_text().strip()
                if before != title:
                    problems.append(f"{entry}: solution {i + 1} shows {before[len(title):][:80]!r} before it is opened")
                sol.locator(".toggle-button").click()
                after = sol.inner_text().strip()
                for _ in range(40):  # the toggle animates: poll for up to 1 s
                    if len(after) > len(title):
                        break
                    tab.wait_for_timeout(25)
                    after = sol.inner_text().strip()
                if len(after) <= len(title):
                    problems.append(f"{entry}: solution {i + 1} shows nothing when opened")
                seen += 1
    assert seen > 0, "the book has no {solution} blocks with :class: dropdown"
    assert not problems, "\n".join(problems)


_OPEN_EVERYTHING = """() => {
    document.querySelectorAll('details').forEach(d => { d.open = true; });
    document.querySelectorAll('.toggle-button[aria-expanded="false"], button.toggle-button-hidden')
        .forEach(b => b.click());
}"""
_OVERFLOWING = """els => els
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
    .map(e => (e.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '')).slice(0, 90))"""


@pytest.mark.parametrize("page", PAGES)
def test_no_code_or_output_overflows_at_desktop_width(page, server, browser):
    with opened(browser, server, page) as tab:
        tab.evaluate(_OPEN_EVERYTHING)
        tab.wait_for_timeout(200)
        wide = tab.eval_on_selector_all(
            "div.highlight pre, div.cell_output pre, div.output pre", _OVERFLOWING
        )
        assert not wide, f"{page}: {len(wide)} code or output blocks wider than the column; longest lines: {wide[:5]}"


def test_claims_ledger_has_one_row_per_claim(html_dir, server, browser):
    recorded = sum(len(claim_records(load(ROOT / f"{e}.ipynb"))) for e in CHAPTERS)
    assert recorded > 0, "no notebook records a claim"
    with opened(browser, server, "book/claims.html") as tab:
        rows = tab.locator("table.claims-ledger tbody tr")
        assert rows.count() == recorded, f"the ledger shows {rows.count()} rows for {recorded} recorded claims"
        hrefs = tab.eval_on_selector_all(
            "table.claims-ledger tbody tr td:nth-child(2) a", "els => els.map(a => a.getAttribute('href'))"
        )
    assert len(hrefs) == recorded, "a ledger row without a link to its claim"
    missing = []
    for href in hrefs:
        path, _, fragment = href.partition("#")
        target = html_dir / "book" / path
        if not fragment.startswith("claim-") or fragment not in _parse(target).ids:
            missing.append(href)
    assert not missing, f"ledger links with no claim-... anchor on their page: {missing[:10]}"


def test_every_page_has_the_favicon(html_dir):
    for page in PAGES:
        text = (html_dir / page).read_text()
        match = re.search(r'<link rel="icon" href="([^"]+)"', text)
        assert match, f"{page}: no favicon link"
        assert (html_dir / page).parent.joinpath(match.group(1)).resolve().exists(), f"{page}: favicon missing"


def test_bibliography_is_labelled_author_year(html_dir):
    text = (html_dir / "book" / "bibliography.html").read_text()
    labels = re.findall(r'fn-bracket">\[</span>([^<]*)<', text)
    assert labels, "the bibliography lists no entry"
    odd = [label for label in labels if not re.fullmatch(r"\S.*, (\d{4}|n\.d\.)[a-z]?", label)]
    assert not odd, f"bibliography labels that are not author-year: {odd}"


def test_index_and_glossary_are_not_empty(html_dir):
    index = (html_dir / "genindex.html").read_text()
    glossary = (html_dir / "book" / "glossary.html").read_text()
    assert index.count("<li>") >= 30, "the index has fewer than 30 entries"
    assert glossary.count('<dt id="term-') >= 30, "the glossary defines fewer than 30 terms"


def test_printing_wraps_code_instead_of_clipping_it(server, browser):
    with opened(browser, server, f"{CHAPTERS[0]}.html") as tab:
        tab.emulate_media(media="print")
        modes = set(tab.eval_on_selector_all("div.highlight pre", "els => els.map(e => getComputedStyle(e).whiteSpace)"))
        assert modes == {"pre-wrap"}, f"printed code blocks use white-space {modes}, not pre-wrap"
