"""NewtonLOO, all of it: the method, its pass over the training rows and its warning.

It needs an adapter with ``supports_newton_loo`` (:mod:`skinfluence.models.base`):
logits linear in each row's features and the per-sample loss's closed-form
curvature in the logits. The scoring pass runs :class:`NewtonLOOPass` as its
``chunk_hook`` on every chunk.

Removing z_i, one exact Newton step on ``F - c_i l_i`` from the fit is

    dtheta_i = c_i H^-1 U_i m_i,   m_i = (I - c_i S_i B_i)^-1 r_i,   B_i = U_i^T H^-1 U_i

(Woodbury on the rank-K' per-sample Hessian ``U_i S_i U_i^T``, U_i = I (x) a_i,
r_i the logit residual, H the sum-form Hessian), and the score is

    J(theta + dtheta_i) - J(theta) ~ grad J^T dtheta_i + 0.5 dtheta_i^T (hess J) dtheta_i.

With ``L L^T = H`` and ``E diag(lam) E^T = L^-1 (hess J) L^-T``, the rows of
``T = E^T L^-1`` turn each ``a_i`` into ``y_ik = T_k a_i`` with

    B_i = Y_i Y_i^T            U_i^T H^-1 hess J H^-1 U_i = Y_i diag(lam) Y_i^T,

so the chunk product that computes the scores also computes both: one extra
(n x P) x (P x P) product per chunk, nothing of size n x n or n x P kept.
"""
import warnings

import numpy as np
from scipy.linalg import eigh, solve_triangular

from ._base import _DAMPING, Method, MethodOutput, _check_damping, boosted_output
from ._newton_loo_block import LEVERAGE_WARN, BlockSecondOrder, woodbury_step as _woodbury_step
from ._solvers import factorize


class NewtonLOO(Method):
    """Leave-one-out change of J from one exact Newton step (linear models).

    ``score_i ~ J(theta_-i) - J(theta)``: the estimated change of the objective
    when sample i is removed and the model refit, in J's own units (higher =
    more beneficial, as everywhere). Each sample's step uses its leverage
    ``h_i`` (Woodbury on its rank-one / rank-(K-1) Hessian) and, with
    ``second_order=True``, the second-order terms: J's curvature and the
    Newton step's own error (the training loss's third derivative along
    ``H^-1 grad J``). The leverages come out of the same
    streamed pass and are on the result as ``leverage`` (h -> 1: the model
    cannot fit without the sample). The formulas are in the documentation's
    methods page.

    Parameters
    ----------
    damping : float or "auto", default=0.0
        Added to the mean-form Hessian (0: the estimator's own objective).
    second_order : bool, default=True

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import influence_scores
    >>> from skinfluence.datasets import make_flipped_blobs
    >>> d = make_flipped_blobs(random_state=0)
    >>> model = LogisticRegression().fit(d.X_train, d.y_train)
    >>> res = influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test,
    ...                        method="newton_loo", return_result=True)
    >>> bool((res.leverage > 0).all() and (res.leverage < 1).all())
    True
    """

    shorthand = "newton_loo"
    boosted_form = "leave_one_out"

    def boosted_options(self):
        """Trees: each row removed from its leaves, carried through the later rounds;
        ``second_order=False`` keeps the derivative (no removal of the row's own curvature)."""
        if self.damping != 0:
            raise ValueError(
                f"NewtonLOO(damping={self.damping!r}) on boosted trees: each leaf's curvature "
                "is its Hessian sum plus the model's own L2 term; leave damping=0.")
        return {"derivative": not self.second_order}
    _parameter_constraints = {"damping": _DAMPING, "second_order": ["boolean"]}

    def __init__(self, damping=0.0, second_order=True):
        self.damping = damping
        self.second_order = second_order

    def compute(self, ctx):
        _check_damping(self.damping)
        out = boosted_output(ctx, self)
        if out is not None:
            return out
        a = ctx.adapter
        if not getattr(a, "supports_newton_loo", False):
            raise TypeError(
                "NewtonLOO needs the closed-form per-sample Hessian of a linear log-loss "
                "model (LogisticRegression, SGDClassifier(loss='log_loss'))."
            )
        factor = ctx.cached("newton_factor", lambda: hessian_factor(
            a, ctx.train, self.damping, ctx.batch_size))
        loo = NewtonLOOPass(a, ctx.train, ctx.terms, damping=self.damping,
                            second_order=self.second_order, batch_size=ctx.batch_size,
                            gradient=ctx.gradient(), factor=factor)
        classical, extra = a.score_pass(
            ctx.train, [a.theta], [loo.c_total * loo.u], batch_size=ctx.batch_size,
            chunk_hook=loo, progress=ctx.progress,
        )
        width = loo.n_columns - 1  # the scores' columns, then the leverage
        newton = extra[:, 0] if loo.u.ndim == 1 else extra[:, :width]
        leverage = extra[:, width]
        if isinstance(leverage, np.ndarray):  # a Dask array is not computed here
            warn_high_leverage(leverage)
        return MethodOutput(newton, damping=loo.damping, leverage=leverage,
                            extras={"first_order_scores": classical[:, 0]})


