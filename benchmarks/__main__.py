"""Command line: ``python -m benchmarks [--quick] [--notebooks] [--out PATH] [--threads N] [--rounds N]``."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "bench.json"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time the companion's numpy batch norm against torch, and the book against its budgets.",
    )
    parser.add_argument("--quick", action="store_true", help="small shapes and few rounds (seconds)")
    parser.add_argument("--notebooks", action="store_true",
                        help="also time every notebook, pytest --nbval and the HTML build (minutes)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file to write (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=1, help="threads for torch, BLAS and the notebooks (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 21, quick 5)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be a positive int, got {args.threads}")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be a positive int, got {args.rounds}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    from companion.kernels import run_kernels
    from benchmarks.report import environment, format_table, write_json
    from companion.timing import fix_threads

    threads = fix_threads(args.threads)
    results = {
        "environment": environment(threads),
        "settings": {"quick": args.quick, "rounds": args.rounds, "threads": args.threads},
        **run_kernels(quick=args.quick, rounds=args.rounds),
    }
    if args.notebooks:
        from benchmarks.budget import run_budget

        results["budget"] = run_budget(threads=args.threads)
    print(format_table(results))
    print(f"\nWritten to {write_json(results, args.out)}")
    return results


if __name__ == "__main__":
    main()
