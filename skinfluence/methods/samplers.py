"""Subset choice for :class:`~skinfluence.SampledHessian` (advanced sampling).

The ``"logit"`` and ``"feature"`` samplers follow J. Koh, H. Lyu, J. Jang and
H. J. Yang, "Faithful and Fast Influence Function via Advanced Sampling".

A sampler returns ``(indices, omega)`` such that ``sum_s omega_s * hess l_s``
estimates the mean per-sample Hessian without bias.
"""
import numbers

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from ..utils._params import ParamsObject
from ..utils._compat import Interval


class Sampler(ParamsObject):
    def sample(self, adapter, train, m, rng):  # pragma: no cover
        raise NotImplementedError


class RandomSampler(Sampler):
    """Uniform subset without replacement; ``omega = 1/m``.

    Examples
    --------
    >>> from skinfluence.methods.samplers import RandomSampler
    >>> RandomSampler()
    RandomSampler()
    """

    shorthand = "random"

    def sample(self, adapter, train, m, rng):
        idx = np.sort(rng.choice(train.n, size=m, replace=False))
        return idx, np.full(m, 1.0 / m)


class FeatureSampler(Sampler):
    """Stratified by k-means clusters of the feature representation.

    Clusters of X (linear models) or of the penultimate-layer embedding (nets),
    by mini-batch k-means (full k-means took 65x the full Hessian's build time
    at n = 200,000, d = 200); allocation proportional to cluster size, uniform
    within a cluster, each drawn sample weighted ``N_h / (n m_h)``.

    Parameters
    ----------
    n_clusters : int, default=10
    """

    shorthand = "feature"
    _parameter_constraints = {"n_clusters": [Interval(numbers.Integral, 1, None, closed="left")]}

    def __init__(self, n_clusters=10):
        self.n_clusters = n_clusters

    def sample(self, adapter, train, m, rng):
        emb = adapter.embedding(train.X)
        k = int(min(self.n_clusters, m, train.n))
        labels = MiniBatchKMeans(k, n_init=1, batch_size=2048,
                                 random_state=rng.integers(2**31 - 1)).fit_predict(emb)
        sizes = np.bincount(labels, minlength=k)
        alloc = np.maximum(1, np.floor(m * sizes / train.n)).astype(int)
        alloc = np.minimum(alloc, sizes)
        # hand out what rounding left over to the largest remainders
        short = m - alloc.sum()
        order = np.argsort(-(m * sizes / train.n - alloc))
        for h in order:
            if short <= 0:
                break
            extra = min(short, sizes[h] - alloc[h])
            alloc[h] += extra
            short -= extra
        idx, omega = [], []
        for h in range(k):
            members = np.flatnonzero(labels == h)
            chosen = rng.choice(members, size=alloc[h], replace=False)
            idx.append(chosen)
            omega.append(np.full(alloc[h], sizes[h] / (train.n * alloc[h])))
        idx, omega = np.concatenate(idx), np.concatenate(omega)
        order = np.argsort(idx)
        return idx[order], omega[order]


class LogitSampler(Sampler):
    """Importance sampling by each sample's Hessian size, which the logits decide.

    ``q_i ∝ ||hess l_i||_F`` (log-loss linear model: ``p_i (1 - p_i) ||a_i||^2``);
    m draws with replacement, ``omega_s = 1 / (m n q_s)``: an unbiased estimate
    of the mean Hessian. Measured best of the three (benchmarks/methods/RESULTS_methods.md).
    """

    shorthand = "logit"

    def sample(self, adapter, train, m, rng):
        size = np.asarray(adapter.hessian_norms(train), dtype=np.float64)
        if not np.all(np.isfinite(size)):  # |x|^2 or the logits overflow float64
            raise ValueError(
                "The logit sampler's per-sample Hessian norms overflow float64 (features or "
                "weights too large: rescale X, e.g. StandardScaler); or use sampler='random'."
            )
        q = size / size.sum() if size.sum() > 0 else np.full(train.n, 1.0 / train.n)
        idx = np.sort(rng.choice(train.n, size=m, replace=True, p=q))
        return idx, 1.0 / (m * train.n * q[idx])


SAMPLERS = {c.shorthand: c for c in (RandomSampler, FeatureSampler, LogitSampler)}