def warn_high_leverage(leverage):
    """Warn when samples have leverage numerically 1 (their scores are clipped)."""
    n_bad = int(np.sum(leverage >= LEVERAGE_WARN))
    if n_bad:
        warnings.warn(
            f"{n_bad} training sample(s) have leverage numerically 1: the model cannot fit "
            "without them (no other sample constrains some direction of the parameters). "
            "Their NewtonLOO scores use 1 - leverage clipped at 1e-8: finite and very large, "
            "not reliable in size; inspect `leverage` on the result.",
            RuntimeWarning,
            stacklevel=4,  # influence_scores' caller
        )


def hessian_factor(adapter, train, damping, batch_size):
    """What does not depend on the direction: ``(c_total, damping used, L, L^-1)``.

    ``L L^T`` is the sum-form Hessian ``c_total * H_mean`` plus the damping
    (given in mean-form units, as for ExactHessian).
    """
    c_total = train.weight.sum()
    H_sum = adapter.hessian(train, batch_size=batch_size) * c_total
    sum_damping = damping if damping == "auto" else float(damping) * c_total
    factor, used = factorize(H_sum, sum_damping, adapter.null_directions())
    L = np.tril(factor[0])
    return c_total, used / c_total, L, solve_triangular(L, np.eye(L.shape[0]), lower=True)


