"""Fairness without a predicted utility loss: the constrained step of the ``target_gap`` rounds.

Every training row has two scores against the models of the current state:
``f_i`` on the fairness objective and ``u_i`` on the validation loss (higher =
more beneficial, as everywhere). To first order, trimming (or relabeling) a
set S of rows changes the fairness objective by ``sum_S f_i`` and the
validation loss by ``sum_S u_i``; tilting the weights by ``d_i = w_i - 1``
changes them by ``-sum_i d_i f_i`` and ``-sum_i d_i u_i``. The step asks for
the largest predicted fairness gain whose predicted utility loss stays within
a budget:

- **trim / relabel** (``lowest_combined``): among the rows still eligible,
  the ``k`` rows of lowest ``f_i + mu u_i`` (both scores standardised), with
  ``mu >= 0`` the smallest multiplier whose rows keep ``sum_S u_i <= budget``.
  This is the Lagrangian relaxation of
  ``min sum_S f_i  s.t.  |S| = k, sum_S u_i <= budget``; by Everett's
  theorem (Everett, "Generalized Lagrange multiplier method for solving
  problems of optimum allocation of resources", Operations Research 11(3),
  1963) the rows found are an exact optimum for the budget they use, which is
  within the one asked for.
- **reweight** (``combined_tilt``): the weights ``exp(lam z)`` of the
  standardised ``f + mu u``, ``mu`` again the smallest multiplier whose
  weights keep the predicted loss change ``-sum_i (w_i - 1) u_i`` within the
  budget, in the spirit of Li and Liu's reweighing with both influences
  (Li and Liu, "Achieving Fairness at No Utility Cost via Data Reweighing
  with Influence", ICML 2022).

The budget is ``slack`` times the predicted utility loss of the step the
fairness scores alone would take (never below zero): ``slack=0`` asks for no
predicted loss at all, ``slack=1`` gives the fairness-only step back.
"""
import numpy as np

_MU_MAX = 1e6  # beyond it the utility score alone orders the rows (standardised scores)
_BISECTIONS = 60


def standardised(values):
    """Finite values divided by their spread (NaN: 0); a constant vector stays as is.

    Scaled, not centred (unlike the tilt's z-scores): the sign of a utility score says
    whether acting on the row is predicted to cost, and the budget sums those signs."""
    out = np.where(np.isfinite(values), values, 0.0).astype(np.float64)
    spread = out.std()
    return out / spread if spread > 0 else out


def lowest_combined(f, u, k, candidates, budget, cap=None):
    """The ``k`` candidates of lowest ``f + mu u`` with ``sum u <= budget``: (rows, mu).

    ``f``, ``u``: the standardised scores of every row; ``candidates``: the
    rows that may be chosen; ``cap``: optional function (rows in preference
    order) -> bool mask of those allowed (the per-class room of the rounds).
    When no multiplier keeps ``k`` rows within the budget, the longest prefix
    of the utility-ordered choice that does is returned (fewer rows).
    """
    candidates = np.asarray(candidates)

    def choose(mu):
        order = candidates[np.lexsort((f[candidates], f[candidates] + mu * u[candidates]))]
        if cap is not None:
            order = order[cap(order)]
        return order[:k]

    def fits(mu):
        rows = choose(mu)
        return np.sum(u[rows]) <= budget, rows

    mu, rows, within = smallest_multiplier(fits)
    if not within:  # even the utility order overspends: keep a prefix
        # ascending u: the partial sums fall, then rise; the empty prefix is within budget
        prefix = np.flatnonzero(np.cumsum(u[rows]) <= budget)
        rows = rows[:prefix[-1] + 1 if len(prefix) else 0]
    return rows, mu


def combined_tilt(f, u, lam, slack, tilt):
    """Weights ``tilt(f + mu u, lam)`` whose predicted loss change stays in budget: (w, mu).

    ``tilt(scores, lam)`` turns scores into weights (standardised, clipped,
    ``exp(lam z)``, mean 1, capped); the predicted change of the validation
    loss of weights w is ``-sum_i (w_i - 1) u_i``.
    """
    def loss_change(mu):
        w = tilt(f + mu * u, lam)
        return -float(np.sum((w - 1.0) * u)), w

    budget = slack * max(loss_change(0.0)[0], 0.0)

    def within(mu):
        change, w = loss_change(mu)
        return change <= budget, w

    # when even the utility-only weights lose, none better is known: they are returned
    mu, w, _ = smallest_multiplier(within)
    return w, mu


def smallest_multiplier(within):
    """The least ``mu`` in ``[0, _MU_MAX]`` with ``within(mu)[0]``: (mu, its payload, found).

    ``within(mu)`` -> (bool, payload), monotone in ``mu`` (False, then True);
    bisection on a geometric scale, since ``mu`` may span many decades. When
    even ``_MU_MAX`` is not within, returns it with ``found`` False.
    """
    ok, payload = within(0.0)
    if ok:
        return 0.0, payload, True
    ok, hi_payload = within(_MU_MAX)
    if not ok:
        return _MU_MAX, hi_payload, False
    lo, hi = 0.0, _MU_MAX
    for _ in range(_BISECTIONS):
        mid = np.sqrt(max(lo, 1e-12) * hi)
        ok, payload = within(mid)
        if ok:
            hi, hi_payload = mid, payload
        else:
            lo = mid
        if hi - lo <= 1e-9 * hi:
            break
    return hi, hi_payload, True
