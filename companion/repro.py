"""Reproducible notebooks: one call fixes every source of run-to-run variation.

nbval compares the outputs stored in each notebook with a fresh run, so a chapter must print
the same text on every machine and thread count. :func:`setup_notebook` is called in the first
cell of every chapter.
"""

from __future__ import annotations

import random
import warnings

import numpy as np


def setup_notebook(seed: int = 0, threads: int = 1) -> np.random.Generator:
    """Seed every generator, fix the thread count and set print and plot options.

    Parameters
    ----------
    seed : int
        Seed for Python's ``random``, numpy's legacy global generator and torch.
    threads : int
        Threads used by torch and by numpy's BLAS. Reductions summed in another order give
        other last digits, so the stored outputs are made with one thread.

    Returns
    -------
    numpy.random.Generator
        A fresh generator seeded with ``seed``, for the notebook's own numpy sampling.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")

    import torch
    from threadpoolctl import threadpool_limits

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    threadpool_limits(threads)

    np.set_printoptions(precision=4, suppress=True, floatmode="maxprec")
    torch.set_printoptions(precision=4, sci_mode=False)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")

    from companion.plotting import apply_style

    apply_style()
    return np.random.default_rng(seed)
