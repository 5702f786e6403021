"""The Hessian solve shared by ExactHessian and SampledHessian: Cholesky, CG or LiSSA.

On a non-convex model every solver takes the same damping, so that one method
gives one answer whichever solver runs it: ``-1.1`` times a short Lanczos
run's lower estimate of the smallest eigenvalue (:func:`_positive_definite_shift`,
on the same HVPs from the same fixed start whichever the solver), raised where
the factorisation or CG still meets non-positive curvature
(:func:`_solve_raising_damping`). Just clearing the most negative eigenvalue
(``-lambda_min`` plus a rounding margin) left one direction of ``H + damping I``
near zero to dominate every score: on a small CNN it ranked flipped labels
below chance where the shifted solve found them.
"""
import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..utils._compat import Interval, StrOptions
from ._base import _DAMPING
from ._solvers import conjugate_gradient, factorize, lissa, solve_factored


class _HessianSolveMixin:
    """Solve ``(H + damping I) v = grad J`` by Cholesky, CG or LiSSA."""

    _parameter_constraints = {
        "damping": _DAMPING,
        "solver": [StrOptions({"auto", "cholesky", "cg", "lissa"})],
        "max_cholesky_params": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "lissa_scale": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def _solve(self, ctx, hessian, hvp, psd=False):
        """``psd``: the curvature is positive semi-definite (Gauss-Newton), so
        ``damping="auto"`` is a small relative damping
        (:func:`_relative_damping`) instead of a shift past negative curvature."""
        a = ctx.adapter
        shift = _relative_damping if psd else _positive_definite_shift
        grad = ctx.gradient()
        solver = self.solver
        if solver == "auto":
            solver = "cholesky" if a.n_params <= self.max_cholesky_params else "cg"
        if solver == "cholesky":
            if self.damping == "auto" and not getattr(a, "convex", False):
                factor, damping = ctx.cached("factor", lambda: _factorize_shifted(
                    hessian(), a.null_directions(), hvp, shift, start_shifted=psd))
            else:
                factor, damping = ctx.cached("factor", lambda: factorize(
                    hessian(), self.damping, a.null_directions(), overwrite_h=True))
            # the factor is numpy float64; score_pass takes numpy directions on any device
            return solve_factored(factor, _numpy(grad)), damping, {}
        if solver not in ("cg", "lissa"):
            raise ValueError(
                f"solver must be 'auto', 'cholesky', 'cg' or 'lissa', got {solver!r}."
            )
        if self.damping != "auto":
            damping = float(self.damping)
        elif getattr(a, "convex", False):  # no shift needed to make H positive definite
            damping = 0.0
        else:
            damping = ctx.cached("damping", lambda: shift(hvp, a.n_params))
        tol = _tolerance(self.tol, grad)
        if grad.ndim == 1:
            v, it, res, damping = self._iterate(ctx, solver, hvp, damping, grad, tol)
        else:  # a block: one solve per direction (each HVP is a pass over the rows)
            runs = []
            for j in range(grad.shape[1]):  # a damping raised on the way carries forward
                runs.append(self._iterate(ctx, solver, hvp, damping, grad[:, j], tol))
                damping = runs[-1][3]
            # every column at the one damping reported: re-solve those solved below it
            runs = [r if r[3] == damping else
                    self._iterate(ctx, solver, hvp, damping, grad[:, j], tol)
                    for j, r in enumerate(runs)]
            stack = _stack_columns(grad)
            v, it, res = stack([r[0] for r in runs]), sum(r[1] for r in runs), \
                max(r[2] for r in runs)
        if "damping" in ctx.cache:  # later blocks start from the raised damping
            ctx.cache["damping"] = max(ctx.cache["damping"], damping)
        if res > tol and solver == "cg":
            warnings.warn(
                f"CG stopped after {it} iterations at relative residual {res:.2g} (tol "
                f"{tol:.2g}): the scores are those of an approximate inverse-HVP. Raise "
                "max_iter, or damping to improve the conditioning.", ConvergenceWarning,
                stacklevel=4)
        return v, damping, {"solver_iterations": it, "solver_residual": res}

    def _iterate(self, ctx, solver, hvp, damping, b, tol):
        """One solve of ``(H + damping I) x = b``: (x, iterations, relative residual, damping).

        CG with ``damping="auto"`` on a non-convex model raises the damping past
        a direction of non-positive curvature and restarts (the damping returned).
        """
        if solver == "cg":
            return _solve_raising_damping(
                hvp, b, damping, tol, self.max_iter,
                raise_damping=self.damping == "auto" and not getattr(ctx.adapter, "convex", False))
        op = (lambda x: hvp(x) + damping * x)
        scale = self.lissa_scale or ctx.cached(
            "lissa_scale", lambda: 1.1 * _power_iteration(op, b, ctx.rng))
        v, it = lissa(op, b, scale=scale, n_iter=self.max_iter or 1000, tol=tol)
        return v, it, _check_lissa(op, b, v, scale), damping


def _factorize_shifted(H, null_directions, hvp, shift=None, start_shifted=False):
    """Cholesky of ``H + damping I``: no damping when H is positive definite, else the
    iterative solvers' damping (the same Lanczos run on the same HVPs, so the same value),
    raised while ``H + damping I`` is still not positive definite.

    ``start_shifted``: begin at ``shift(hvp, P)`` (a Gauss-Newton matrix's relative
    damping is applied whether or not the matrix is already positive definite)."""
    shift = shift or _positive_definite_shift
    H = np.asarray(H, dtype=np.float64)
    damping = shift(hvp, H.shape[0]) if start_shifted else 0.0
    for attempt in range(MAX_DAMPING_RAISES + 2):
        try:
            factor, _ = factorize(H, damping, null_directions)
            return factor, damping
        except ValueError:  # not positive definite at this damping
            damping = shift(hvp, H.shape[0]) if attempt == 0 and not start_shifted \
                else max(2.0 * damping, 1e-8)
    return factorize(H, "auto", null_directions, overwrite_h=True)


def _stack_columns(like):
    """Stack vectors as the columns of a block of ``like``'s type (torch or numpy)."""
    if hasattr(like, "detach"):
        import torch

        return lambda cols: torch.stack(cols, dim=1)
    return lambda cols: np.stack(cols, axis=1)


#: times CG restarts with a larger damping after meeting negative curvature
MAX_DAMPING_RAISES = 8


def _solve_raising_damping(hvp, grad, damping, tol, max_iter, raise_damping):
    """CG on ``H + damping I``; with ``raise_damping``, a direction of non-positive
    curvature (the estimated shift was too small) raises the damping past it and restarts.

    Returns ``(v, total CG iterations, relative residual, damping used)``.
    """
    total = 0
    for raises in range(MAX_DAMPING_RAISES + 1):
        seen = [np.inf]

        def op(x, d=damping):
            out = hvp(x) + d * x
            seen[0] = min(seen[0], float(x @ out) / max(float(x @ x), 1e-300))
            return out
        v, it, res = conjugate_gradient(op, grad, tol=tol, max_iter=max_iter)
        total += it
        if not raise_damping or seen[0] > 0 or raises == MAX_DAMPING_RAISES:
            return v, total, res, damping
        # H has curvature <= seen - damping along x: shift past it, at least doubling (a
        # Rayleigh quotient is barely negative where the lowest eigenvalue is far below)
        damping = max(2.0 * damping, 1.1 * (damping - seen[0]) + 1e-8)


def _tolerance(tol, grad):
    """``tol="auto"``: 1e-10 for float64 HVPs, 1e-5 for float32 ones (their floor)."""
    if tol != "auto":
        return float(tol)
    return 1e-10 if str(getattr(grad, "dtype", "float64")).endswith("float64") else 1e-5


def _check_lissa(op, b, x, scale):
    """LiSSA diverges when ``scale`` is below H's largest eigenvalue: refuse its output.

    Returns the relative residual."""
    r = op(x) - b
    res = float((r @ r) ** 0.5) / max(float((b @ b) ** 0.5), 1e-300)
    if not np.isfinite(res) or res > 1.0:
        raise ValueError(
            f"LiSSA diverged (relative residual {res:.3g}) with lissa_scale={scale:.3g}: the "
            "scale must exceed the damped Hessian's largest eigenvalue; use lissa_scale=None "
            "to estimate it."
        )
    return res


def _numpy(a):
    return a.detach().cpu().double().numpy() if hasattr(a, "detach") else a


#: Lanczos steps (one HVP each) of the damping search on a network, and their start's seed.
LANCZOS_STEPS = 20
LANCZOS_SEED = 0


def _positive_definite_shift(hvp, n):
    """A damping making ``H + damping I`` positive definite, from a few HVPs.

    ``LANCZOS_STEPS`` Lanczos steps (full reorthogonalisation) from a fixed
    random start (``LANCZOS_SEED``: the damping is the model's, not the
    ``random_state``'s, and the same for every solver) give the Ritz values of
    H; the smallest one minus its residual bound ``|beta_m s_m|`` estimates H's
    smallest eigenvalue from below, and ``-1.1`` times that estimate is the
    shift (0 when it is positive). A shift that still leaves negative
    curvature is raised where CG or the factorisation meets it
    (:func:`_solve_raising_damping`, :func:`_factorize_shifted`).
    """
    theta, lower = _ritz_values(hvp, n)
    return float(max(0.0, -1.1 * lower))


#: ``damping="auto"`` on a Gauss-Newton curvature: this fraction of its largest eigenvalue
GAUSS_NEWTON_RELATIVE_DAMPING = 1e-2


def _relative_damping(hvp, n):
    """``GAUSS_NEWTON_RELATIVE_DAMPING`` times the largest eigenvalue of a positive
    semi-definite curvature, from the same Lanczos run (its top Ritz value)."""
    theta, _ = _ritz_values(hvp, n)
    return float(GAUSS_NEWTON_RELATIVE_DAMPING * max(theta[-1], 0.0))


def _ritz_values(hvp, n):
    """``LANCZOS_STEPS`` Lanczos steps from the fixed start: the Ritz values (ascending)
    and a lower bound on the smallest eigenvalue (smallest Ritz value minus its residual)."""
    m = min(n, LANCZOS_STEPS)
    Q = np.zeros((m, n))
    alpha, beta = np.zeros(m), np.zeros(m)
    q = np.random.default_rng(LANCZOS_SEED).standard_normal(n)
    Q[0] = q / np.linalg.norm(q)
    for j in range(m):
        w = _numpy(hvp(Q[j])).ravel()
        alpha[j] = Q[j] @ w
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)  # full reorthogonalisation (twice is enough)
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        if j + 1 == m or beta[j] <= 1e-12 * max(1.0, abs(alpha[j])):
            m = j + 1
            break
        Q[j + 1] = w / beta[j]
    theta, S = np.linalg.eigh(np.diag(alpha[:m]) + np.diag(beta[:m - 1], 1)
                              + np.diag(beta[:m - 1], -1))
    return theta, theta[0] - abs(beta[m - 1] * S[m - 1, 0])


def _power_iteration(op, like, rng, n_iter=50):
    noise = rng.standard_normal(like.shape[0])
    # a torch tensor keeps its dtype and device; numpy stays numpy
    x = like.new_tensor(noise) if hasattr(like, "new_tensor") else noise
    for _ in range(n_iter):
        x = op(x)
        x = x / (x @ x) ** 0.5
    return float(x @ op(x))
