"""Robust accuracy: the accuracy under the budgeted attack computed against the model itself."""
import numbers

import numpy as np
from sklearn.utils.validation import check_array

from ..utils._validation import check_labels, check_n_rows, check_sample_weight

_DUAL = {"l2": 2, "linf": 1}  # the dual norm's order: ||w||_2 for l2, ||w||_1 for linf


def robust_accuracy(estimator, X, y, *, epsilon, norm="l2", steps=20, sample_weight=None):
    """Accuracy under the worst-case perturbation ``||delta|| <= epsilon`` of each row.

    The attack is computed against ``estimator`` itself (adaptive), not
    transferred from another model.

    - Linear classifiers (anything exposing ``coef_`` / ``intercept_``, also
      inside an ``Influence*`` meta-estimator or a search's ``best_estimator_``):
      **exact**. A row of label y is robustly correct iff, for every other
      class k, ``f_y(x) - f_k(x) > epsilon * ||w_y - w_k||_dual``
      (binary: ``s (w.x + b) > epsilon ||w||_dual``, s = +-1), with the dual
      norm l2 for an l2 ball and l1 for an L-infinity ball: the ball can lower
      a linear margin by exactly that much, and no more.
    - Networks (skorch nets, ``(module, loss)``): ``steps`` of PGD within the
      ball against the net's own loss (:class:`~skinfluence.AdversarialRobustness`'s
      attack); an upper bound of the true robust accuracy, as every attack is.

    Parameters
    ----------
    estimator : fitted classifier
    X : array-like of shape (n_samples, n_features)
        In the estimator's input units (a Pipeline's preprocessing is not
        looked through: pass the final step and the transformed X).
    y : array-like of shape (n_samples,)
    epsilon : float >= 0
        Radius of the ball (0: plain accuracy, ties counted as errors).
    norm : {"l2", "linf"}, default="l2"
    steps : int, default=20
        PGD steps for networks (1: FGSM); unused for linear models.
    sample_weight : array-like of shape (n_samples,), default=None
        Finite, non-negative, not all zero.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.metrics import robust_accuracy
    >>> X = np.array([[-2.0], [-0.5], [0.5], [2.0]])
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> robust_accuracy(model, X, [0, 0, 1, 1], epsilon=1.0)
    0.5
    """
    _check_budget(epsilon, norm)
    estimator = _final_model(estimator)
    loader = hasattr(X, "dataset") and hasattr(X, "batch_size")  # len: batches, not rows
    n_rows = len(X.dataset) if loader else check_n_rows(X, "X")
    y = check_labels(y, "y", n_rows)
    sample_weight = check_sample_weight(sample_weight, n_rows, positive_sum=True)
    if hasattr(estimator, "coef_"):
        correct = _linear_robust_correct(estimator, X, y, float(epsilon), norm)
    else:
        correct = _attacked_correct(estimator, X, y, float(epsilon), norm, steps)
    return float(np.average(correct, weights=sample_weight))


def _check_budget(epsilon, norm):
    if not (isinstance(epsilon, numbers.Real) and epsilon >= 0):
        raise ValueError(f"epsilon must be a number >= 0, got {epsilon!r}.")
    if norm not in _DUAL:
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}.")


def _final_model(estimator):
    """The fitted model that predicts: through ``estimator_`` / ``best_estimator_``."""
    from ..models import _is_torch_model

    if hasattr(estimator, "steps") and hasattr(estimator, "named_steps"):
        raise TypeError(
            "robust_accuracy measures the attack in the final model's input space; for a "
            "Pipeline pass pipeline[-1] and pipeline[:-1].transform(X)."
        )
    while not hasattr(estimator, "coef_") and not _is_torch_model(estimator):
        inner = getattr(estimator, "estimator_", None) or getattr(estimator,
                                                                  "best_estimator_", None)
        if inner is None:
            raise TypeError(
                f"robust_accuracy supports linear classifiers (with coef_), skorch nets and "
                f"(module, loss) pairs, or meta-estimators around them; got "
                f"{type(estimator).__name__}."
            )
        estimator = inner
    return estimator


