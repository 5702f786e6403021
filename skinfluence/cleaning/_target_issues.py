"""``find_label_issues`` for a regressor: corrupted targets from cross-fitted residuals.

The same scoring as ``InfluenceTrimmer(regressor, fraction="auto")``: K folds,
each clone scored against its held-out rows whose residual is not a robust
outlier, and the rows ranked by the robust z of their held-out residual
(:mod:`skinfluence.cleaning._target_noise`).
"""
import numpy as np
from sklearn.utils.validation import check_X_y, column_or_1d

from ._crossfit_regression import score_regression_rows
from ..models._rows import check_net_rows, n_rows, takes_net_rows
from ._target_noise import find_target_issues
from ..utils._validation import check_sample_weight
from ._flagging import check_n_issues, cross_fit, select_flagged


def find_regression_issues(estimator, X, y, *, method, n_issues, cv, trusted, return_indices,
                           sample_weight, batch_size, adapter_options, n_jobs, random_state,
                           groups=None):
    """Mask (or ranked indices) of the likely corrupted targets; see ``find_label_issues``."""
    if takes_net_rows(estimator, X):  # a network's images, signals or dict of arrays
        X, y = check_net_rows(X, "X", estimator), column_or_1d(y, warn=True)
        if len(y) != n_rows(X):
            raise ValueError(f"y has {len(y)} targets, X has {n_rows(X)} rows.")
    else:
        X, y = check_X_y(X, y, accept_sparse="csr", y_numeric=True)
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    sw = check_sample_weight(sample_weight, n)
    active = np.ones(n, dtype=bool) if sw is None else sw > 0
    if active.sum() < 2:
        raise ValueError("find_label_issues needs at least 2 rows of positive weight.")
    check_n_issues(n_issues, int(active.sum()))
    _, scored = cross_fit(score_regression_rows, estimator, X, y, sw, groups, method=method,
                          cv=cv, trusted=trusted, random_state=random_state, n_jobs=n_jobs,
                          batch_size=batch_size, adapter_options=adapter_options)
    issues = find_target_issues(scored.scores, scored.proba[:, 0], y, active)
    return select_flagged(issues, n_issues, active, return_indices)
