"""Influence on a boosted model: the rounds' Newton steps differentiated, structure fixed.

Training row i enters round t only through the leaf j it falls in:
``v_tj = -eta G_tj / (H_tj + lambda)`` (:mod:`skinfluence.models.trees`).
Raising its weight c_i moves that leaf by::

    d v_tj / d c_i = -(eta g_i + v_tj h_i) / (H_tj + lambda)        (g, h at F_{t-1})

and the objective ``J`` (on the final margins of its rows) by
``vbar_tj * d v_tj / d c_i``, where ``vbar_tj = dJ / dv_tj``. Three forms:

- ``"gradient"`` (IP, TracIn over the rounds): ``vbar = D``, the direct
  derivative (the objective rows in leaf j at the final model), and the
  row's plain gradient in place of the Newton step:
  ``score_i = sum_t (c_i / mean c) g_i D_tj``;
- ``"newton"`` (ExactHessian: each leaf's own curvature ``H_tj + lambda``;
  BoostIn's estimator): ``score_i = n sum_t c_i (eta g_i + v_tj h_i) D_tj / (H_tj + lambda)``;
- ``"leave_one_out"`` (NewtonLOO): ``vbar`` is the total derivative: a leaf
  moves every later round's gradients of the rows in it, carried back by one
  adjoint pass (``Fbar_{t-1} = Fbar_t + sum_k vbar_tk dv_tk / dF_{t-1}``), and
  the row's leaf change is its exact removal from the leaf, denominator
  ``H_tj - c_i h_i + lambda``. ``derivative=True`` keeps ``H_tj + lambda``:
  then the score is exactly ``-n c_i dJ / dc_i`` of the fixed-structure refit.

Scores: higher = more beneficial (removing row i raises J by about
``score_i / n``). Cost: two sweeps over the rounds, each asking the library for
one round's leaves and values of the training rows: O(n T K) memory-free work
beside the library's own predictions; ``per_row`` (influence_matrix) carries
one column per objective row.
"""
import numpy as np
import scipy.sparse as sp
from sklearn.utils import _safe_indexing

from ..models.trees import check_leaf_values

FORMS = ("gradient", "newton", "leave_one_out")
#: training rows whose margins, added up from the rounds read, are checked against the model's
REPRODUCED_ROWS = 2048


