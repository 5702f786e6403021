"""Timing and memory helpers shared by the benchmark scripts."""
import statistics
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


def interleaved_medians(jobs, repeats):
    """{name: median wall-clock time} of the callables ``jobs``, after one warm-up call
    each, timed in turn ``repeats`` times (so slow drift of the machine hits all alike)."""
    for job in jobs.values():
        job()
    times = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory(fn):
    """Peak bytes of Python/numpy allocations traced during one call."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
