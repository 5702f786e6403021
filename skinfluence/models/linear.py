"""Adapter for fitted scikit-learn log-loss linear classifiers.

It is the single place that knows this model family: the parameter vector, the
per-sample log-loss and its derivatives, the estimator's *actual* training
objective (so that its gradient at the fitted parameters is ~0 and the Hessian
is the right one), the linear evasion attack, and the streamed scoring pass.

Parametrisation: ``theta = [W | b].ravel()`` with ``W`` of shape (K', d) and
``b`` of shape (K',) when the estimator fits an intercept (``D = d + 1`` columns
per output, else ``D = d``). Binary models have one logit (K' = 1, sigmoid),
multinomial models K logits (softmax). Everything is float64 numpy: exact and,
for a linear model, one matrix product per chunk.

Training objective in sum form::

    F(theta) = sum_i c_i * l_i(theta) + 0.5 * lam * ||W||^2      (b not penalised)

- ``LogisticRegression``: ``c_i = C * cw_i * sw_i`` and ``lam = 1 - l1_ratio``
  (``C = inf`` or ``penalty=None``: ``c_i = cw_i * sw_i``, ``lam = 0``);
- ``SGDClassifier(loss="log_loss")``: ``c_i = cw_i * sw_i / n`` and
  ``lam = alpha * (1 - l1_ratio)`` (l2 / elasticnet), 0 for l1 / None;

with ``cw`` the class weights and ``sw`` the training sample weights. The l1
part of a penalty has no curvature and is left out of the Hessian (damping
only).
"""
from dataclasses import dataclass
import warnings

import numpy as np
from scipy.special import expit, log_expit, softmax, log_softmax
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted

from .._validation import check_features, check_labels, is_sparse
from ._data import TrainingData

SUPPORTED = ("LogisticRegression", "SGDClassifier(loss='log_loss')")

#: rows per chunk of the linear scoring pass at most: measured on 2 cores, 2048-row
#: chunks ran 3x faster than 4096-row ones (the small matrix product stays cache- and
#: single-thread-friendly); memory stays bounded by the caller's batch_size as well.
MAX_CHUNK_ROWS = 2048

#: balls of the budgeted attack (None: the transferred gamma attack)
ATTACK_NORMS = (None, "l2", "linf")

#: leverage above which a sample is reported as one the model cannot fit without
LEVERAGE_WARN = 1.0 - 1e-8


@dataclass
class ObjectiveTerms:
    """An objective written as ``J = sum_j coef_j * phi(f_j)`` over rows of ``X``.

    ``kind="loss"``: phi is the log-loss of label ``y_j``; ``kind="proba"``: phi
    is the predicted probability of class index ``positive``. Objectives build
    these; adapters differentiate them.
    """

    X: object
    y: np.ndarray
    coef: np.ndarray
    kind: str
    positive: int = 1


