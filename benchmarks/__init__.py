"""Benchmarks of "Normalization, Measured": how fast the companion's numpy batch norm is, and
how long the book takes to run.

``python -m benchmarks`` (``make bench``) prints a table and writes it as JSON to
``benchmarks/results/bench.json``:

1. batch norm forward and forward+backward, ``companion.functional`` against torch's native CPU
   kernel, with the bandwidth a plain copy reaches as the floor (:mod:`companion.kernels`);
2. the staged against the compact numpy backward pass;
3. conv → batch norm inference against the folded convolution;
4. with ``--notebooks``: every notebook's execution time, ``pytest --nbval`` and the HTML build
   against their budgets (:mod:`benchmarks.budget`).

Timing lives here and never in the tests: ``tests/test_benchmarks.py`` checks only that the
benchmark runs and that its results are well formed.
"""
