"""Does acting on the candidates help? A nested refit check on held-out folds.

The confident joint counts every row whose held-out probability of another
class is high; on clean but hard data those are the model's own errors, as
many as the flips of a noisy table. What tells the two apart is what removing
rows does to predictions on rows no model saw. The check must not see its own
selection: candidates chosen from every fold's held-out predictions and then
judged on those folds favour dropping the rows that disagree with the judged
rows (on a clean 200-row table this trimmed a third of the rows). So the check
is nested, the way nested cross-validation judges a tuned model:

1. for each outer split (training part ``T``, held-out part ``V``), the
   candidates of ``T`` are chosen from inner cross-fitted probabilities of
   ``T`` alone (``INNER_FOLDS`` folds), by the same per-class rule as the
   final candidates (:func:`skinfluence.cleaning._label_noise.class_candidates`);
2. a model refitted on ``T`` without a share ``a`` of them (each amount of
   ``AMOUNTS``) predicts ``V``, and so does the outer model fitted on all of
   ``T``: each row of ``V`` is a paired observation of the two 0-1 losses;
3. an amount is taken when the refitted models are right (given labels) on
   significantly more of the rows where the pair disagrees: an exact one-sided
   paired test (McNemar's, on the discordant rows) at ``ALPHA`` shared among
   the amounts (Bonferroni). Of the amounts that pass, the one with the
   largest net gain is acted on; none passing means acting on nothing.

Why the 0-1 loss on the given labels. Where a prediction changes from class a
to class b, the expected change of the 0-1 loss on labels flipped uniformly at
rate r among K classes is the change on the true labels times
``1 - r K / (K - 1)``: the same sign below ``r = (K - 1) / K``. A proper
score (log loss, Brier) is not sign-preserving: the model fitted to the noisy
labels is calibrated to them, and a proper score on noisy labels rewards that
calibration, so it would decline cleaning whatever the noise. Correcting the
held-out loss with the estimated noise matrix (backward correction) would
remove that bias only if the matrix were right; it is estimated by the
confident joint, which on a clean hard table counts the model's own errors as
noise, and the correction would then credit dropping the hard rows, the very
failure the check is there to stop. Noise that only moves rows into one class
breaks the sign argument too (the given labels favour predicting that
class), so there the check errs towards acting on nothing.

Regressors get the same nested design (:func:`regression_check`): candidates
are the outlying inner held-out residuals, and the paired observations are the
squared errors on ``V`` (the loss a least-squares model is fitted for), judged
by a one-sided paired t-test. Not absolute errors or a signed-rank test: on a
clean but skewed target (incomes) dropping the top of the tail moves the
predictions towards the conditional median, which lowers most absolute errors
and would pass such a test while the mean squared error grows. Measured on
clean log-normal targets (300 rows, 10 seeds, benchmarks/cleaning/
bench_nested_check.py): signed-rank tests on absolute or squared errors gave
p <= 0.042 in every seed, the t-test on squared errors p >= 0.29.
"""
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import binom, ttest_1samp
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold

from ..models._rows import splittable
from ..utils._compat import _check_method_params
from ._crossfit import _proba, _rows
from ._crossfit_regression import fit_clone
from ._label_noise import class_candidates
from ._target_noise import Z_THRESHOLD, robust_z

#: shares of the per-class candidate counts the check weighs
AMOUNTS = (0.5, 1.0)
#: one-sided level of the paired test, shared among the amounts
ALPHA = 0.1
#: folds of the inner cross-fitting that chooses each training part's candidates
INNER_FOLDS = 3


@dataclass
class CheckResult:
    """What the nested check found: the amount to act on (0: none) and its evidence."""

    amount: float
    better: int = 0  # held-out rows only the refitted models get right (at ``amount``)
    worse: int = 0  # held-out rows only the outer models get right
    discordant: int = 0  # held-out rows on which the two predictions differ
    p_value: float = 1.0
    per_amount: dict = field(default_factory=dict)  # amount -> (better, worse, p_value)


