"""What both label-issue finders share: the cross-fitted scoring and the flagged rows.

:func:`~skinfluence.find_label_issues` (classification) and its regression route
score the rows the same way and return the same mask or ranked indices.
"""
import numbers

import numpy as np
from sklearn.utils import check_random_state

from ..methods import METHODS
from ..objectives import Utility
from ..utils._params import resolve
from ..utils._validation import check_split_groups
from ._crossfit import ScoringPlan


def cross_fit(score, estimator, X, y, sw, groups, *, method, cv, trusted, random_state, n_jobs,
              batch_size, adapter_options):
    """(plan, scored): the validation-loss influence of every row, cross-fitted by ``score``
    (classification or regression rows), as both label-issue finders use it."""
    plan = ScoringPlan(X=X, y=y, fit_params={} if sw is None else {"sample_weight": sw},
                       sample_weight=sw, sensitive=None,
                       groups=None if groups is None else check_split_groups(groups, len(y)))
    rng = check_random_state(random_state)
    method = None if method is None else resolve(method, METHODS, "method")
    scored = score(
        estimator, plan, method=method, objective=Utility(), cv=cv,
        trusted=trusted, seed=int(rng.randint(np.iinfo(np.int32).max)), n_jobs=n_jobs,
        batch_size=batch_size, adapter_options=adapter_options,
    )
    return plan, scored


def select_flagged(issues, n_issues, active, return_indices, auto=None):
    """The first rows of ``issues.ranked``, as many as ``n_issues`` says: mask or indices.

    With ``n_issues="auto"``: the rows of the mask ``auto`` when given (most likely
    wrong first), else as many as ``issues.noise_rate`` estimates.
    """
    if n_issues == "auto" and auto is not None:
        ranked = issues.ranked[auto[issues.ranked]]
    else:
        if n_issues == "auto":
            count = round(issues.noise_rate * active.sum())
        elif isinstance(n_issues, numbers.Integral):
            count = n_issues
        else:
            count = int(np.floor(n_issues * active.sum()))
        ranked = issues.ranked[:int(count)]
    if return_indices:
        return ranked
    mask = np.zeros(len(active), dtype=bool)
    mask[ranked] = True
    return mask


def check_n_issues(n_issues, n_rows):
    if isinstance(n_issues, str) and n_issues == "auto":
        return
    if isinstance(n_issues, numbers.Integral) and not isinstance(n_issues, bool):
        if 0 <= n_issues <= n_rows:
            return
    elif isinstance(n_issues, numbers.Real) and 0 < n_issues < 1:
        return
    raise ValueError(
        f"n_issues must be 'auto', an int in [0, {n_rows}] or a float in (0, 1); "
        f"got {n_issues!r}."
    )
