"""Timing and memory helpers shared by the benchmark scripts."""
import time
import tracemalloc


def best_time(fn, repeats=3):
    """Best wall-clock time of ``repeats`` calls (least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_memory(fn):
    """Peak bytes of Python/numpy allocations traced during one call."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
