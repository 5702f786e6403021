"""Does acting on the candidate flags help? A refit check on the cross-fitted folds.

The confident joint counts every row whose held-out probability of another
class is high; on clean but hard data (a credit table a linear model gets 75%
right) those are the model's own errors, and they are as many as the
flips of a noisy table. What tells the two apart is what removing the rows
does to predictions on rows no model saw: each fold's model is refitted
without the candidates in its training part, and its held-out predictions are
compared with those of the fold's original model on the given labels.

Counted on the given labels, the check needs no trusted labels. Where a
prediction changes from class a to class b, the expected gain on labels
flipped uniformly at rate r among K classes is the gain on the true labels
times ``1 - r K / (K - 1)``: the same sign below ``r = (K - 1) / K``. Noise
that only moves rows into one class breaks this (the given labels then favour
predicting that class), so there the check errs towards acting on nothing.
"""
from functools import partial

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone

from ..utils._compat import _check_method_params
from ._crossfit import _rows
from ..models._rows import splittable


def make_check(estimator, plan, scored, *, n_jobs=None):
    """``check(drop) -> (better, worse, discordant)`` over the cross-fitted splits, or None."""
    if not scored.held_out.any():
        return None
    return partial(heldout_gain, estimator, plan, scored.splits, scored.proba, scored.classes,
                   n_jobs=n_jobs)


def heldout_gain(estimator, plan, splits, proba, classes, drop, *, n_jobs=None):
    """Net held-out rows predicted right after refitting each fold without ``drop``.

    Parameters
    ----------
    estimator : unfitted estimator, cloned for every split.
    plan : ScoringPlan
    splits : list of (train, held-out) index pairs, as cross-fitted.
    proba : ndarray of shape (n_samples, n_classes)
        Held-out probabilities of the original folds' models.
    classes : ndarray of shape (n_classes,)
    drop : ndarray of bool, shape (n_samples,)
        The candidate flags.

    Returns
    -------
    better : int
        Held-out rows only the refitted models predict right (given labels).
    worse : int
        Held-out rows only the original models predict right.
    discordant : int
        Held-out rows on which the two disagree (``better + worse`` plus
        rows both predict wrong, which only happen with more than 2 classes).
    """
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_split_gain)(estimator, plan, train, val, proba, classes, drop)
        for train, val in splits if val is not None
    )
    return tuple(int(sum(part[k] for part in parts)) for k in range(3))


def _split_gain(estimator, plan, train, val, proba, classes, drop):
    keep = train[~drop[train]]
    if np.unique(plan.y[keep]).size < 2 or not np.all(np.isfinite(proba[val])):
        return 0, 0, 0
    params = _check_method_params(splittable(plan.X), plan.fit_params, keep)
    model = clone(estimator).fit(_rows(plan.X, keep), plan.y[keep], **params)
    y_val = plan.y[val]
    before = classes[np.argmax(proba[val], axis=1)]
    after = np.asarray(model.predict(_rows(plan.X, val)))
    differ = before != after
    return (int(np.sum(after[differ] == y_val[differ])),
            int(np.sum(before[differ] == y_val[differ])), int(differ.sum()))
