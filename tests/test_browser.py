"""Browser checks of the built book: every page opened in headless Chromium.

The book is built from the notebooks' stored outputs (seconds) into a temporary folder, with
warnings as errors, and served on 127.0.0.1. Each page must load with no console error and no
request leaving the machine, every image must have loaded, math must be typeset by the MathJax
served with the book, and every internal link must point at an existing page and anchor.

Without Chromium the checks are skipped with a message — except under CI (CI=true), where a
missing browser is a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from bookinfo import ROOT, toc_files

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
