"""Per-sample losses of the linear adapter, as objects (value, gradient, curvature per row).

In the spirit of scikit-learn's private ``_loss`` module: each loss knows its
inverse link ``P = link(F)`` from the raw outputs ``F`` (n, K'), its targets
``Y`` (so that the gradient in ``F`` is the residual ``P - Y``), its value, its
curvature ``S_i = d2 l_i / dF_i^2`` (n, K', K') and that curvature's derivative.
The linear adapter holds one and never branches on the family; NewtonLOO's
closed forms read the same methods.

- :class:`HalfBinomialLoss`: log-loss of one logit, sigmoid link;
- :class:`HalfMultinomialLoss`: cross-entropy of K logits, softmax link;
- :class:`HalfSquaredError`: ``0.5 (f - y)^2``, identity link, curvature 1 and
  no third derivative (so a Newton step is an exact leave-one-out refit).
"""
import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax

__all__ = ["HalfBinomialLoss", "HalfMultinomialLoss", "HalfSquaredError"]


class HalfBinomialLoss:
    """Log-loss of one logit: ``l = -log sigmoid(s f)``, s = +-1 the label.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.models._loss import HalfBinomialLoss
    >>> loss = HalfBinomialLoss()
    >>> float(loss.value(np.zeros((1, 1)), np.array([1]))[0])  # log 2
    0.6931471805599453
    """

    n_outputs = 1

    def link(self, F):
        return expit(F)

    def targets(self, y):
        return np.asarray(y).reshape(-1, 1).astype(np.float64)

    def value(self, F, y):
        f = F[:, 0]
        return -np.where(np.asarray(y) == 1, log_expit(f), log_expit(-f))

    def residual_dot(self, F, G, y):
        """``<link(F_i) - Y_i, G_ib>`` for every row i and direction b, G (n, B, K')."""
        return (expit(F[:, 0]) - y)[:, None] * G[:, :, 0]

    def curvature(self, P):
        return (P * (1.0 - P))[:, :, None]

    def curvature_times(self, P, Z):
        """``S_i z_i`` for every row without the (n, K', K') array."""
        return P * (1.0 - P) * Z

    def curvature_derivative(self, P, dF):
        """Change of S_i when the outputs move by ``dF``: (n, K', K')."""
        return (P * (1 - P) * (1 - 2 * P) * dF)[:, :, None]

    def curvature_derivative_forms(self, P, G):
        """``g^T (dS / df_k) g`` for the one logit: ``p (1 - p) (1 - 2p) g^2``, three products."""
        return (P * (1.0 - P) * (1.0 - 2.0 * P)) * (G * G)


class HalfMultinomialLoss:
    """Cross-entropy of K logits: ``l = -log softmax(F)_y``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.models._loss import HalfMultinomialLoss
    >>> round(float(HalfMultinomialLoss(3).value(np.zeros((1, 3)), np.array([2]))[0]), 6)
    1.098612
    """

    def __init__(self, n_outputs):
        self.n_outputs = n_outputs

    def link(self, F):
        return softmax(F, axis=1)

    def targets(self, y):
        Y = np.zeros((len(y), self.n_outputs))
        Y[np.arange(len(y)), y] = 1.0
        return Y

    def value(self, F, y):
        return -log_softmax(F, axis=1)[np.arange(len(y)), y]

    def residual_dot(self, F, G, y):
        E = np.exp(F - F.max(axis=1, keepdims=True))
        rows = np.arange(len(y))
        return np.einsum("nk,nbk->nb", E, G) / E.sum(axis=1)[:, None] - G[rows, :, y]

    def curvature(self, P):
        return np.einsum("nk,kl->nkl", P, np.eye(P.shape[1])) - P[:, :, None] * P[:, None, :]

    def curvature_times(self, P, Z):
        return P * (Z - np.einsum("nk,nk->n", P, Z)[:, None])

    def curvature_derivative(self, P, dF):
        dp = np.einsum("nkl,nl->nk", self.curvature(P), dF)
        return (np.einsum("nk,kl->nkl", dp, np.eye(P.shape[1]))
                - dp[:, :, None] * P[:, None, :] - P[:, :, None] * dp[:, None, :])

    def curvature_derivative_forms(self, P, G):
        """``g^T (dS / df_k) g`` for every logit k: (..., K'), P and G broadcast (..., K').

        With ``S = diag(p) - p p^T`` (one logit: ``p (1 - p)``, the same
        formula), ``dS / df_k`` moves p by ``S e_k``, so the form is
        ``(S g^2)_k - 2 (S g)_k (p . g)``, written without any K' x K' array.
        """
        pg = np.sum(P * G, axis=-1, keepdims=True)
        pg2 = np.sum(P * G * G, axis=-1, keepdims=True)
        return P * (G * G - pg2) - 2.0 * P * (G - pg) * pg


class HalfSquaredError:
    """``l = 0.5 (f - y)^2`` of one real output: identity link, curvature 1.

    The curvature does not depend on the parameters, so its derivative (the
    loss's third derivative) is zero: NewtonLOO's step is exact.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.models._loss import HalfSquaredError
    >>> HalfSquaredError().value(np.array([[3.0]]), np.array([1.0]))
    array([2.])
    """

    n_outputs = 1

    def link(self, F):
        return F

    def targets(self, y):
        return np.asarray(y, dtype=np.float64).reshape(-1, 1)

    def value(self, F, y):
        return 0.5 * (F[:, 0] - y) ** 2

    def residual_dot(self, F, G, y):
        return (F[:, 0] - y)[:, None] * G[:, :, 0]

    def curvature(self, P):
        return np.ones((P.shape[0], 1, 1))

    def curvature_times(self, P, Z):
        return Z

    def curvature_derivative(self, P, dF):
        return np.zeros((P.shape[0], 1, 1))

    def curvature_derivative_forms(self, P, G):
        return np.zeros(np.broadcast_shapes(np.shape(P), np.shape(G)))
