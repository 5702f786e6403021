"""Forget training rows without retraining: ``unlearn``.

Removing the rows S from a fitted model means refitting on the remaining
objective. In each model family's own units (the adapter's mean form) that is

    G(theta) = sum_{i not in S} (c_i / c_rem) l_i(theta) + 0.5 theta^T R theta,

c_i the sample's weight in the training objective, c_rem their sum over the
kept rows, R the regulariser (scikit-learn: ``0.5 ||W||^2 / c_rem`` as in
``C sum l + 0.5 ||W||^2``; torch: the weight decay of a mean-form loss, so a
net is compared with one retrained on the kept rows).

- ``method="newton"`` (default): exact Newton steps on G,
  ``theta <- theta - (hess G)^-1 (grad G(theta) - r)``. The fitted parameters are
  taken as the optimum of the full objective: its residual gradient ``r`` at
  the fit (the fit's tolerance; unfinished training for a network) is taken
  out, so removing nothing changes nothing and the steps do not go on to
  finish the original fit. For a linear model whose removed rows have rank
  ``|S| K'`` at most half of P, the first step uses the Woodbury identity on
  the full Hessian (only the removed rows are read again); otherwise, and for
  every later step, the remaining Hessian is built and factorised.
- ``method="influence"`` / :class:`~skinfluence.ExactHessian` /
  :class:`~skinfluence.SampledHessian`: the classical influence step of the
  sampled-Hessian paper, ``theta' = theta + H^-1 sum_{i in S} (c_i / c_total)
  grad l_i`` with H the full mean-form Hessian or one estimated on a subset
  chosen by a sampler (random / feature / logit).

Measured on digits (benchmarks/attribution/RESULTS_unlearning.md): removing a whole class,
one Newton step agrees with retraining on almost every test row of the other
classes and forgets the class; the influence step barely forgets it.
"""
from __future__ import annotations

import numbers

import numpy as np

from .utils._typing import Any, ArrayLike, Device, EstimatorLike, MethodLike, RandomStateLike
from .utils._params import resolve
from .methods._solvers import factorize, solve_factored
from .utils._validation import check_batch_size, check_device, check_sample_weight, is_tensor
from .methods._base import Context, _check_damping
from .methods import ExactHessian, SampledHessian
from .models import make_adapter
from .models.base import ObjectiveTerms, TrainingData
from .methods.samplers import SAMPLERS

__all__ = ["unlearn"]

_SOLVERS = ("auto", "woodbury", "direct")


def unlearn(estimator: EstimatorLike, X: ArrayLike, y: ArrayLike, remove: ArrayLike, *,
            method: MethodLike = "newton", n_steps: int = 1,
            sample_weight: ArrayLike | None = None, damping: float | str = "auto",
            solver: str = "auto", batch_size: int = 4096, device: Device = "auto",
            random_state: RandomStateLike = None, **adapter_options: Any) -> EstimatorLike:
    """Return a copy of a fitted model with the rows ``remove`` unlearned.

    Parameters
    ----------
    estimator : fitted estimator
        scikit-learn ``LogisticRegression`` / ``SGDClassifier(loss="log_loss")``,
        a skorch ``NeuralNetClassifier`` / ``NeuralNetBinaryClassifier``, a
        ``(module, loss)`` pair or a ``torch.nn.Module`` (with ``loss=``).
        Never modified.
    X, y : the training data the estimator was fitted on.
    remove : array-like of bool (n_samples,) or of int indices
        The rows to forget (a mask, or distinct indices in ``[0, n_samples)``).
    method : {"newton", "influence"}, ExactHessian or SampledHessian, default="newton"
        "newton": exact Newton steps on the remaining objective (see the module
        docstring). "influence" (= ``ExactHessian()``) or a
        ``SampledHessian(sampler=..., fraction=...)``: one classical influence
        step ``theta + H^-1 sum_{i in S} (c_i / c_total) grad l_i``; the
        method's own damping and solver are used.
    n_steps : int, default=1
        Newton steps on the remaining objective (``method="newton"`` only).
    sample_weight : array-like or None
        Weights the estimator was fitted with; the removed rows' terms are
        taken out of that weighted objective.
    damping : float or "auto", default="auto"
        Newton steps: added to the remaining Hessian (mean form); "auto": 0 when
        it is positive definite, else the smallest shift making it so (networks).
    solver : {"auto", "woodbury", "direct"}, default="auto"
        Newton's first step on a linear model: "woodbury" updates the full
        Hessian's factorisation by the removed rows, "direct" builds and
        factorises the remaining Hessian; "auto": Woodbury when the removed
        rows' rank ``|S| K'`` is at most half the number of parameters.
    batch_size : int, default=4096
        Rows per chunk when Hessians are built.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Torch models: where to compute.
    random_state : int, RandomState, Generator or None
        Seeds a ``SampledHessian``'s sampler.
    **adapter_options
        Torch models: ``params`` (e.g. "last_layer": only those parameters
        move), ``loss``, ``weight_decay``, ``classes``.

    Returns
    -------
    estimator : a new fitted estimator
        scikit-learn: a deep copy with updated ``coef_`` / ``intercept_``;
        skorch / torch: a deep copy (for a pair: a new pair) with updated
        parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import unlearn
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=1000).fit(X, y)
    >>> forgot = unlearn(model, X, y, y == 2, n_steps=3)      # forget class 2
    >>> int((forgot.predict(X) == 2).sum())
    0
    >>> float(np.mean(forgot.predict(X[y < 2]) == model.predict(X[y < 2]))) > 0.9
    True
    """
    method = _check_method(method)
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, numbers.Integral) \
            or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}.")
    if n_steps > 1 and method != "newton":
        raise ValueError(
            f"n_steps={n_steps} repeats Newton steps: it needs method='newton'; an influence "
            "step (ExactHessian / SampledHessian) is a single step."
        )
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}.")
    _check_damping(damping)
    adapter = make_adapter(estimator, device=check_device(device), **adapter_options)
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    sample_weight = check_sample_weight(sample_weight, n_rows)
    train = adapter.training_data(X, y, sample_weight)
    removed = _check_remove(remove, train.n)
    y_idx = _numpy(train.y).astype(np.int64)
    c = _numpy(train.weight)
    keep = np.ones(train.n, dtype=bool)
    keep[removed] = False
    _check_remaining(keep, c, y_idx, adapter.classes_)
    batch_size = check_batch_size(batch_size, train.n)
    theta0 = _numpy(adapter.theta).astype(np.float64)
    if method == "newton":
        theta = _newton(adapter, train, c, keep, removed, theta0, n_steps, damping, solver,
                        batch_size)
    else:
        theta = theta0 + _influence_step(adapter, train, c, removed, method, batch_size,
                                         random_state)
    return adapter.with_parameters(estimator, theta)


