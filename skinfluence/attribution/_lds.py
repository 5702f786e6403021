"""The linear datamodeling score (LDS): how well attributions predict refitted models.

Park et al., "TRAK: Attributing Model Behavior at Scale" (2023), and dattri's
benchmark protocol: draw random subsets of an ``alpha`` fraction of the
training rows, refit the model on each, and for every test row correlate
(Spearman, across subsets) the sum of the attributions of the subset's rows
with the refitted model's loss on that test row.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata
from sklearn.base import clone, is_regressor
from sklearn.utils import _safe_indexing

from ..utils._typing import ArrayLike, EstimatorLike, RandomStateLike
from ..utils._progress import progress
from ..utils._validation import check_generator, check_labels, check_n_rows, check_real_targets
from ..utils._warnings import outside_stacklevel

#: probabilities are clipped here before the log (a class missing from a subset)
_EPS = 1e-15


def linear_datamodeling_score(estimator: EstimatorLike, X: ArrayLike, y: ArrayLike,
                              X_test: ArrayLike, y_test: ArrayLike,
                              attributions: ArrayLike | dict, *, n_subsets: int = 50,
                              alpha: float = 0.5, random_state: RandomStateLike = None,
                              aggregate: bool = False, verbose: bool = False) -> float | dict:
    """Linear datamodeling score of attributions (higher = they predict refits better).

    For ``n_subsets`` random subsets S of ``round(alpha * n_train)`` training
    rows, a clone of ``estimator`` is refitted on S. For test row j, the
    prediction of the attributions is ``sum_{i in S} attributions[j, i]`` and
    the outcome is the refitted model's log-loss on ``(X_test[j], y_test[j])``.
    The score of row j is the Spearman correlation across subsets between the
    prediction and the **negative** loss: skinfluence's scores say "higher =
    more beneficial = lower loss", so attributions that predict well get a
    positive LDS (the convention of the TRAK paper and dattri, whose
    attributions are signed the same way). The LDS is the mean over test rows.

    Parameters
    ----------
    estimator : unfitted or fitted scikit-learn compatible classifier or regressor
        Cloned and refitted on every subset (``clone(estimator).fit``). A
        classifier needs ``predict_proba`` and ``classes_`` (the outcome is
        each test row's log-loss); a regressor's outcome is each test row's
        squared error. A skorch net works as is.
    X, y : the training data the attributions score.
    X_test, y_test : the test rows (their given labels).
    attributions : array or sparse matrix of shape (n_test, n_train), or dict of them
        E.g. :func:`~skinfluence.influence_matrix`'s output. A dict (name ->
        matrix) scores every entry against the same refits.
    n_subsets : int, default=50
    alpha : float in (0, 1), default=0.5
        Fraction of the training rows in each subset.
    random_state : int, RandomState, Generator or None
        Seeds the subsets (the estimator's own seed is the estimator's):
        subset s is ``rng.choice(n_train, round(alpha * n_train),
        replace=False)``, s = 0, 1, ..., from one generator ``rng``
        (``numpy.random.default_rng(random_state)`` for an int, so the
        subsets can be drawn again outside).
    aggregate : bool, default=False
        True: one correlation, between ``sum_{i in S} mean_j attributions[j, i]``
        and the refitted model's mean test log-loss.
    verbose : bool, default=False
        Progress bar over the refits (needs tqdm).

    Returns
    -------
    lds : float, or dict (name -> float) for a dict of attributions.
        Test rows whose loss is the same on every subset (no ranking) are
        left out of the mean, with a warning.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import influence_matrix
    >>> from skinfluence.metrics import linear_datamodeling_score
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=1000).fit(X[::2], y[::2])
    >>> M = influence_matrix(model, X[::2], y[::2], X[1::10], y[1::10],
    ...                      method="exact_hessian")
    >>> lds = linear_datamodeling_score(model, X[::2], y[::2], X[1::10], y[1::10], M,
    ...                                 n_subsets=20, random_state=0)
    >>> bool(lds > 0.2)
    True
    """
    n = check_n_rows(X, "X")
    n_test = check_n_rows(X_test, "X_test")
    regression = is_regressor(estimator)
    if regression:  # the outcome is the squared error of each test row
        y, y_test = check_real_targets(y, "y", n), check_real_targets(y_test, "y_test", n_test)
    else:
        y = check_labels(y, "y", n)
        y_test = check_labels(y_test, "y_test", n_test)
    if not isinstance(aggregate, (bool, np.bool_)):
        raise ValueError(f"aggregate must be True or False, got {aggregate!r}.")
    named = attributions if isinstance(attributions, dict) else {None: attributions}
    named = {k: _check_attributions(v, n_test, n, k) for k, v in named.items()}
    if not isinstance(n_subsets, numbers.Integral) or isinstance(n_subsets, bool) \
            or n_subsets < 3:
        raise ValueError(f"n_subsets must be an int >= 3, got {n_subsets!r}.")
    if not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a float in (0, 1), got {alpha!r}.")
    size = int(round(alpha * n))
    if not 1 <= size < n:
        raise ValueError(f"alpha={alpha} gives subsets of {size} of {n} rows; need 1..{n - 1}.")
    rng = np.random.default_rng(random_state) if isinstance(random_state, numbers.Integral) \
        and not isinstance(random_state, bool) else check_generator(random_state)
    masks = np.zeros((n_subsets, n), dtype=bool)
    losses = np.empty((n_subsets, n_test))
    for s in _progress(range(n_subsets), verbose):
        idx = np.sort(rng.choice(n, size=size, replace=False))
        masks[s, idx] = True
        if not regression and np.unique(y[idx]).size < 2:
            raise ValueError(
                f"alpha={alpha} gives subsets of {size} of {n} rows, and subset {s} holds a "
                f"single class ({np.asarray(y[idx])[0].tolist()!r}): a classifier cannot be "
                "refitted on it. Raise alpha (or give more training rows).")
        model = clone(estimator).fit(_safe_indexing(X, idx), y[idx])
        losses[s] = _squared_error_rows(model, X_test, y_test) if regression \
            else _log_loss_rows(model, X_test, y_test)
    out = {k: _lds(masks, losses, A, aggregate) for k, A in named.items()}
    return out[None] if None in out else out


def _check_attributions(A, n_test, n, name):
    where = "attributions" if name is None else f"attributions[{name!r}]"
    if sp.issparse(A):  # e.g. a top-k matrix stored sparse: the missing entries are zeros
        A = A.toarray()
    A = np.asarray(A, dtype=np.float64)
    if A.shape != (n_test, n):
        raise ValueError(f"{where} must have shape (n_test, n_train) = ({n_test}, {n}), "
                         f"got {A.shape}.")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{where} contains NaN or infinity.")
    return A


def _log_loss_rows(model, X_test, y_test):
    """Each test row's log-loss under ``model`` (a class it never saw: p clipped at 1e-15)."""
    proba = np.asarray(model.predict_proba(X_test), dtype=np.float64)
    classes = np.asarray(model.classes_)
    col = np.clip(np.searchsorted(classes, y_test), 0, len(classes) - 1)
    seen = classes[col] == y_test
    p = np.where(seen, proba[np.arange(len(y_test)), col], 0.0)
    return -np.log(np.clip(p, _EPS, 1.0))


