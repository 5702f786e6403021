"""Reaching a requested fairness gap: trim, relabel or reweight in rounds, re-scoring.

One-shot scores describe the first removal, not the hundredth: trimming a
fixed fraction by them overshoots parity and the gap grows again. Here the
action has one knob (how many rows are trimmed or relabeled; how strongly
the scores tilt the weights) and the knob is searched until the validation
gap reaches the target:

- the **validation gap** is the fairness metric of hard predictions
  (``skinfluence.metrics.fairness_gap``) of models that did not train on the
  rows they predict: the cross-fitted folds' models, each refitted on its
  training part with the action applied and predicting its held-out part
  (every row, trimmed or not: the gap is the population's), pooled; or one
  model on all training rows predicting the given ``X_val``;
- **trim / relabel**: rows are acted on in a removal order that grows in
  rounds. Evaluating a count beyond the current order first extends it with
  the lowest-scoring remaining rows, scored by the models of the deepest
  state evaluated so far (re-scoring); a smaller count reuses the prefix, so
  every count always means the same rows and the search can bracket;
- **reweight**: ``w = exp(lam * z)`` normalised to mean 1 and clipped at
  ``max_weight``, z the standardised scores clipped at ``clip``; the search
  is over ``lam`` >= 0 (``lam = 0``: unweighted);
- the **search** aims at the middle of ``[target - tolerance, target]`` on
  the signed gap of the pair of groups (and rate) that was largest before
  acting, so passing parity shows as a negative value: secant steps until
  the target is bracketed, then regula falsi with bisection safeguards. It
  stops at the first knob whose gap is in the band (and not past parity by
  more than ``tolerance``), or after ``max_rounds`` evaluations with the best
  knob seen. A deeper knob whose gap is wider than the shallower bracket's
  by more than ``tolerance`` bounds the search from above (the minimum lies
  before it: with equalized odds another rate or pair takes over);
- **both objectives** (``utility_slack`` < 1): the folds' models also score
  every row on the validation loss, and each step is the constrained one of
  :mod:`skinfluence.estimators._utility_constraint` (rows / tilt by the fairness score
  plus the smallest multiple of the utility score that keeps the predicted
  loss within the budget).
"""
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone

from ..utils._compat import _check_method_params
from ..cleaning._crossfit import _rows, _splits
from ..models._rows import splittable
from ..metrics import fairness_gap
from ..influence import score_validated
from ..objectives import Utility
from ._utility_constraint import combined_tilt, lowest_combined, standardised


@dataclass
class TargetPath:
    """What the search found: the knob, the acted-on rows or weights, the path."""

    knob: float
    acted: np.ndarray  # (n,) bool: rows trimmed / relabeled (all False for reweighting)
    weights: np.ndarray  # (n,) influence weights (ones for trim / relabel)
    scores: np.ndarray  # (n,) scores of the deepest state evaluated (NaN: unscored)
    gap: float  # validation gap at the knob
    reached: bool  # gap within [target - tolerance, target], parity not passed
    history: list = field(default_factory=list)  # one dict per evaluation


