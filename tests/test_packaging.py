"""The companion installs as one package with loose requirements; the install probe fails fast."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
import zipfile

import pytest

from bookinfo import ROOT
from reachable import reachable


def test_the_wheel_holds_only_the_companion(tmp_path):
    """No top-level ``benchmarks`` (or tests, tools) package lands in site-packages."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("normalization_measured-*.whl")
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    packages = {t for t in top if not t.endswith(".dist-info")}
    assert packages == {"companion"}, f"the wheel installs top-level {sorted(packages)}"


def test_requirements_of_the_package_are_lower_bounds():
    """Colab keeps its own torch: the package never pins an exact version."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    exact = [d for d in deps if "==" in d or "<" in d]
    assert not exact, f"pyproject.toml pins {exact}; exact pins belong in requirements.txt"
    assert any(d.startswith("torch>=") for d in deps)


def test_an_unknown_host_is_unreachable_at_once():
    start = time.monotonic()
    assert not reachable("https://no-such-host.invalid/whl/cpu/", timeout=5)
    assert time.monotonic() - start < 5


def test_a_proxy_answering_404_for_every_host_is_unreachable():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert not reachable(f"http://127.0.0.1:{httpd.server_address[1]}/whl/cpu/torch/", timeout=5)
    finally:
        httpd.shutdown()


def test_a_silent_server_is_given_up_after_the_timeout():
    """A firewall that accepts and never answers (or drops packets) costs the timeout, not minutes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    held = []
    thread = threading.Thread(target=lambda: held.append(listener.accept()), daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        assert not reachable(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=1)
        assert time.monotonic() - start < 3
    finally:
        listener.close()


def test_make_clean_removes_build_artefacts(tmp_path):
    """``make clean`` leaves no ``build/``, ``*.egg-info`` or ``_build`` behind (and keeps .venv)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for path in ("build/lib", "normalization_measured.egg-info", "_build/html", ".venv/bin"):
        (tmp_path / path).mkdir(parents=True)
    subprocess.run(["make", "clean"], cwd=tmp_path, check=True, capture_output=True)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".venv", "Makefile"], f"make clean left {left}"