def make_check(estimator, plan, scored, *, seed=0, n_jobs=None):
    """``check() -> CheckResult`` over the cross-fitted splits, or None without held-out rows."""
    if not scored.held_out.any() or scored.splits is None:
        return None
    if scored.classes is None:  # a regressor
        return partial(regression_check, estimator, plan, scored.splits, seed=seed,
                       n_jobs=n_jobs)
    return partial(classification_check, estimator, plan, scored.splits, scored.proba,
                   scored.classes, seed=seed, n_jobs=n_jobs)


def classification_check(estimator, plan, splits, proba, classes, *, seed=0, n_jobs=None,
                         amounts=AMOUNTS, alpha=ALPHA):
    """The nested check of a classifier's candidates (module docstring).

    Parameters
    ----------
    estimator : unfitted classifier, cloned for every fit.
    plan : ScoringPlan
    splits : list of (training rows, held-out rows) index pairs, as cross-fitted.
    proba : ndarray of shape (n_samples, n_classes)
        Held-out probabilities of the outer models (their argmax is the
        outer prediction).
    classes : ndarray of shape (n_classes,)
    seed : int
        Seeds the inner folds.

    Returns
    -------
    CheckResult
    """
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_judge_split)(estimator, plan, train, val, proba, classes, amounts, seed + k)
        for k, (train, val) in enumerate(splits) if val is not None
    )
    tallies = {a: np.sum([part[a] for part in parts], axis=0) if parts else np.zeros(3, int)
               for a in amounts}
    return choose_amount(tallies, alpha)


def choose_amount(tallies, alpha=ALPHA):
    """The amount with the largest significant net gain, from ``{amount: (better, worse,
    discordant)}``; significance: ``P(Binomial(better + worse, 1/2) >= better) <= alpha / len``.

    Examples
    --------
    >>> r = choose_amount({0.5: (6, 1, 7), 1.0: (9, 2, 11)}, alpha=0.1)
    >>> r.amount, round(r.p_value, 4)
    (1.0, 0.0327)
    >>> choose_amount({1.0: (8, 3, 11)}, alpha=0.1).amount  # P = 0.113
    0.0
    """
    level = alpha / max(len(tallies), 1)
    per_amount, best = {}, CheckResult(amount=0.0)
    for amount, (better, worse, discordant) in sorted(tallies.items()):
        better, worse = int(better), int(worse)
        p = float(binom.sf(better - 1, better + worse, 0.5)) if better + worse else 1.0
        per_amount[amount] = (better, worse, p)
        if p <= level and better > worse and \
                (best.amount == 0 or better - worse > best.better - best.worse):
            best = CheckResult(amount=amount, better=better, worse=worse,
                               discordant=int(discordant), p_value=p)
    if best.amount == 0 and per_amount:  # report the evidence of the full candidates
        top = max(per_amount)
        best = CheckResult(amount=0.0, better=per_amount[top][0], worse=per_amount[top][1],
                           discordant=int(tallies[top][2]), p_value=per_amount[top][2])
    best.per_amount = per_amount
    return best


def _judge_split(estimator, plan, train, val, proba, classes, amounts, seed):
    """{amount: (better, worse, discordant)} on one outer split."""
    none = {a: np.zeros(3, dtype=int) for a in amounts}
    if not np.all(np.isfinite(proba[val])):
        return none
    inner = _inner_proba(estimator, plan, train, classes, seed)
    if inner is None:
        return none
    y_idx = np.searchsorted(classes, plan.y[train])
    before = classes[np.argmax(proba[val], axis=1)]
    y_val = plan.y[val]
    out = {}
    for amount in amounts:
        drop = class_candidates(inner, y_idx, len(classes), amount)
        if not drop.any():
            out[amount] = np.zeros(3, dtype=int)
            continue
        keep = train[~drop]
        if np.unique(plan.y[keep]).size < 2:
            out[amount] = np.zeros(3, dtype=int)
            continue
        after = np.asarray(_fit(estimator, plan, keep).predict(_rows(plan.X, val)))
        differ = before != after
        out[amount] = np.array([np.sum(after[differ] == y_val[differ]),
                                np.sum(before[differ] == y_val[differ]), differ.sum()])
    return out


