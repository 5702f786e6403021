"""The NewtonLOO additions to the linear scoring pass (the NewtonLOO method).

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
import numpy as np
from scipy.linalg import eigh, solve_triangular

from .._solvers import factorize
from .linear import LEVERAGE_WARN


class NewtonLOOPass:
    """Precomputed pieces of the NewtonLOO pass for one (model, objective)."""

    def __init__(self, adapter, train, terms, *, damping=0.0, second_order=True, batch_size=4096):
        c_total = train.weight.sum()
        H_sum = adapter.hessian(train, batch_size=batch_size) * c_total
        # damping is given in mean-form units (as for ExactHessian): H_sum = c_total * H_mean
        sum_damping = damping if damping == "auto" else float(damping) * c_total
        factor, used = factorize(H_sum, sum_damping, adapter.null_directions())
        self.damping = used / c_total
        L = np.tril(factor[0])
        grad_J = adapter.objective_gradient(terms)
        #: H_sum^-1 grad J (scaled by c_total it is ExactHessian's direction)
        self.u = solve_triangular(L.T, solve_triangular(L, grad_J, lower=True), lower=False)
        self.c_total = c_total
        L_inv = solve_triangular(L, np.eye(L.shape[0]), lower=True)
        self.second_order = bool(second_order)
        if self.second_order:
            curvature = adapter.objective_hessian(terms, batch_size=batch_size)
            curvature -= adapter.training_hessian_derivative(train, self.u, batch_size=batch_size)
            Q = L_inv @ curvature @ L_inv.T
            self.lam, E = eigh((Q + Q.T) / 2)
            self.T = E.T @ L_inv
        else:
            self.lam, self.T = None, L_inv
        self._K, self._D = adapter.n_outputs, adapter.n_columns

    def transform_block(self, k):
        """Rows of T acting on class k's parameter block: (P, D)."""
        return self.T[:, k * self._D:(k + 1) * self._D]

    def chunk(self, adapter, Zv, ZT, F, Y, c, out_score, out_leverage):
        """Fill one chunk's NewtonLOO scores and leverages in place.

        Zv : (n, K') products with ExactHessian's direction ``c_total * u``.
        ZT : (n, K' * P) products with the blocks of T.
        """
        n, K = F.shape
        P = adapter.probabilities(F)
        R = P - Y
        S = adapter.curvature(P)
        Yt = ZT.reshape(n, K, -1)
        B = np.einsum("nkr,nlr->nkl", Yt, Yt)
        cSB = c[:, None, None] * (S @ B)
        if K == 1:
            lev = cSB[:, 0, 0]
            m = R / np.maximum(1.0 - lev, 1.0 - LEVERAGE_WARN)[:, None]
        else:
            lev = np.linalg.eigvals(cSB).real.max(axis=1)
            A = np.eye(K) - cSB
            near = lev >= LEVERAGE_WARN
            A[near] += (1.0 - LEVERAGE_WARN) * np.eye(K)
            m = np.linalg.solve(A, R[:, :, None])[:, :, 0]
        score = c * np.einsum("nk,nk->n", Zv / self.c_total, m)
        if self.second_order:
            N = np.einsum("nkr,r,nlr->nkl", Yt, self.lam, Yt)
            score += 0.5 * c ** 2 * np.einsum("nk,nkl,nl->n", m, N, m)
            # the step error involves the third derivative of F - c_i l_i: take
            # sample i's own part back out of D_u H (U_i^T dtheta_i = c_i B_i m_i)
            step_logits = c[:, None] * np.einsum("nkl,nl->nk", B, m)
            dS = adapter.curvature_derivative(P, Zv / self.c_total)
            score += 0.5 * c * np.einsum("nk,nkl,nl->n", step_logits, dS, step_logits)
        out_score[:] = score
        out_leverage[:] = lev

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
