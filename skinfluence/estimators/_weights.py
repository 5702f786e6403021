"""Influence scores turned into sample weights (and weights into a resampled index)."""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from ..utils._typing import ArrayLike


def influence_weights(scores: ArrayLike, *, clip: float | None = 3.0, temperature: float = 1.0,
                      scale: float = 4.0, max_weight: float | None = 2.0) -> np.ndarray:
    """Turn influence scores into sample weights.

    ``s~ = (s - mean) / std``, clipped to ``[-clip, clip]``; ``w = softmax(s~ /
    temperature)``; ``w <- clip(n * scale * w, 0, max_weight)``. NaN scores
    (unscored samples) get the weight of an average score (``s~ = 0``).

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        Higher = more beneficial.
    clip : float or None, default=3.0
        None: no clipping (the paper code; heavy-tailed scores then put almost
        all the weight on a few samples).
    temperature, scale : float, default=1.0, 4.0
    max_weight : float or None, default=2.0

    Returns
    -------
    weights : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.estimators import influence_weights
    >>> influence_weights(np.array([-10.0, 0.0, 0.1, 0.2])).round(2)
    array([0.51, 2.  , 2.  , 2.  ])
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    w = np.ones(len(s))
    if not finite.any():
        return w
    sf = s[finite]
    std = sf.std()
    z = (sf - sf.mean()) / std if std > 0 else np.zeros_like(sf)
    if clip is not None:
        z = np.clip(z, -clip, clip)
    n_f = len(sf)
    w[finite] = n_f * scale * softmax(z / temperature)
    w[~finite] = n_f * scale * np.exp(-logsumexp(z / temperature))
    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return w


def _systematic_resample(weights, rng):
    """Indices drawn in proportion to ``weights``, n of them, with minimal variance.

    Systematic resampling: each row appears floor or ceil of ``n w_i / sum w``
    times; one uniform offset from ``rng``.
    """
    n = len(weights)
    cdf = np.cumsum(weights) / weights.sum()
    points = (rng.uniform() + np.arange(n)) / n
    return np.minimum(np.searchsorted(cdf, points, side="right"), n - 1)
