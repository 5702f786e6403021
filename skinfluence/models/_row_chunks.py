"""Chunked, threaded passes over training rows for the numpy adapters.

How many rows a chunk holds, one BLAS thread per worker, the row ranges summed
in parallel, and the check that names non-finite rows when a result is not finite.
"""
from concurrent.futures import ThreadPoolExecutor
import os

import numpy as np

from ..utils._validation import is_sparse

#: bytes of float64 feature rows per chunk of the scoring pass with batch_size="auto".
#: Each chunk has a fixed cost of a few numpy calls: at d = 100 on 2 cores, 2,048-row
#: chunks spent a third of the pass on it, 8,192-row ones (6.5 MiB) ran at the speed
#: of one matrix product, and larger ones no faster (benchmarks/models/RESULTS_scale.md).
AUTO_CHUNK_BYTES = 8 * 2**20

#: rows per chunk of the scoring pass at most, whatever batch_size says.
MAX_CHUNK_ROWS = 65536

#: rows per chunk of a Hessian build: its cost is products of width D, as fast with
#: 512-row chunks as with 2,048-row ones (10 classes, d = 100: 1.76 s against 1.79 s
#: at n = 10^5), and each worker thread holds a few chunk-sized temporaries.
HESSIAN_CHUNK_ROWS = 512


def check_finite_rows(X, name="X"):
    """Raise the usual error if X holds NaN or infinity (scanned chunk by chunk)."""
    values = X.data if is_sparse(X) else X
    for start in range(0, values.shape[0], MAX_CHUNK_ROWS):
        if not np.isfinite(values[start:start + MAX_CHUNK_ROWS]).all():
            raise ValueError(f"{name}: Input {name} contains NaN or infinity.")


_BLAS = []


def blas_single_thread():
    """Context: numpy's BLAS on one thread (threadpoolctl).

    The passes run many small products, one or a few per chunk. With
    OpenBLAS's own threads each product waits for a second core, and on a
    busy machine (other jobs, or OpenMP threads still spinning after torch
    or scikit-learn's k-means) that wait dominated: a 10-class ExactHessian
    at n = 10^4, d = 100 took 3.6-4.3 s with two BLAS threads and 0.27 s with
    one (benchmarks/models/RESULTS_scale.md). Parallel work is split by chunks instead.
    """
    if not _BLAS:
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def n_workers():
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _parallel_sum(accumulate, n, step):
    """``sum(accumulate(first, last))`` over contiguous row ranges, one per worker thread.

    Ranges start on chunk boundaries, so the chunks are those of one serial
    loop; BLAS stays on one thread. One range (a single worker or a single
    chunk): no thread is started.
    """
    n_chunks = -(-n // step)
    workers = min(n_workers(), n_chunks)
    bounds = [min(n, step * (n_chunks * j // workers)) for j in range(workers + 1)]
    with blas_single_thread():
        if workers <= 1:
            return accumulate(0, n)
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(accumulate, bounds[:-1], bounds[1:]))
    return sum(parts[1:], parts[0])


def _finite_or_raise(result, X):
    """``result``, after naming non-finite training rows as the cause if it is not finite."""
    if not np.isfinite(result).all():
        check_finite_rows(X)
    return result


def _dense_rows(X, start, stop):
    """Rows start:stop as float64 (a float32 chunk is converted here, one at a time)."""
    Xc = X[start:stop]
    if Xc.dtype != np.float64:
        Xc = Xc.astype(np.float64)
    return Xc