class LinearModelAdapter:
    """Differentiable view of a fitted log-loss linear classifier.

    Parameters
    ----------
    estimator : LogisticRegression or SGDClassifier(loss="log_loss"), fitted
        Read only; never modified.
    """

    family = "linear"

    def __init__(self, estimator):
        if not isinstance(estimator, (LogisticRegression, SGDClassifier)):
            raise TypeError(_unsupported_message(estimator))
        if isinstance(estimator, SGDClassifier) and estimator.loss != "log_loss":
            raise TypeError(
                f"SGDClassifier(loss={estimator.loss!r}) has no probabilistic log-loss; "
                f"supported: {', '.join(SUPPORTED)}."
            )
        check_is_fitted(estimator, "coef_")
        self.estimator = estimator
        self.classes_ = estimator.classes_
        if len(self.classes_) < 2:
            raise ValueError("The estimator was fitted on a single class; influence needs >= 2.")
        self.multinomial = len(self.classes_) > 2
        if self.multinomial and isinstance(estimator, SGDClassifier):
            raise TypeError(
                "SGDClassifier fits multiclass problems one-vs-rest, which is not a single "
                "log-loss model; use LogisticRegression for multiclass influence."
            )
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        if is_sparse(coef):  # pragma: no cover - sparsified coef_
            coef = coef.toarray()
        self.n_outputs, self.n_features = coef.shape
        self.fit_intercept = bool(estimator.fit_intercept)
        self.n_columns = self.n_features + int(self.fit_intercept)
        blocks = [coef]
        if self.fit_intercept:
            blocks.append(np.asarray(estimator.intercept_, dtype=np.float64).reshape(-1, 1))
        self.theta = np.hstack(blocks).ravel()
        self.n_params = self.theta.size
        self._c, self._lam = self._objective_constants(estimator)

    # ------------------------------------------------------------------ objective
    @staticmethod
    def _objective_constants(est):
        """(C-like multiplier, l2 coefficient) of the estimator's training objective."""
        penalty = getattr(est, "penalty", None)
        if isinstance(est, LogisticRegression):
            C = float(est.C)
            # scikit-learn >= 1.8 deprecates `penalty` for `l1_ratio` (C=inf: none).
            if penalty in (None, "none") or np.isinf(C):
                return 1.0, 0.0
            default = est.l1_ratio if est.l1_ratio is not None else 0.0
            l1_ratio = {"l2": 0.0, "l1": 1.0}.get(penalty, default)
            return C, 1.0 - float(l1_ratio)
        # SGDClassifier: mean-form loss, alpha * R(w)
        if penalty is None or penalty == "l1":
            return "mean", 0.0
        l1_ratio = 0.0 if penalty == "l2" else float(est.l1_ratio)
        return "mean", float(est.alpha) * (1.0 - l1_ratio)

    def training_data(self, X, y, sample_weight=None, *, name="X"):
        """Validate training rows and attach each sample's objective multiplier c_i."""
        X = self.check_X(X, name)
        y_idx = self.encode(y, name="y" if name == "X" else f"y for {name}", n=X.shape[0])
        weight = np.ones(X.shape[0]) if sample_weight is None else sample_weight.copy()
        cw = getattr(self.estimator, "class_weight", None)
        if cw is not None:  # as the estimator computes them: "balanced" counts sample_weight
            labels = self.classes_[y_idx]
            try:
                per_class = compute_class_weight(cw, classes=self.classes_, y=labels,
                                                 sample_weight=sample_weight)
            except TypeError:  # scikit-learn < 1.8 ignores sample_weight here
                per_class = compute_class_weight(cw, classes=self.classes_, y=labels)
            weight = weight * per_class[y_idx]
        if np.all(weight == 0):
            raise ValueError("sample_weight: every training sample has zero weight.")
        weight = weight * (1.0 / X.shape[0] if self._c == "mean" else self._c)
        return TrainingData(X, y_idx, weight)

    def check_X(self, X, name):
        X = check_features(X, name)
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but the estimator was fitted "
                f"with {self.n_features}."
            )
        return X

    def encode(self, y, *, name, n):
        """Map labels to class indices; unknown labels are an error, never dropped."""
        y = check_labels(y, name, n)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if np.any(bad):
            raise ValueError(
                f"{name} contains labels {np.unique(y[bad])[:5].tolist()} that the estimator "
                f"never saw; known classes: {self.classes_.tolist()}."
            )
        return idx

    def regulariser_diagonal(self):
        """Diagonal of the Hessian of 0.5 * lam * ||W||^2 (intercept unpenalised)."""
        diag = np.full((self.n_outputs, self.n_columns), self._lam)
        if self.fit_intercept:
            diag[:, -1] = 0.0
        return diag.ravel()

    def null_directions(self):
        """Orthonormal directions along which the multinomial objective is flat.

        Adding the same amount to one unpenalised column of every class leaves
        the softmax, and so the whole objective, unchanged: the Hessian is
        singular there and every gradient is orthogonal to it.
        """
        if not self.multinomial:
            return np.zeros((self.n_params, 0))
        cols = [self.n_columns - 1] if self.fit_intercept and self._lam > 0 else []
        if self._lam == 0:
            cols = list(range(self.n_columns))
        N = np.zeros((self.n_params, len(cols)))
        K = self.n_outputs
        for j, col in enumerate(cols):
            N[np.arange(K) * self.n_columns + col, j] = 1.0 / np.sqrt(K)
        return N

    # ------------------------------------------------------------------ model maths
    def _split(self, theta):
        M = theta.reshape(self.n_outputs, self.n_columns)
        return M[:, : self.n_features], (M[:, -1] if self.fit_intercept else None)

    def logits(self, theta, X):
        W, b = self._split(theta)
        F = np.asarray(X @ W.T)
        return F + b if b is not None else F

    def _probabilities(self, F):
        return expit(F) if not self.multinomial else softmax(F, axis=1)

    def _targets(self, y_idx):
        if not self.multinomial:
            return y_idx.reshape(-1, 1).astype(np.float64)
        Y = np.zeros((len(y_idx), self.n_outputs))
        Y[np.arange(len(y_idx)), y_idx] = 1.0
        return Y

    def per_sample_loss(self, theta, X, y_idx):
        return self.per_sample_loss_from_logits(self.logits(theta, X), y_idx)

    def predict_proba(self, X, theta=None):
        """Class probabilities (n, K) at ``theta`` (default: the fitted parameters)."""
        F = self.logits(self.theta if theta is None else theta, X)
        if not self.multinomial:
            p = expit(F[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(F, axis=1)

    def _curvature(self, P):
        """Per-sample Hessian of the log-loss w.r.t. the logits: (n, K', K')."""
        if not self.multinomial:
            return (P * (1.0 - P))[:, :, None]
        return np.einsum("nk,kl->nkl", P, np.eye(P.shape[1])) - P[:, :, None] * P[:, None, :]

    def _phi_derivatives(self, terms, F):
        """Value, gradient (n, K') and Hessian (n, K', K') of phi w.r.t. the logits."""
        P = self._probabilities(F)
        if terms.kind == "loss":
            value = self.per_sample_loss_from_logits(F, terms.y)
            return value, P - self._targets(terms.y), self._curvature(P)
        if not self.multinomial:
            sign = 1.0 if terms.positive == 1 else -1.0
            p = P[:, 0]
            value = p if sign > 0 else 1.0 - p
            g = sign * p * (1 - p)
            h = sign * p * (1 - p) * (1 - 2 * p)
            return value, g[:, None], h[:, None, None]
        c = terms.positive
        pc = P[:, c]
        E = -P.copy()
        E[:, c] += 1.0  # e_c - p
        grad = pc[:, None] * E
        hess = pc[:, None, None] * (E[:, :, None] * E[:, None, :] - self._curvature(P))
        return pc, grad, hess

    def per_sample_loss_from_logits(self, F, y_idx):
        if not self.multinomial:
            f = F[:, 0]
            return -np.where(y_idx == 1, log_expit(f), log_expit(-f))
        return -log_softmax(F, axis=1)[np.arange(len(y_idx)), y_idx]

    def _back_project(self, X, G):
        """sum_j G_j (x) a_j as a flat parameter vector, G of shape (n, K')."""
        top = np.asarray(X.T @ G).T  # (K', d)
        if self.fit_intercept:
            top = np.hstack([top, G.sum(axis=0)[:, None]])
        return top.ravel()

    def objective_value(self, terms, theta=None):
        theta = self.theta if theta is None else theta
        value, _, _ = self._phi_derivatives(terms, self.logits(theta, terms.X))
        return float(terms.coef @ value)

    def objective_gradient(self, terms, theta=None):
        """grad_theta J as a flat vector."""
        theta = self.theta if theta is None else theta
        _, G, _ = self._phi_derivatives(terms, self.logits(theta, terms.X))
        return self._back_project(terms.X, terms.coef[:, None] * G)

    def objective_hessian(self, terms, theta=None, batch_size=4096):
        """hess_theta J (P x P): sum_j coef_j * (d2 phi / df2)_j (x) a_j a_j^T."""
        theta = self.theta if theta is None else theta
        _, _, Hf = self._phi_derivatives(terms, self.logits(theta, terms.X))
        return self._sandwich(terms.X, terms.coef[:, None, None] * Hf, batch_size)

    def training_gradient(self, train, theta=None):
        """Gradient of the sum-form training objective F (test helper; ~0 at the fit)."""
        theta = self.theta if theta is None else theta
        F = self.logits(theta, train.X)
        R = self._probabilities(F) - self._targets(train.y)
        return self._back_project(train.X, train.weight[:, None] * R) + (
            self.regulariser_diagonal() * theta
        )

    # ------------------------------------------------------------------ Hessians
    def _gram(self, X, w):
        """[X, 1]^T diag(w) [X, 1] as a dense (D, D) array."""
        if is_sparse(X):
            XtWX = (X.T @ X.multiply(w[:, None]).tocsr()).toarray()
        else:
            XtWX = (X * w[:, None]).T @ X
        if not self.fit_intercept:
            return XtWX
        xw = np.asarray(X.T @ w).ravel()
        return np.block([[XtWX, xw[:, None]], [xw[None, :], np.array([[w.sum()]])]])

    def _sandwich(self, X, blocks, batch_size):
        """sum_i blocks_i (x) a_i a_i^T, blocks of shape (n, K', K'), streamed."""
        K, D = self.n_outputs, self.n_columns
        H = np.zeros((K, D, K, D))
        for start in range(0, X.shape[0], batch_size):
            Xc, Bc = X[start:start + batch_size], blocks[start:start + batch_size]
            for k in range(K):
                for m in range(k, K):
                    G = self._gram(Xc, Bc[:, k, m])
                    H[k, :, m, :] += G
                    if m != k:
                        H[m, :, k, :] += G.T
        return H.reshape(K * D, K * D)

    def data_hessian(self, train, indices=None, sample_weights=None, theta=None,
                     batch_size=4096):
        """``sum_s omega_s * w_s * hess l_s`` (mean form, data part only).

        With all rows and ``omega = 1/n`` it is the weighted mean Hessian; a
        sampler passes its subset and estimator weights.
        """
        theta = self.theta if theta is None else theta
        X, y, w = train.X, train.y, train.relative_weight
        if indices is not None:
            X, y, w = X[indices], y[indices], w[indices]
        omega = np.full(X.shape[0], 1.0 / train.n) if sample_weights is None else sample_weights
        P = self._probabilities(self.logits(theta, X))
        blocks = (omega * w)[:, None, None] * self._curvature(P)
        return self._sandwich(X, blocks, batch_size)

    def training_hessian_derivative(self, train, direction, theta=None, batch_size=4096):
        """``d/dt hess F(theta + t * direction)`` at t = 0 (sum form, P x P).

        The third derivative of the training loss contracted once; NewtonLOO
        uses it for the error of its Newton step. The l2 penalty adds nothing.
        """
        theta = self.theta if theta is None else theta
        P = self._probabilities(self.logits(theta, train.X))
        dS = self.curvature_derivative(P, self.logits(direction, train.X))
        return self._sandwich(train.X, train.weight[:, None, None] * dS, batch_size)

    def curvature_derivative(self, P, df):
        """Change of the per-sample logit curvature S when the logits move by ``df``."""
        if self.multinomial:
            dp = np.einsum("nkl,nl->nk", self._curvature(P), df)
            return (np.einsum("nk,kl->nkl", dp, np.eye(P.shape[1]))
                    - dp[:, :, None] * P[:, None, :] - P[:, :, None] * dp[:, None, :])
        return (P * (1 - P) * (1 - 2 * P) * df)[:, :, None]

    def regulariser_hessian_mean(self, train):
        """Regulariser Hessian in mean form (divided by sum_i c_i), as a diagonal."""
        return self.regulariser_diagonal() / train.weight.sum()

    def hessian(self, train, indices=None, sample_weights=None, theta=None, batch_size=4096):
        """Mean-form Hessian of the training objective (P x P)."""
        H = self.data_hessian(train, indices, sample_weights, theta, batch_size)
        H[np.diag_indices_from(H)] += self.regulariser_hessian_mean(train)
        return H

    def hvp(self, train, vec, theta=None, batch_size=4096, indices=None, sample_weights=None):
        """Mean-form Hessian-vector product, streamed (for CG on large P).

        ``indices`` / ``sample_weights``: a sampler's subset, as for :meth:`hessian`.
        """
        theta = self.theta if theta is None else theta
        V = vec.reshape(self.n_outputs, self.n_columns)
        X, w = train.X, train.relative_weight
        if indices is not None:
            X, w = X[indices], w[indices]
        w = w * (np.full(X.shape[0], 1.0 / train.n) if sample_weights is None else sample_weights)
        out = np.zeros_like(vec)
        for start in range(0, X.shape[0], batch_size):
            Xc = X[start:start + batch_size]
            P = self._probabilities(self.logits(theta, Xc))
            Zv = self.logits(V.ravel(), Xc)  # A V^T
            SZ = np.einsum("nkl,nl->nk", self._curvature(P), Zv)
            out += self._back_project(Xc, w[start:start + batch_size, None] * SZ)
        return out + self.regulariser_hessian_mean(train) * vec

    def hessian_norms(self, train, theta=None):
        """||hess l_i||_F for every training row (the logit sampler's sizes)."""
        theta = self.theta if theta is None else theta
        P = self._probabilities(self.logits(theta, train.X))
        S = self._curvature(P)
        if is_sparse(train.X):
            sq = np.asarray(train.X.multiply(train.X).sum(axis=1)).ravel()
        else:
            sq = np.einsum("ij,ij->i", train.X, train.X)
        sq = sq + float(self.fit_intercept)
        return np.linalg.norm(S, axis=(1, 2)) * sq * train.relative_weight

    def embedding(self, X):
        """Feature representation for the feature sampler: X itself."""
        return X

    # ------------------------------------------------------------------ members
    def perturbed_parameters(self, perturbation, level, rng):
        theta = self.theta
        if perturbation == "dropout":
            keep = rng.random(theta.shape) >= level
            return theta * keep / (1.0 - level)
        if perturbation == "gaussian":
            return theta + rng.normal(0.0, level, size=theta.shape)
        raise ValueError(
            f"perturbation={perturbation!r} is not available for linear models; "
            "expected 'dropout' or 'gaussian'."
        )

    # ------------------------------------------------------------------ attack
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

    # ------------------------------------------------------------------ scoring pass
    def score_pass(self, train, thetas, directions, *, batch_size, loo=None, progress=None):
        """All members' scores ``<v_k, w_i grad l_i(theta_k)>`` in one read of X.

        Parameters
        ----------
        thetas, directions : lists of flat vectors, one pair per member.
        loo : NewtonLOOPass or None
            When given (single member at the fitted theta), the same chunk
            product also yields each sample's leverage and Newton-step score.

        Returns
        -------
        scores : (n, n_members) array; with ``loo``, also (newton, leverage) arrays.
        """
        K, D, d = self.n_outputs, self.n_columns, self.n_features
        n_members = len(thetas)
        batch_size = min(batch_size, MAX_CHUNK_ROWS)
        stacked = [t.reshape(K, D) for t in thetas] + [v.reshape(K, D) for v in directions]
        if loo is not None:  # member 0's direction is ExactHessian's: loo reuses it
            stacked += [loo.transform_block(k) for k in range(K)]
        C = np.vstack(stacked)  # (rows, D): one matmul per chunk gives every column
        Cx = np.ascontiguousarray(C[:, :d].T)
        cb = C[:, d] if self.fit_intercept else None
        w = train.relative_weight
        scores = np.empty((train.n, n_members))
        newton = leverage = None
        if loo is not None:
            newton, leverage = np.empty(train.n), np.empty(train.n)
        for start in range(0, train.n, batch_size):
            stop = min(start + batch_size, train.n)
            Z = np.asarray(train.X[start:stop] @ Cx)
            if cb is not None:
                Z += cb
            Y = self._targets(train.y[start:stop])
            for m in range(n_members):
                F = Z[:, m * K:(m + 1) * K]
                G = Z[:, (n_members + m) * K:(n_members + m + 1) * K]
                R = self._probabilities(F) - Y
                scores[start:stop, m] = w[start:stop] * np.einsum("nk,nk->n", R, G)
            if loo is not None:
                loo.chunk(self, Z[:, n_members * K:(n_members + 1) * K],
                          Z[:, 2 * n_members * K:], Z[:, :K], Y,
                          train.weight[start:stop], newton[start:stop], leverage[start:stop])
            if progress is not None:
                progress.update(stop - start)
        if loo is not None:
            return scores, newton, leverage
        return scores


def _unit_rows(D, norm):
    """Rows of D scaled to the unit ball's worst direction: D / ||D||_2 or sign(D).

    Rows of zeros stay zero (no direction changes the loss there).
    """
    if norm == "linf":
        return np.sign(D)
    length = np.linalg.norm(D, axis=1, keepdims=True)
    return np.divide(D, length, out=np.zeros_like(D), where=length > 0)


def _unsupported_message(estimator):
    return (
        f"Unsupported estimator {type(estimator).__name__}. Supported model families: "
        f"scikit-learn {', '.join(SUPPORTED)}; torch.nn.Module (with a loss) and skorch "
        "NeuralNetClassifier / NeuralNetBinaryClassifier."
    )


def warn_high_leverage(leverage):
    n_bad = int(np.sum(leverage >= LEVERAGE_WARN))
    if n_bad:
        warnings.warn(
            f"{n_bad} training sample(s) have leverage numerically 1: the model cannot fit "
            "without them (no other sample constrains some direction of the parameters). "
            "Their NewtonLOO scores use 1 - leverage clipped at 1e-8: finite and very large, "
            "not reliable in size; inspect `leverage` on the result.",
            RuntimeWarning,
            stacklevel=3,
        )
