"""The benchmark's results as a plain-text table and as JSON."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch


def _processor() -> str:
    """The CPU's model name where the system says it (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(threads: dict[str, object]) -> dict[str, object]:
    """Versions, machine and thread counts, stored with the results (timings mean little without)."""
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": _processor(),
        "cpus": os.cpu_count(),
        "system": platform.system(),
        "threads": threads,
    }


def _ms(timing: dict[str, float]) -> str:
    """'0.21 [0.20–0.23]': the median in milliseconds and the interquartile range."""
    return f"{timing['median'] * 1e3:.3g} [{timing['q1'] * 1e3:.3g}–{timing['q3'] * 1e3:.3g}]"


def _shape(shape: list[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def batchnorm_table(cases: list[dict]) -> list[str]:
    rows = []
    for case in cases:
        seconds, gbps, floor = case["seconds"], case["gb_per_s"], case["floor_multiple"]
        for kind in ("forward", "forward_backward"):
            rows.append([
                _shape(case["shape"]) if kind == "forward" else "",
                kind.replace("_", "+"),
                _ms(seconds[f"companion_{kind}"]),
                _ms(seconds[f"torch_{kind}"]),
                f"{case['ratio'][kind]:.2f}",
                f"{gbps[f'companion_{kind}']:.1f} / {gbps[f'torch_{kind}']:.1f}",
                f"{floor[f'companion_{kind}']:.1f} / {floor[f'torch_{kind}']:.1f}",
            ])
        rows.append(["", "copy", _ms(seconds["copy"]), "", "", f"{gbps['copy']:.1f}", "1.0"])
    header = ["shape", "pass", "companion ms", "torch ms", "comp/torch", "GB/s comp / torch", "× floor comp / torch"]
    return _rows(header, rows)


def backward_table(cases: list[dict]) -> list[str]:
    rows = [
        [_shape(c["shape"]), _ms(c["seconds"]["staged"]), _ms(c["seconds"]["compact"]), f"{c['ratio']:.1f}",
         f"{c['max_abs_difference']:.1e}"]
        for c in cases
    ]
    return _rows(["shape", "staged ms", "compact ms", "staged/compact", "max |diff|"], rows)


def folding_table(cases: list[dict]) -> list[str]:
    rows = [
        [_shape(c["input_shape"]), _ms(c["seconds"]["unfolded"]), _ms(c["seconds"]["folded"]), f"{c['ratio']:.2f}",
         f"{c['max_abs_difference']:.1e}"]
        for c in cases
    ]
    return _rows(["input", "conv+BN ms", "folded ms", "folded/unfolded", "max |diff|"], rows)


def budget_table(budget: dict) -> list[str]:
    rows = [[Path(n["path"]).name, f"{n['seconds']:.1f}", f"≤ {budget['budgets']['notebook_s']:.0f}",
             "ok" if n["ok"] else "OVER"] for n in budget["notebooks"]]
    for key, label in (("nbval", "pytest --nbval"), ("html", "HTML build")):
        run = budget[key]
        rows.append([label, f"{run['seconds']:.1f}", f"≤ {run['budget_s']:.0f}", "ok" if run["ok"] else "OVER"])
    return _rows(["run", "seconds", "budget", "verdict"], rows)


def format_table(results: dict) -> str:
    """All parts present in ``results`` as one plain-text report."""
    env = results["environment"]
    threads = env["threads"]
    numpy_threads = sorted({p["threads"] for p in threads["numpy"]}) or ["?"]
    lines = [
        f"numpy {env['numpy']}, torch {env['torch']}, {env['processor']} ({env['cpus']} CPUs); threads: torch {threads['torch']}, "
        f"numpy {'/'.join(str(t) for t in numpy_threads)}. Median [interquartile range] over "
        f"{results['batchnorm'][0]['seconds']['copy']['rounds']} interleaved rounds.",
        "",
        "1. Batch norm, float32: companion.functional (numpy) vs torch.nn.functional.batch_norm + autograd.",
        "   GB/s counts the bytes the pass must move at least (x and y; + x, dout, dx backward);",
        "   × floor = time / (those bytes at the speed of a copy of x).",
        *batchnorm_table(results["batchnorm"]),
        "",
        "2. Backward in numpy: staged (stage by stage) vs compact (closed form).",
        *backward_table(results["backward"]),
        "",
        f"3. Inference: {results['folding'][0]['layers']} vs the folded Conv2d.",
        *folding_table(results["folding"]),
    ]
    if "budget" in results:
        lines += ["", "4. Execution budgets.", *budget_table(results["budget"])]
    return "\n".join(lines)


def write_json(results: dict, path: Path | str) -> Path:
    """Write ``results`` to ``path`` (folders created), indented; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
