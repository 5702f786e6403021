"""Scale of the linear engine.

1. Binary LogisticRegression, n = 10^6, d = 100: IP scoring time divided by
   one ``predict_proba`` pass over the same X (target <= 2), and peak memory
   of the scoring call against the size of X (target < 2x).
2. ExactHessian at d = 1,000 (n = 10^5): time, and the share spent building H.

Peak memory is measured two ways: tracemalloc's peak of Python/numpy
allocations during the call, and the process's peak RSS growth.

Run: ``.venv/bin/python benchmarks/bench_linear_scale.py``
"""
import resource

import numpy as np
from sklearn.linear_model import LogisticRegression

from skinfluence import influence_scores

from _measure import best_time, peak_memory


def make(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) / np.sqrt(d) + 0.5 * rng.standard_normal(n) > 0).astype(int)
    return X, y


def ip_at_scale(n=1_000_000, d=100):
    X, y = make(n, d)
    X_val, y_val = make(10_000, d, seed=1)
    model = LogisticRegression(C=1.0).fit(X[:100_000], y[:100_000])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_pred = best_time(lambda: model.predict_proba(X))
    t_ip = best_time(lambda: influence_scores(model, X, y, X_val, y_val, method="ip"))
    peak = peak_memory(lambda: influence_scores(model, X, y, X_val, y_val, method="ip"))
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = X.nbytes
    print(f"IP, n={n:,}, d={d}: predict_proba {t_pred:.3f} s, IP scoring {t_ip:.3f} s, "
          f"ratio {t_ip / t_pred:.2f} (target <= 2)")
    print(f"  X is {size / 2**20:.0f} MiB; peak traced allocation during IP "
          f"{peak / 2**20:.1f} MiB = {peak / size:.3f} x X (target < 2); process max-RSS "
          f"growth over predict_proba + IP {(rss1 - rss0) / 2**10:.0f} MiB")


def exact_at_d1000(n=100_000, d=1000):
    from skinfluence.models.linear import LinearModelAdapter
    X, y = make(n, d)
    X_val, y_val = make(5_000, d, seed=1)
    model = LogisticRegression(C=1.0, max_iter=300).fit(X, y)
    t_exact = best_time(lambda: influence_scores(model, X, y, X_val, y_val,
                                                 method="exact_hessian"), repeats=2)
    a = LinearModelAdapter(model)
    train = a.training_data(X, y)
    t_h = best_time(lambda: a.hessian(train), repeats=2)
    t_pred = best_time(lambda: model.predict_proba(X))
    peak = peak_memory(lambda: influence_scores(model, X, y, X_val, y_val,
                                                method="exact_hessian"))
    print(f"ExactHessian, n={n:,}, d={d} (P={a.n_params}): {t_exact:.2f} s "
          f"(Hessian build {t_h:.2f} s; predict_proba {t_pred:.3f} s); peak traced "
          f"{peak / 2**20:.0f} MiB, X {X.nbytes / 2**20:.0f} MiB")


if __name__ == "__main__":
    ip_at_scale()
    exact_at_d1000()