def _linear_robust_correct(estimator, X, y, epsilon, norm):
    X = check_array(X, accept_sparse=True, dtype=np.float64)
    W = np.asarray(estimator.coef_.toarray() if hasattr(estimator.coef_, "toarray")
                   else estimator.coef_, dtype=np.float64)
    b = np.broadcast_to(np.asarray(getattr(estimator, "intercept_", 0.0), np.float64),
                        (W.shape[0],))
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features, the estimator {W.shape[1]}.")
    classes = np.asarray(estimator.classes_)
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    known = classes[idx] == y  # a label the model cannot predict is never correct
    F = np.asarray(X @ W.T) + b
    order = _DUAL[norm]
    if W.shape[0] == 1:  # binary: one logit, the score of classes_[1]
        s = np.where(idx == 1, 1.0, -1.0)
        return known & (s * F[:, 0] > epsilon * np.linalg.norm(W[0], ord=order))
    pair = np.linalg.norm(W[:, None, :] - W[None, :, :], ord=order, axis=2)  # (K, K)
    rows = np.arange(len(y))
    slack = F[rows, idx][:, None] - F - epsilon * pair[idx]
    slack[rows, idx] = np.inf
    return known & (slack > 0).all(axis=1)


def _attacked_correct(estimator, X, y, epsilon, norm, steps):
    from ..models import make_adapter
    from ..objectives import AdversarialRobustness

    adapter = make_adapter(estimator)
    Xt = adapter.check_X(X, "X")
    classes = np.asarray(adapter.classes_)
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    known = classes[idx] == y
    if epsilon > 0:
        attack = AdversarialRobustness(epsilon=epsilon, norm=norm, steps=steps)
        Xt = adapter.attack(Xt, idx, attack)
    return known & (adapter.predict_proba(Xt).argmax(axis=1) == idx)


class RobustAccuracyScorer:
    """Scorer ``(estimator, X, y) -> robust_accuracy(...)`` for ``GridSearchCV``.

    Greater is better. See :func:`robust_accuracy` for the parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.metrics import RobustAccuracyScorer
    >>> X = np.array([[-2.0], [-0.5], [0.5], [2.0]])
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> RobustAccuracyScorer(epsilon=0.25)(model, X, [0, 0, 1, 1])
    1.0
    """

    def __init__(self, epsilon, norm="l2", steps=20):
        _check_budget(epsilon, norm)
        self.epsilon, self.norm, self.steps = epsilon, norm, steps

    def __call__(self, estimator, X, y, sample_weight=None):
        return robust_accuracy(estimator, X, y, epsilon=self.epsilon, norm=self.norm,
                               steps=self.steps, sample_weight=sample_weight)

    def __repr__(self):
        return (f"RobustAccuracyScorer(epsilon={self.epsilon!r}, norm={self.norm!r}, "
                f"steps={self.steps!r})")


def robust_accuracy_scorer(*, epsilon, norm="l2", steps=20):
    """A ``GridSearchCV`` scorer of :func:`robust_accuracy` (greater is better).

    Parameters
    ----------
    epsilon : float >= 0
    norm : {"l2", "linf"}, default="l2"
    steps : int, default=20
        PGD steps for networks.

    Returns
    -------
    scorer : RobustAccuracyScorer

    Examples
    --------
    >>> from skinfluence.metrics import robust_accuracy_scorer
    >>> robust_accuracy_scorer(epsilon=0.5)
    RobustAccuracyScorer(epsilon=0.5, norm='l2', steps=20)
    """
    return RobustAccuracyScorer(epsilon, norm, steps)


def robustness_scoring(*, epsilon, norm="l2", steps=20):
    """Multi-metric scoring for ``GridSearchCV``: clean and robust accuracy.

    Use with ``refit="robust_accuracy"`` (or a callable choosing the
    trade-off); ``cv_results_`` then has ``mean_test_accuracy`` and
    ``mean_test_robust_accuracy``.

    Parameters
    ----------
    epsilon : float >= 0
    norm : {"l2", "linf"}, default="l2"
    steps : int, default=20

    Returns
    -------
    scoring : dict

    Examples
    --------
    >>> from skinfluence.metrics import robustness_scoring
    >>> sorted(robustness_scoring(epsilon=0.5))
    ['accuracy', 'robust_accuracy']
    """
    return {"accuracy": "accuracy",
            "robust_accuracy": robust_accuracy_scorer(epsilon=epsilon, norm=norm, steps=steps)}