def reach_target_gap(estimator, plan, *, action, objective, method, target, tolerance,
                     max_rounds, cv, seed, clip=3.0, max_weight=2.0, scores=None, n_jobs=None,
                     batch_size=4096, adapter_options=None, utility_slack=None, log=None):
    """Search the action's knob until the validation gap reaches ``target`` (module doc)."""
    n = plan.y.shape[0]
    active = np.ones(n, dtype=bool) if plan.sample_weight is None else plan.sample_weight > 0
    folds = list(_splits(plan, np.flatnonzero(active), cv, seed))
    pos = _positive_label(objective, np.unique(plan.y[active]))
    # slack >= 1 admits the fairness-only step: no utility scores are needed
    constrained = utility_slack is not None and utility_slack < 1
    evaluate = _Evaluator(estimator, plan, folds, objective, method, pos, action, n_jobs,
                          dict(batch_size=batch_size, adapter_options=adapter_options or {},
                               seed=seed), with_utility=constrained)
    gap0, pred0, (scores0, utility) = evaluate(np.zeros(n, bool), np.ones(n),
                                               need_scores=scores is None or constrained)
    frontier = scores0 if scores is None else np.asarray(scores, dtype=np.float64)
    pair = _largest_pair(objective.gap_kind, evaluate.y_val, pred0, evaluate.s_val, pos)
    history = [dict(round=0, knob=0.0, gap=gap0, signed=gap0)]
    _log(log, f"round 0: validation gap {gap0:.4f} (target {target})")
    if gap0 <= target:
        return TargetPath(0.0, np.zeros(n, bool), np.ones(n), frontier, gap0, True, history)

    order = []  # trim / relabel: rows in the order they are acted on
    eligible = active & np.isfinite(frontier)
    budget = {c: int(np.sum(eligible & (plan.y == c))) // 2 for c in np.unique(plan.y[active])}
    z = _standardised(frontier, clip)
    if constrained and action == "reweight":
        f_std, u_std = standardised(frontier), standardised(utility)

    def state(knob):
        if action == "reweight":
            if not constrained:
                return np.zeros(n, bool), _tilted_weights(z, knob, max_weight)
            w, _ = combined_tilt(f_std, u_std, knob, utility_slack, lambda c, lam: _tilted_weights(
                _standardised(np.where(np.isfinite(frontier), c, np.nan), clip), lam,
                max_weight))
            return np.zeros(n, bool), w
        m = int(knob)
        if m > len(order):  # extend with the lowest scores of the deepest state
            taken = np.zeros(n, bool)
            taken[order] = True
            # never act on more than half of a class: the folds must keep both classes
            room = {c: budget[c] - np.sum(plan.y[order] == c) for c in budget}
            order.extend(_extension(frontier, utility, eligible & ~taken, m - len(order),
                                    plan.y, room, utility_slack if constrained else None))
        acted = np.zeros(n, bool)
        acted[order[:m]] = True
        return acted, np.ones(n)

    aim = target - tolerance / 2
    lo, hi = (0.0, gap0), None  # (knob, signed gap) with signed > target / <= target
    n_max = sum(budget.values())
    knob = max(1.0, round(0.02 * n)) if action != "reweight" else 0.5
    best = None
    for r in range(1, max_rounds + 1):
        if action != "reweight":
            knob = float(min(max(int(round(knob)), 1), n_max))
        acted, weights = state(knob)
        deepest = action != "reweight" and int(knob) == len(order)
        gap, pred, (new_scores, new_utility) = evaluate(acted, weights, need_scores=deepest)
        signed = pair(pred)
        if deepest:
            frontier = np.where(np.isfinite(new_scores), new_scores, frontier)
            if constrained:
                utility = np.where(np.isfinite(new_utility), new_utility, utility)
        signed_gap = gap if signed >= 0 else -gap  # past parity of the first pair: negative
        history.append(dict(round=r, knob=knob, gap=gap, signed=signed_gap))
        _log(log, f"round {r}: knob {knob:.4g}, validation gap {gap:.4f}")
        ok = target - tolerance <= gap <= target and signed_gap >= -tolerance
        if ok:
            return TargetPath(knob, acted, weights, frontier, gap, True, history)
        if best is None or _better(gap, signed_gap, target, *best[:2]):
            best = (gap, signed_gap, knob, acted, weights)
        inside = knob > lo[0] and (hi is None or knob < hi[0])
        # deeper but wider by more than the tolerance: the gap's minimum lies before this
        # knob (equalized odds: the other rate or group pair took over), so it bounds the
        # search from above as a knob past the target does
        rose = lo[0] > 0 and gap > lo[1] + tolerance
        if signed_gap > target and inside and not rose:
            lo = (knob, signed_gap)
        elif inside:
            hi = (knob, signed_gap)
        knob = _next_knob(lo, hi, history, aim, action)
        tried = [h["knob"] for h in history]
        if action != "reweight" and min(max(int(round(knob)), 1), n_max) in tried:
            break  # adjacent counts: nothing left between them to try
        if action == "reweight" and hi is not None and hi[0] - lo[0] < 1e-3:
            break
    gap, signed_gap, knob, acted, weights = best
    return TargetPath(knob, acted, weights, frontier, gap, False, history)


def _extension(scores, utility, eligible, k, y, room, slack):
    """The next ``k`` rows to act on, at most ``room[c]`` of class c.

    Without a utility constraint (``slack`` None): the lowest fairness
    scores. With one: the constrained step of
    :func:`skinfluence.estimators._utility_constraint.lowest_combined`.
    """
    cand = np.flatnonzero(eligible)

    def cap(rows):  # rows in preference order -> those within their class's room
        rank = np.zeros(len(rows), dtype=int)
        for c in room:
            in_c = y[rows] == c
            rank[in_c] = np.arange(in_c.sum())
        return rank < np.array([room[c] for c in y[rows]])

    if slack is None:
        rows = cand[np.argsort(scores[cand], kind="stable")]
        return list(rows[cap(rows)][:k])
    cand = cand[np.isfinite(utility[cand])]
    f, u = standardised(scores), standardised(utility)
    fair_only = cand[np.argsort(f[cand], kind="stable")]
    fair_only = fair_only[cap(fair_only)][:k]
    rows, _ = lowest_combined(f, u, k, cand, slack * max(float(np.sum(u[fair_only])), 0.0),
                              cap=cap)
    return list(rows)


def _next_knob(lo, hi, history, aim, action):
    """Secant step toward ``aim`` until bracketed, then safeguarded regula falsi."""
    if hi is None:  # extrapolate from the last two evaluations beyond lo
        pts = sorted({(h["knob"], h["signed"]) for h in history if h["signed"] > aim})[-2:]
        (k0, g0), (k1, g1) = pts if len(pts) == 2 else ((0.0, history[0]["signed"]), pts[-1])
        slope = (g1 - g0) / (k1 - k0) if k1 > k0 else 0.0
        step = (g1 - aim) / -slope if slope < 0 else k1
        return k1 + min(max(step, 0.25 * max(k1, 1.0)), 3.0 * max(k1, 1.0))
    (k0, g0), (k1, g1) = lo, hi
    guess = k0 + (g0 - aim) * (k1 - k0) / (g0 - g1) if g0 > g1 else (k0 + k1) / 2
    width = k1 - k0
    return min(max(guess, k0 + 0.1 * width), k1 - 0.1 * width)


def _better(gap, signed, target, best_gap, best_signed):
    """Prefer knobs that meet the target (and then a gap nearer it), else smaller gaps."""
    meets, best_meets = gap <= target and signed >= 0, best_gap <= target and best_signed >= 0
    if meets != best_meets:
        return meets
    return gap > best_gap if meets else gap < best_gap


def _standardised(scores, clip):
    finite = np.isfinite(scores)
    z = np.zeros(len(scores))
    if finite.sum() > 1 and scores[finite].std() > 0:
        z[finite] = (scores[finite] - scores[finite].mean()) / scores[finite].std()
    return z if clip is None else np.clip(z, -clip, clip)


def _tilted_weights(z, lam, max_weight):
    """``exp(lam z)`` with mean 1, clipped at ``max_weight`` (z = 0 rows: weight ~1)."""
    w = np.exp(lam * z - np.max(lam * z))
    w = w / w.mean()
    return w if max_weight is None else np.minimum(w, max_weight)


def _positive_label(objective, classes):
    positive = getattr(objective, "positive_class", None)
    if positive is not None:
        return positive
    if len(classes) != 2:
        raise ValueError(f"target_gap on a multiclass problem needs the objective's "
                         f"positive_class= (one of {classes.tolist()}).")
    return classes[1]


def _largest_pair(kind, y, pred, s, pos):
    """A function pred -> signed gap of the pair of groups (and rate) largest in ``pred``."""
    hit = pred == pos
    cells = [np.ones(len(y), bool)] if kind == "demographic_parity" else [y == pos, y != pos]
    best = None
    for rows in cells:
        rates = {g: hit[rows & (s == g)].mean() for g in np.unique(s) if np.any(rows & (s == g))}
        a, b = max(rates, key=rates.get), min(rates, key=rates.get)
        if best is None or rates[a] - rates[b] > best[0]:
            best = (rates[a] - rates[b], rows & (s == a), rows & (s == b))
    _, in_a, in_b = best
    return lambda p: float((p[in_a] == pos).mean() - (p[in_b] == pos).mean())


class _Evaluator:
    """Fit the folds' models with an action applied; pooled held-out gap and new scores."""

    def __init__(self, estimator, plan, folds, objective, method, pos, action, n_jobs, options,
                 with_utility=False):
        self.estimator, self.plan, self.folds = estimator, plan, folds
        self.with_utility = with_utility
        self.objective, self.method, self.pos, self.action = objective, method, pos, action
        self.n_jobs, self.options = n_jobs, options
        if plan.X_val is not None:
            self.y_val, self.s_val = np.asarray(plan.y_val), np.asarray(plan.sensitive_val)
        else:
            val = np.concatenate([v for _, v in folds])
            self.val = val
            self.y_val, self.s_val = plan.y[val], plan.sensitive[val]
        seeds = np.random.RandomState(options["seed"]).randint(2**31 - 1, size=len(folds))
        self.seeds = [int(s) for s in seeds]

    def __call__(self, acted, weights, need_scores):
        y_fit = self.plan.y
        if self.action == "relabel":
            classes = np.unique(self.plan.y)
            y_fit = np.where(acted, np.where(self.plan.y == classes[0], classes[1], classes[0]),
                             self.plan.y)
        keep = ~acted if self.action == "trim" else np.ones(len(acted), bool)
        out = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold)(self, train[keep[train]], val, y_fit, weights, need_scores, seed)
            for (train, val), seed in zip(self.folds, self.seeds))
        pred = np.concatenate([o[0] for o in out])
        gap = fairness_gap(self.objective.gap_kind, self.y_val, pred, self.s_val,
                           pos_label=self.pos)
        scores = (None, None)
        if need_scores:
            scores = tuple(self._pooled([o[k] for o in out], keep)
                           if out[0][k] is not None else None for k in (1, 2))
        return gap, pred, scores

    def _pooled(self, per_fold, keep):
        """Each row's mean score over the folds' models that trained on it (NaN: none)."""
        total, count = np.zeros(len(keep)), np.zeros(len(keep))
        for (train, _), values in zip(self.folds, per_fold):
            tr = train[keep[train]]
            total[tr] += values
            count[tr] += 1
        with np.errstate(invalid="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _fold(ev, train, val, y_fit, weights, need_scores, seed):
    """One fold's model on ``train`` with the action applied: (held-out pred, scores)."""
    plan = ev.plan
    params = _check_method_params(splittable(plan.X), plan.fit_params, train)
    sw = weights[train] if ev.action == "reweight" else None
    if params.get("sample_weight") is not None:
        sw = params["sample_weight"] if sw is None else sw * params["sample_weight"]
    if sw is not None:
        params["sample_weight"] = sw
    X_train = _rows(plan.X, train)
    model = clone(ev.estimator).fit(X_train, y_fit[train], **params)
    if val is None:
        X_v, y_v, s_v = plan.X_val, plan.y_val, plan.sensitive_val
    else:
        X_v, y_v, s_v = _rows(plan.X, val), plan.y[val], plan.sensitive[val]
    pred = np.asarray(model.predict(X_v))
    scores = utility = None
    if need_scores:
        score = partial(score_validated, model, X_train, y_fit[train], X_v, y_v,
                        method=ev.method, sample_weight=sw,
                        batch_size=ev.options["batch_size"], random_state=seed,
                        **ev.options["adapter_options"])
        scores = score(objective=ev.objective, sensitive_features_val=s_v)
        if ev.with_utility:
            utility = score(objective=Utility())
    return pred, scores, utility


def _log(log, message):
    if log is not None:
        log(message)
