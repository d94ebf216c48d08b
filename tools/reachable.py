"""Exit 0 when an address serves a page within a few seconds, 1 otherwise (``make setup`` uses it).

``python tools/reachable.py URL [--timeout SECONDS]``: the Makefile asks this before it gives pip
PyTorch's CPU wheel index, so that a machine that cannot reach the index (only a local mirror, a
firewall that drops packets) skips it after at most ``--timeout`` seconds instead of letting pip
retry for minutes. Only a successful answer counts: a proxy that answers "404" for every host it
cannot reach does not make an index reachable.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request


def reachable(url: str, timeout: float = 5.0) -> bool:
    """True when a GET of ``url`` succeeds (2xx, after redirects) within ``timeout`` seconds.

    The body is not read: for a package index, ``<index>/torch/`` answering is enough.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (OSError, ValueError):  # URLError and HTTPError are OSErrors; timeouts too
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/reachable.py", description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    return 0 if reachable(args.url, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
