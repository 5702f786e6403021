"""NewtonLOO for a block of directions: the terms of each (training row, direction) pair.

:class:`~skinfluence.methods._newton_loo.NewtonLOOPass` scores one direction by
rotating its chunk product into the eigenbasis of ``L^-1 (hess J - D_u H) L^-T``.
That basis differs from one direction to the next, so a block of B
directions (one per test row, :func:`skinfluence.influence_matrix`) uses
``T = L^-1`` for all of them and writes the same second-order term as

    0.5 dtheta_i^T (hess J_j - D_{u_j} H) dtheta_i,     dtheta_i = c_i d_i,  d_i = H^-1 U_i m_i,

with both parts from logits, never a P x P matrix per direction:

- ``hess J_j = U_j S_j U_j^T`` (test row j's own curvature): ``g^T S_j g`` with
  ``g = U_j^T d_i``, the logits of test row j under ``d_i``;
- ``D_u H = sum_l c_l U_l dS_l(U_l^T u) U_l^T`` (the training loss's third
  derivative): ``sum_l c_l g_il^T dS_l(h_lj) g_il`` with ``g_il = U_l^T d_i``
  and ``h_lj = U_l^T u_j``. ``dS`` is linear in ``h``, so this is one matrix
  product of the forms ``g_il^T (dS_l / df_k) g_il`` (i x (l, k)) with
  ``h`` ((l, k) x j), streamed over chunks of training rows l: its cost is
  O(n^2 K (D + B)), nothing of size n x n held.

The direction-free parts (the leverage and the Woodbury step ``m_i``) are shared.
"""
import numpy as np

#: leverage above which a sample is reported as one the model cannot fit without
LEVERAGE_WARN = 1.0 - 1e-8

#: values of one (chunk rows x training rows x K') array of the pairwise term
PAIR_VALUES = 1 << 21


def woodbury_step(adapter, F, y, Yt, c):
    """Direction-free part of one chunk: ``(P, B, leverage, m)``.

    ``B_i = Y_i Y_i^T = U_i^T H^-1 U_i``, ``m_i = (I - c_i S_i B_i)^-1 r_i``;
    the leverage is the largest eigenvalue of ``c_i S_i B_i``.
    """
    n, K = F.shape
    P = adapter.probabilities(F)
    R = P - adapter.targets(y)
    S = adapter.curvature(P)
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
    return P, B, lev, m


class BlockSecondOrder:
    """The second-order NewtonLOO terms of B directions, chunk by chunk.

    Parameters
    ----------
    adapter : linear adapter (``supports_newton_loo``)
    train : TrainingData
    terms : ObjectiveTerms
        One row per direction: direction j is row j's objective gradient.
    u : (P, B) array
        ``H_sum^-1 grad J_j`` for each direction.
    """

    def __init__(self, adapter, train, terms, u):
        self.adapter, self.train = adapter, train
        K, D = adapter.n_outputs, adapter.n_columns
        self.width = u.shape[1]
        self.objective_curvature = adapter.objective_logit_curvature(terms)  # (B, K', K')
        self.test_rows = _with_intercept(adapter, terms.X)  # (B, D)
        self.u_rows = u.T.reshape(self.width * K, D)  # direction j: rows j*K:(j+1)*K

    def step_error_diagonal(self, adapter, P, step_logits, dlogits):
        """(n, B): ``step_i^T dS_i(dlogits_ij) step_i``, the Newton step's own error."""
        forms = adapter.curvature_derivative_forms(P, step_logits)  # (n, K')
        return np.einsum("nbk,nk->nb", dlogits, forms)

    def quadratic(self, d):
        """(n, B): ``d_i^T (hess J_j - D_{u_j} H) d_i`` for the chunk's ``d`` (n, P)."""
        a = self.adapter
        K, D = a.n_outputs, a.n_columns
        n = d.shape[0]
        flat = d.reshape(n * K, D)
        g = (flat @ self.test_rows.T).reshape(n, K, self.width).transpose(0, 2, 1)
        out = np.einsum("nbk,bkl,nbl->nb", g, self.objective_curvature, g)
        X, w = self.train.X, self.train.weight
        step = max(1, PAIR_VALUES // (n * K))
        for start in range(0, X.shape[0], step):
            rows = _with_intercept(a, X[start:start + step])  # (n_l, D)
            g = (flat @ rows.T).reshape(n, K, -1).transpose(0, 2, 1)  # (n, n_l, K')
            P = a.probabilities(rows @ a.theta.reshape(K, D).T)
            forms = a.curvature_derivative_forms(P[None], g) * w[start:start + step, None]
            h = (rows @ self.u_rows.T).reshape(-1, self.width, K)  # (n_l, B, K')
            out -= forms.reshape(n, -1) @ h.transpose(0, 2, 1).reshape(-1, self.width)
        return out


def _with_intercept(adapter, X):
    """Rows as dense float64 ``[x, 1]`` (the intercept's column when the model has one)."""
    A = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
    A = A.astype(np.float64, copy=False)
    if adapter.fit_intercept:
        A = np.hstack([A, np.ones((A.shape[0], 1))])
    return A