class NewtonLOOPass:
    """Precomputed pieces of the NewtonLOO pass for one (model, objective).

    The scoring pass's ``chunk_hook``: ``directions`` are the rows of ``T``,
    and each chunk yields the NewtonLOO score(s) and the leverage.

    ``gradient`` (default: ``grad J`` of ``terms``) may be a (P, B) block of
    one row's objective gradient per column (``terms`` holding those rows):
    then each chunk yields B scores and the leverage, the second-order
    terms coming from :mod:`skinfluence.methods._newton_loo_block`. ``factor``:
    :func:`hessian_factor`'s output, when it was computed already.
    """

    def __init__(self, adapter, train, terms, *, damping=0.0, second_order=True, batch_size=4096,
                 gradient=None, factor=None):
        c_total, self.damping, L, L_inv = factor or hessian_factor(adapter, train, damping,
                                                                   batch_size)
        grad_J = adapter.objective_gradient(terms) if gradient is None else gradient
        #: H_sum^-1 grad J (scaled by c_total it is ExactHessian's direction)
        self.u = solve_triangular(L.T, solve_triangular(L, grad_J, lower=True), lower=False)
        self.c_total = c_total
        self.n_columns = 2 if self.u.ndim == 1 else self.u.shape[1] + 1
        self.second_order = bool(second_order)
        self._K = adapter.n_outputs
        if self.u.ndim == 2:  # a block: T = L^-1, the directions' terms come per chunk
            self.lam, self.T = None, L_inv
            self.block = BlockSecondOrder(adapter, train, terms, self.u) \
                if self.second_order else None
            return
        if self.second_order:
            curvature = adapter.objective_hessian(terms, batch_size=batch_size)
            curvature -= adapter.training_hessian_derivative(train, self.u, batch_size=batch_size)
            Q = L_inv @ curvature @ L_inv.T
            self.lam, E = eigh((Q + Q.T) / 2)
            self.T = E.T @ L_inv
        else:
            self.lam, self.T = None, L_inv

    @property
    def directions(self):
        """(P, P): the rows of T, whose logit products with each row are the ``Y_i``."""
        return self.T

    def __call__(self, rows, chunk):
        """One chunk's NewtonLOO scores and leverages: (n, 2).

        ``chunk.direction``: products with ExactHessian's direction ``c_total * u``;
        ``chunk.jvps``: products with the rows of T, (n, K', P).
        """
        adapter, F, Zv, Yt, c = chunk.adapter, chunk.logits, chunk.direction, chunk.jvps, \
            chunk.weight
        P, B, lev, m = _woodbury_step(adapter, F, chunk.y, Yt, c)
        if Zv.ndim == 3:  # a block of directions: (n, B, K')
            return self._block_scores(adapter, P, B, lev, m, Zv / self.c_total, Yt, c)
        score = c * np.einsum("nk,nk->n", Zv / self.c_total, m)
        if self.second_order:
            N = np.einsum("nkr,r,nlr->nkl", Yt, self.lam, Yt)
            score += 0.5 * c ** 2 * np.einsum("nk,nkl,nl->n", m, N, m)
            # the step error involves the third derivative of F - c_i l_i: take
            # sample i's own part back out of D_u H (U_i^T dtheta_i = c_i B_i m_i)
            step_logits = c[:, None] * np.einsum("nkl,nl->nk", B, m)
            dS = adapter.curvature_derivative(P, Zv / self.c_total)
            score += 0.5 * c * np.einsum("nk,nkl,nl->n", step_logits, dS, step_logits)
        return np.column_stack([score, lev])

    def _block_scores(self, adapter, P, B, lev, m, dlogits, Yt, c):
        """(n, B + 1): the block's scores, then the leverage (direction-free)."""
        score = c[:, None] * np.einsum("nbk,nk->nb", dlogits, m)
        if self.second_order:
            step_logits = c[:, None] * np.einsum("nkl,nl->nk", B, m)
            score += 0.5 * c[:, None] * self.block.step_error_diagonal(
                adapter, P, step_logits, dlogits)
            # H_sum^-1 U_i m_i, whose quadratic forms give 0.5 dtheta^T (hess J - D_u H) dtheta
            d = np.einsum("nkr,nk->nr", Yt, m) @ self.T
            score += 0.5 * c[:, None] ** 2 * self.block.quadratic(d)
        return np.column_stack([score, lev])

    def dtheta(self, adapter, train, i):
        """dtheta_i for one sample, from the same formulas (used by the exactness test)."""
        K = self._K
        a = train.X[i:i + 1]
        a = np.asarray(a.todense()) if hasattr(a, "todense") else a
        if adapter.fit_intercept:
            a = np.hstack([a, [[1.0]]])
        U = np.kron(np.eye(K), a.T)  # (P, K)
        F = adapter.logits(adapter.theta, train.X[i:i + 1])
        P = adapter.probabilities(F)
        R = (P - adapter.targets(train.y[i:i + 1]))[0]
        S = adapter.curvature(P)[0]
        Yt = self.T @ U  # (P, K)
        B = Yt.T @ Yt
        c = train.weight[i]
        m = np.linalg.solve(np.eye(K) - c * S @ B, R)
        # H^-1 = T^T T, since T = E^T L^-1 with E orthogonal
        return c * (self.T.T @ Yt) @ m