def round_influence(ctx, form, derivative=False, hessian_lr_factor=False):
    """(n,) scores, or (n, m) with ``ctx.per_row``, of the boosted model in ``ctx.adapter``.

    ``hessian_lr_factor`` multiplies the ``v h_i`` term by the learning rate
    once more (the variant of tree-influence's BoostIn code), for comparison.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}.")
    a, train, terms = ctx.adapter, ctx.train, ctx.terms
    reader = a.reader
    Xt, Xv = reader.prepare(train.X), reader.prepare(terms.X)
    y, c = train.y, train.weight
    n, K, T = train.n, reader.n_outputs, reader.n_rounds
    eta = reader.learning_rate
    dphi = terms.coef[:, None] * a.phi_derivative(reader.margin(Xv), terms)  # (m, K)
    m = dphi.shape[0]
    B = m if ctx.per_row else 1
    rounds, F = _forward(a, reader, Xt, y, c)
    # the routing is the library's: the rounds read add up to its margin (a sample of rows)
    sample = _safe_indexing(train.X, np.arange(min(n, REPRODUCED_ROWS)))
    _check_reproduced(F[:REPRODUCED_ROWS], reader.margin(reader.prepare(sample)), reader)
    a.n_leaves_ = sum(int(occupied.sum()) for per_round in rounds
                      for occupied, *_ in per_round)
    scores = np.zeros((n, B))
    Fbar = np.zeros((n, K, B)) if form == "leave_one_out" else None
    rows_v = np.arange(m)
    for t in range(T - 1, -1, -1):
        leaves = reader.round_leaves(Xt, t)
        F = F - reader.round_values(Xt, t)  # F_{t-1}: the margin round t was fitted at
        g, h = a.gradient_hessian(F, y)
        leaves_v = reader.round_leaves(Xv, t)
        vbars = []
        for k in range(K):
            occupied, G, H, v, lam = rounds[t][k]
            j = leaves[:, k]  # leaf numbers are small ints: each indexes its leaf's slot
            vbar = _direct(occupied, leaves_v[:, k], dphi[:, k], rows_v, ctx.per_row)
            if Fbar is not None:  # the later rounds' share, through the rows in each leaf
                vbar = vbar + _segment_sum(Fbar[:, k, :], j, len(occupied))
            vbars.append((j, vbar))
            if form == "gradient":
                factor = (c / c.mean()) * g[:, k]
            else:
                curvature_term = v[j] * h[:, k] * (eta if hessian_lr_factor else 1.0)
                denominator = H[j] + lam[j]
                if form == "leave_one_out" and not derivative:
                    # the leaf without row i; a leaf it alone holds (lambda = 0) keeps the slope
                    removed = denominator - c * h[:, k]
                    denominator = np.where(removed > 1e-12 * denominator, removed, denominator)
                factor = n * c * (eta * g[:, k] + curvature_term) / denominator
            scores += factor[:, None] * vbar[j]
        if Fbar is not None:
            Fbar = Fbar + _carried_back(a, F, y, c, rounds[t], vbars, eta)
    return scores if ctx.per_row else scores[:, 0]


def _forward(a, reader, Xt, y, c):
    """Every round's leaf slots (indexed by leaf number): which hold training rows, G, H,
    stored values (checked) and L2 terms; and the final margin."""
    K = reader.n_outputs
    F = np.tile(np.asarray(reader.base, dtype=np.float64), (len(y), 1))
    rounds = []
    for t in range(reader.n_rounds):
        leaves, inc = reader.round_leaves(Xt, t), reader.round_values(Xt, t)
        g, h = a.gradient_hessian(F, y)
        per_round = []
        for k in range(K):
            j = leaves[:, k]
            slots = int(j.max()) + 1
            occupied = np.bincount(j, minlength=slots) > 0
            G = np.bincount(j, c * g[:, k], slots)
            H = np.bincount(j, c * h[:, k], slots)
            v = np.zeros(slots)
            v[j] = inc[:, k]
            spread = np.abs(inc[:, k] - v[j]).max(initial=0.0)
            if spread > 1e-9 * max(np.abs(v).max(), 1.0):  # pragma: no cover - a reader bug
                raise RuntimeError(f"round {t}: rows of one leaf got different values.")
            lam = _leaf_l2(v, G, H, reader)
            newton = -reader.learning_rate * G[occupied] / (H[occupied] + lam[occupied])
            check_leaf_values(v[occupied], newton, t, k, reader)
            per_round.append((occupied, G, H, v, lam))
        rounds.append(per_round)
        F = F + inc
    return rounds, F


def _leaf_l2(v, G, H, reader):
    """Each leaf's L2 term: of the settings' choices, the one its stored value was made with."""
    choices = np.asarray(reader.l2_choices, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # empty slots (no rows, lambda 0)
        gap = np.abs(-reader.learning_rate * G[:, None] / (H[:, None] + choices[None, :])
                     - v[:, None])
    return choices[np.argmin(np.nan_to_num(gap, nan=np.inf), axis=1)]


def _check_reproduced(F, margin, reader):
    """The rounds read must add up to the model's own margin (missing values, categories...)."""
    worst = float(np.max(np.abs(F - margin), initial=0.0))
    if worst > 1e-4 * (1.0 + float(np.max(np.abs(margin), initial=0.0))):
        raise RuntimeError(  # pragma: no cover - a reader that routes rows unlike the model
            f"The {reader.library} model's rounds, read one by one, do not add up to its "
            f"margin (largest difference {worst:.3g}).")


def _direct(occupied, leaves_v, dphi_k, rows_v, per_row):
    """``D_tj``: the objective's derivative through leaf j directly, (L, 1) or (L, m)."""
    slots = len(occupied)
    # a leaf no training row reaches holds no training influence
    seen = leaves_v < slots
    seen[seen] = occupied[leaves_v[seen]]
    j = leaves_v[seen]
    if not per_row:
        return np.bincount(j, dphi_k[seen], slots)[:, None]
    D = np.zeros((slots, len(leaves_v)))
    D[j, rows_v[seen]] = dphi_k[seen]
    return D


def _segment_sum(values, j, n_leaves):
    """Sum of (n, B) ``values`` over the rows of each leaf: (L, B)."""
    if values.shape[1] == 1:
        return np.bincount(j, values[:, 0], n_leaves)[:, None]
    members = sp.csr_matrix((np.ones(len(j)), (j, np.arange(len(j)))),
                            shape=(n_leaves, len(j)))
    return np.asarray(members @ values)


def _carried_back(a, F, y, c, per_round, vbars, eta):
    """``sum_k vbar_tk[j_k(i)] d v_tk / d F_{t-1}^i``: (n, K, B), the adjoint's step."""
    dg, dh = a.gradient_hessian_slopes(F, y)  # (n, K, K): d g_k / d F_l
    n, K = F.shape
    B = vbars[0][1].shape[1]
    out = np.zeros((n, K, B))
    for k, ((_, G, H, v, lam), (j, vbar)) in enumerate(zip(per_round, vbars)):
        # d v_tkj / d F^{i,l} = -c_i (eta dg_k/dF_l + v_tkj dh_k/dF_l) / (H_tkj + lambda)
        slope = -(c / (H[j] + lam[j]))[:, None] * (eta * dg[:, k, :] + v[j][:, None] * dh[:, k, :])
        out += slope[:, :, None] * vbar[j][:, None, :]
    return out
