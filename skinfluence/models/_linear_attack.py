"""Evasion attacks on a linear model: the closed-form worst case in an l2 or linf ball."""

import numpy as np

from ..utils._validation import is_sparse
from .base import ATTACK_NORMS, Chunk, ModelAdapter, ObjectiveTerms, TrainingData  # noqa: F401


class LinearAttackMixin:
    """The attack part of :class:`~skinfluence.models.linear.LinearModelAdapter`."""

    def attack(self, X, y_idx, objective):
        """Attacked copy of the validation rows for AdversarialRobustness.

        ``objective.norm`` None: the transferred gamma attack
        (:meth:`linear_attack`); "l2" / "linf": the budgeted worst case
        (:meth:`budgeted_attack`).
        """
        if objective.norm is None:
            return self.linear_attack(X, objective.gamma)
        return self.budgeted_attack(X, y_idx, objective.epsilon, objective.norm)

    def _attack_weights(self):
        """W (K', d), refusing a model whose weights give no direction to attack."""
        W, _ = self._split(self.theta)
        if not np.any(W - W[:1]) and (self.multinomial or not np.any(W)):
            raise ValueError(
                "The model's weights are all zero (or equal across classes): its prediction "
                "does not depend on x, so there is no direction to attack. Fit it with a "
                "weaker penalty (larger C) or more informative features."
            )
        return W

    def linear_attack(self, X, gamma):
        """Push each point across the decision boundary by a factor ``gamma``.

        Binary: ``x' = x - gamma * f(x) / ||w||^2 * w`` (Megyeri et al. 2019).
        Multinomial: the same along ``w_top - w_runner_up`` of the two highest logits.
        """
        X = X.toarray() if is_sparse(X) else np.array(X, dtype=np.float64)
        W = self._attack_weights()
        F = self.logits(self.theta, X)
        if not self.multinomial:
            w = W[0]
            return X - gamma * (F[:, 0] / (w @ w))[:, None] * w[None, :]
        order = np.argsort(F, axis=1)
        top, second = order[:, -1], order[:, -2]
        rows = np.arange(X.shape[0])
        direction = W[top] - W[second]
        margin = F[rows, top] - F[rows, second]
        norm2 = np.einsum("ij,ij->i", direction, direction)
        # tied classes with equal weights: nothing to push along
        step = np.divide(margin, norm2, out=np.zeros_like(margin), where=norm2 > 0)
        return X - gamma * step[:, None] * direction

    def budgeted_attack(self, X, y_idx, epsilon, norm):
        """Loss-maximising point of the ball ``||delta|| <= epsilon`` around each row.

        Binary: exact, ``delta* = -epsilon * s * u(w)`` with s = +-1 the label and
        ``u(w) = w / ||w||_2`` (l2) or ``sign(w)`` (linf): the loss falls with the
        margin ``s (w.x + b)``, which the ball can lower by at most
        ``epsilon * ||w||_dual``. Multinomial: the same step along each rival
        direction ``w_y - w_k`` (k != y); per row the candidate of highest
        cross-entropy is kept (exact for the margin to every single rival; a
        lower bound of the joint worst case).
        """
        X = X.toarray() if is_sparse(X) else np.array(X, dtype=np.float64)
        W = self._attack_weights()
        if not self.multinomial:
            s = np.where(np.asarray(y_idx) == 1, 1.0, -1.0)
            return X - epsilon * s[:, None] * _unit_rows(W, norm)
        F = self.logits(self.theta, X)
        best, best_loss = X.copy(), np.full(X.shape[0], -np.inf)
        for k in range(self.n_outputs):
            delta = -epsilon * _unit_rows(W[y_idx] - W[k], norm)
            loss = self.per_sample_loss_from_logits(F + delta @ W.T, y_idx)
            better = (y_idx != k) & (loss > best_loss)
            best[better] = X[better] + delta[better]
            best_loss[better] = loss[better]
        return best


def _unit_rows(D, norm):
    """Rows of D scaled to the unit ball's worst direction: D / ||D||_2 or sign(D).

    Rows of zeros stay zero (no direction changes the loss there).
    """
    if norm == "linf":
        return np.sign(D)
    length = np.linalg.norm(D, axis=1, keepdims=True)
    return np.divide(D, length, out=np.zeros_like(D), where=length > 0)