# ---------------------------------------------------------------------- checks
def _check_method(method):
    if isinstance(method, str):
        if method == "newton":
            return method
        if method == "influence":
            return ExactHessian()
        known = {"exact_hessian": ExactHessian, "sampled_hessian": SampledHessian}
        if method in known:
            return resolve(method, known, "method")
        raise ValueError(
            f"method={method!r}: expected 'newton', 'influence', 'exact_hessian', "
            "'sampled_hessian' or an ExactHessian / SampledHessian instance."
        )
    if isinstance(method, (ExactHessian, SampledHessian)):
        return method
    raise TypeError(
        "method must be 'newton', 'influence' or an ExactHessian / SampledHessian "
        f"instance, got {type(method).__name__}."
    )


def _check_remove(remove, n):
    """Sorted distinct row indices from a boolean mask or an index array."""
    if remove is None:
        raise ValueError("remove is required: a boolean mask or row indices, got None.")
    arr = _numpy(remove) if is_tensor(remove) else np.asarray(remove)
    if arr.ndim != 1:
        raise ValueError(f"remove must be 1-D (a mask or indices), got shape {arr.shape}.")
    if arr.dtype == bool:
        if arr.size != n:
            raise ValueError(f"remove is a boolean mask of length {arr.size}, but X has {n} rows.")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"remove must be a boolean mask or integer row indices, got dtype {arr.dtype}."
        )
    if arr.min() < 0 or arr.max() >= n:
        bad = arr[(arr < 0) | (arr >= n)]
        raise ValueError(f"remove: indices {bad[:5].tolist()} are out of range [0, {n}).")
    out = np.unique(arr)
    if out.size != arr.size:
        raise ValueError("remove: indices repeat; give each row to forget once.")
    return out.astype(np.int64)


def _check_remaining(keep, c, y_idx, classes):
    if not keep.any():
        raise ValueError("remove: every training row would be removed; nothing is left to fit.")
    if not np.any(c[keep] > 0):
        raise ValueError("remove: every remaining row has zero sample_weight.")
    left = np.unique(y_idx[keep & (c > 0)])
    if left.size < 2:
        raise ValueError(
            f"remove: only class {classes[left[0]]!r} would remain; a classifier needs at "
            "least two classes to fit."
        )


# ---------------------------------------------------------------------- steps
def _numpy(a):
    return a.detach().cpu().double().numpy() if is_tensor(a) else np.asarray(a)


def _regulariser_mean(adapter, train):
    """Diagonal of the regulariser's Hessian in the adapter's mean form for ``train``."""
    return _numpy(adapter.regulariser_hessian_mean(train))


def _loss_gradient(adapter, train, y_idx, coef, theta):
    """sum_i coef_i grad l_i(theta) over the rows with nonzero coef."""
    rows = np.flatnonzero(coef)
    X = train.X if rows.size == train.n else train.X[_rows(train, rows)]
    terms = ObjectiveTerms(X, y_idx[rows], coef[rows], "loss")
    return _numpy(adapter.objective_gradient(terms, theta))


def _rows(train, rows):
    if not is_tensor(train.X):
        return rows
    import torch

    return torch.as_tensor(rows, device=train.X.device)


