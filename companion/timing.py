"""Timing that survives a busy machine: warm-up, interleaved rounds, medians and quartiles.

Every candidate of a comparison is timed in the same process, round after round in turn, so a
burst of load from elsewhere slows all of them alike instead of one; the median over rounds
ignores the rounds a burst spoiled, and the quartiles say how much the rounds disagreed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one candidate, over ``rounds`` rounds of ``calls`` calls each.

    Attributes
    ----------
    median : float
        Median over rounds of the mean time per call within a round.
    q1, q3 : float
        First and third quartiles over rounds (the interquartile range shows the noise).
    rounds, calls : int
        Number of rounds, and of calls timed together in each round.
    """

    median: float
    q1: float
    q3: float
    rounds: int
    calls: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def fix_threads(threads: int) -> dict[str, object]:
    """Limit torch and numpy's BLAS to ``threads`` threads; return what they now report.

    Returns
    -------
    dict
        ``{"requested": threads, "torch": torch's intra-op threads, "numpy": [{"library": ...,
        "api": ..., "threads": ...}, ...]}``, one entry per thread pool numpy loaded (BLAS, OpenMP).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    pools = [
        {"library": pool.get("prefix", ""), "api": pool.get("internal_api", ""), "threads": pool.get("num_threads")}
        for pool in threadpool_info()
    ]
    return {"requested": threads, "torch": torch.get_num_threads(), "numpy": pools}


def _calls_for(fn: Callable[[], object], target_s: float) -> int:
    """How many calls of ``fn`` fill about ``target_s`` seconds (at least 1), from one timed call."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(10_000, math.ceil(target_s / max(once, 1e-7))))


def compare(
    candidates: dict[str, Callable[[], object]],
    rounds: int = 15,
    round_s: float = 0.005,
    warmup: int = 2,
) -> dict[str, Timing]:
    """Time every candidate in interleaved rounds; return a :class:`Timing` per name.

    Parameters
    ----------
    candidates : dict of str to callable
        Functions of no argument, the work to time.
    rounds : int
        Rounds; each round times every candidate once, in turn.
    round_s : float
        Roughly how long one candidate runs per round: fast functions are called several times
        per round and the mean per call is kept, so the timer's resolution does not matter.
    warmup : int
        Untimed calls of each candidate first (caches, allocator, lazy initialisation).
    """
    if not candidates:
        raise ValueError("candidates must name at least one function")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int, got {rounds!r}")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    calls = {name: _calls_for(fn, round_s) for name, fn in candidates.items()}
    per_call: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            per_call[name].append((time.perf_counter() - start) / calls[name])
    timings = {}
    for name, seconds in per_call.items():
        q1, median, q3 = np.percentile(seconds, [25, 50, 75])
        timings[name] = Timing(float(median), float(q1), float(q3), rounds, calls[name])
    return timings