def _squared_error_rows(model, X_test, y_test):
    """Each test row's squared error under a refitted regressor."""
    return (np.asarray(model.predict(X_test), dtype=np.float64).ravel() - y_test) ** 2


def _lds(masks, losses, A, aggregate):
    """Mean Spearman correlation between the subsets' summed attributions and -loss."""
    if aggregate:
        predicted = (masks @ A.mean(axis=0))[:, None]
        outcome = -losses.mean(axis=1)[:, None]
    else:
        predicted, outcome = masks @ A.T, -losses  # (n_subsets, n_test)
    rho = _column_spearman(predicted, outcome)
    bad = np.isnan(rho)
    if bad.all():
        raise ValueError("Every test row has the same loss on every subset (or the same "
                         "predicted sum): the LDS is undefined.")
    if bad.any():
        warnings.warn(f"{int(bad.sum())} test row(s) have a constant loss or prediction across "
                      "the subsets; they are left out of the LDS.", RuntimeWarning,
                      stacklevel=outside_stacklevel())
    return float(np.mean(rho[~bad]))


def _column_spearman(a, b):
    """Spearman correlation of each column of ``a`` with the same column of ``b`` (NaN if flat)."""
    ra, rb = rankdata(a, axis=0), rankdata(b, axis=0)
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    den = np.sqrt((ra ** 2).sum(axis=0) * (rb ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(axis=0) / den, np.nan)


def _progress(it, verbose):
    return progress(it, verbose=verbose, desc="refits", unit="fit")