def _newton(adapter, train, c, keep, removed, theta0, n_steps, damping, solver, batch_size):
    y_idx = _numpy(train.y).astype(np.int64)
    c_rem, c_tot = c[keep].sum(), c.sum()
    if is_tensor(train.weight):
        import torch

        keep = torch.as_tensor(keep, device=train.weight.device)
    weight = train.weight * keep
    rest = TrainingData(train.X, train.y, weight)
    R = _regulariser_mean(adapter, rest)
    # the full objective in G's units: its gradient at the fit is the residual r
    R_full = _regulariser_mean(adapter, train) * c_tot / c_rem
    residual = _loss_gradient(adapter, train, y_idx, c / c_rem, theta0) + R_full * theta0
    coef_rest = np.where(keep, c / c_rem, 0.0)
    kept = np.flatnonzero(keep & (c > 0))
    null = adapter.null_directions()
    use_woodbury = adapter.supports_newton_loo and (
        solver == "woodbury"
        or (solver == "auto" and removed.size * adapter.n_outputs <= adapter.n_params // 2)
    )
    theta = theta0.copy()
    for step in range(n_steps):
        grad = _loss_gradient(adapter, train, y_idx, coef_rest, theta) + R * theta - residual
        delta = None
        if step == 0 and use_woodbury and removed.size:
            delta = _woodbury_solve(adapter, train, c, removed, theta, c_tot / c_rem, c_rem,
                                    grad, damping, null, batch_size)
        if delta is None:
            H = adapter.hessian(rest, indices=kept, theta=_as_theta(adapter, theta),
                                batch_size=batch_size)
            factor, _ = factorize(H, damping, null)
            delta = solve_factored(factor, grad)
        theta = theta - delta
    return theta


def _as_theta(adapter, theta):
    if isinstance(adapter.theta, np.ndarray):
        return theta
    import torch  # a network's adapter: torch is loaded

    return torch.as_tensor(theta)


def _woodbury_solve(adapter, train, c, removed, theta, full_scale, c_rem, grad, damping, null,
                    batch_size):
    """(hess G)^-1 grad from the full Hessian less the removed rows' rank-|S|K' part.

    hess G = H_full - U C U^T with U = [I (x) a_i]_i, C = blockdiag(c_i S_i / c_rem):
    (A - U C U^T)^-1 = A^-1 + A^-1 U (I - C U^T A^-1 U)^-1 C U^T A^-1.
    """
    H = adapter.hessian(train, theta=theta, batch_size=batch_size) * full_scale
    factor, _ = factorize(H, damping, null)
    K = adapter.n_outputs
    A = train.X[removed]
    A = np.asarray(A.todense()) if hasattr(A, "todense") else np.asarray(A)
    P = adapter.probabilities(adapter.logits(theta, A))
    S = adapter.curvature(P) * (c[removed] / c_rem)[:, None, None]  # (r, K, K)
    if adapter.fit_intercept:
        A = np.hstack([A, np.ones((A.shape[0], 1))])
    r = A.shape[0]
    # U's column (i, k) is class k's block holding a_i: (P, r*K)
    U = np.zeros((K, A.shape[1], r, K))
    for k in range(K):
        U[k, :, :, k] = A.T
    U = U.reshape(K * A.shape[1], r * K)
    Z = solve_factored(factor, np.column_stack([grad, U]))
    Hinv_g, Hinv_U = Z[:, 0], Z[:, 1:]
    C = np.zeros((r * K, r * K))
    for i in range(r):
        C[i * K:(i + 1) * K, i * K:(i + 1) * K] = S[i]
    inner = np.eye(r * K) - C @ (U.T @ Hinv_U)
    if np.linalg.cond(inner) > 1e12:  # the rows removed leave a flat direction: solve directly
        return None
    return Hinv_g + Hinv_U @ np.linalg.solve(inner, C @ (U.T @ Hinv_g))


def _influence_step(adapter, train, c, removed, method, batch_size, random_state):
    """H^-1 sum_{i in S} (c_i / c_total) grad l_i, H full or sampled (the method's solve)."""
    from .utils._validation import check_generator

    _check_damping(method.damping)
    if removed.size == 0:
        return np.zeros(adapter.n_params)
    y_idx = _numpy(train.y).astype(np.int64)
    rows = _rows(train, removed)
    terms = ObjectiveTerms(train.X[rows], y_idx[removed], c[removed] / c.sum(), "loss")
    rng = check_generator(random_state)
    ctx = Context(adapter, train, terms, batch_size, rng)
    a, bs = adapter, batch_size
    if isinstance(method, SampledHessian):
        sampler = resolve(method.sampler, SAMPLERS, "sampler")
        idx, omega = sampler.sample(a, train, method.subset_size(train.n), rng)
        v, _, _ = method._solve(
            ctx, lambda: a.hessian(train, idx, omega, batch_size=bs),
            lambda x: a.hvp(train, x, batch_size=bs, indices=idx, sample_weights=omega))
    else:
        v, _, _ = method._solve(ctx, lambda: a.hessian(train, batch_size=bs),
                                lambda x: a.hvp(train, x, batch_size=bs))
    return _numpy(v)