def _inner_proba(estimator, plan, train, classes, seed):
    """Held-out probabilities of the rows of ``train`` from models fitted inside it."""
    y = plan.y[train]
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2 or len(y) < 2 * INNER_FOLDS:
        return None
    splitter = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed) \
        if counts.min() >= INNER_FOLDS else KFold(INNER_FOLDS, shuffle=True, random_state=seed)
    P = np.full((len(train), len(classes)), np.nan)
    for inner_train, inner_val in splitter.split(np.zeros(len(y)), y):
        if np.unique(y[inner_train]).size < 2:
            return None
        model = _fit(estimator, plan, train[inner_train])
        P[inner_val] = _proba(model, _rows(plan.X, train[inner_val]),
                              np.asarray(model.classes_), classes)
    return None if np.isnan(P).any() else P


def regression_check(estimator, plan, splits, *, seed=0, n_jobs=None, alpha=ALPHA):
    """The nested check of a regressor's candidates (outlying inner held-out residuals).

    Each outer split's training part is cross-fitted inside itself; rows whose
    inner held-out residual has a robust z above ``Z_THRESHOLD`` are its
    candidates; the models refitted without them and the models fitted on the
    whole part predict the held-out rows; the paired absolute errors go to a
    one-sided Wilcoxon signed-rank test at ``alpha``. Returns a
    :class:`CheckResult` with ``amount`` 1.0 (act) or 0.0, ``better`` /
    ``worse`` the held-out rows whose absolute error shrank / grew.
    """
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_judge_regression_split)(estimator, plan, train, val, seed + k)
        for k, (train, val) in enumerate(splits) if val is not None
    )
    gains = np.concatenate([p for p in parts if p is not None] or [np.zeros(0)])
    better, worse = int(np.sum(gains > 0)), int(np.sum(gains < 0))
    p = 1.0
    if better + worse and len(gains) > 1 and np.ptp(gains) > 0:
        p = float(ttest_1samp(gains, 0.0, alternative="greater").pvalue)
    acted = p <= alpha and better > worse
    return CheckResult(amount=1.0 if acted else 0.0, better=better, worse=worse,
                       discordant=better + worse, p_value=p,
                       per_amount={1.0: (better, worse, p)})


def _judge_regression_split(estimator, plan, train, val, seed):
    """Per held-out row, squared error of the full-part model minus that of the refit."""
    if len(train) < 2 * INNER_FOLDS:
        return None
    inner = np.empty(len(train))
    for inner_train, inner_val in KFold(INNER_FOLDS, shuffle=True,
                                        random_state=seed).split(np.zeros(len(train))):
        inner[inner_val] = _predict(estimator, plan, train[inner_train], train[inner_val])
    drop = robust_z(plan.y[train] - inner) > Z_THRESHOLD
    if not drop.any() or (~drop).sum() < 2:
        return None
    before = _predict(estimator, plan, train, val)
    after = _predict(estimator, plan, train[~drop], val)
    y_val = plan.y[val]
    return (y_val - before) ** 2 - (y_val - after) ** 2


def _predict(estimator, plan, train, rows):
    params = _check_method_params(splittable(plan.X), plan.fit_params, train)
    model = fit_clone(estimator, _rows(plan.X, train), plan.y[train], params)
    return np.asarray(model.predict(_rows(plan.X, rows)), dtype=np.float64).ravel()


def _fit(estimator, plan, rows):
    params = _check_method_params(splittable(plan.X), plan.fit_params, rows)
    return clone(estimator).fit(_rows(plan.X, rows), plan.y[rows], **params)
