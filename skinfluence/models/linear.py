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
from concurrent.futures import ThreadPoolExecutor
import copy
from dataclasses import replace
import os

import numpy as np
from scipy.special import expit, log_expit, softmax, log_softmax
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_array, check_is_fitted

from .._validation import check_feature_names, check_features, check_labels, is_sparse
from .base import ATTACK_NORMS, Chunk, ModelAdapter, ObjectiveTerms, TrainingData  # noqa: F401

SUPPORTED = ("LogisticRegression", "SGDClassifier(loss='log_loss')")

#: bytes of float64 feature rows per chunk of the scoring pass with batch_size="auto".
#: Each chunk has a fixed cost of a few numpy calls: at d = 100 on 2 cores, 2,048-row
#: chunks spent a third of the pass on it, 8,192-row ones (6.5 MiB) ran at the speed
#: of one matrix product, and larger ones no faster (benchmarks/RESULTS_scale.md).
AUTO_CHUNK_BYTES = 8 * 2**20

#: rows per chunk of the scoring pass at most, whatever batch_size says.
MAX_CHUNK_ROWS = 65536

#: rows per chunk of a Hessian build: its cost is products of width D, as fast with
#: 512-row chunks as with 2,048-row ones (10 classes, d = 100: 1.76 s against 1.79 s
#: at n = 10^5), and each worker thread holds a few chunk-sized temporaries.
HESSIAN_CHUNK_ROWS = 512


class LinearModelAdapter(ModelAdapter):
    """Differentiable view of a fitted log-loss linear classifier.

    Parameters
    ----------
    estimator : LogisticRegression or SGDClassifier(loss="log_loss"), fitted
        Read only; never modified.
    """

    family = "linear"
    convex = True  # log-loss plus an l2 penalty
    supports_newton_loo = True
    supports_dask = True
    uses_numpy_blas = True

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

    def training_data(self, X, y, sample_weight=None, *, name="X", checked=False):
        """Validate training rows and attach each sample's objective multiplier c_i.

        float32 rows stay float32 (no whole copy): every pass over them
        converts one chunk at a time to float64. ``checked=True``: a
        meta-estimator's ``validate_data`` made X a finite numeric array or CSR
        matrix already; only its width and dtype are looked at.
        """
        if not checked:
            X = self._check_rows(X, name)
        else:
            if X.dtype not in (np.float64, np.float32):
                X = X.astype(np.float64)
            X = self._check_width(X, name)
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
        if not np.any(weight):
            raise ValueError("sample_weight: every training sample has zero weight.")
        weight *= 1.0 / X.shape[0] if self._c == "mean" else self._c
        return TrainingData(X, y_idx, weight)

    def checked_training_data(self, X, y, sample_weight=None, *, name="X"):
        return self.training_data(X, y, sample_weight, name=name, checked=True)

    def auto_batch_size(self):
        """Rows per chunk for ``batch_size="auto"``: about 8 MiB of float64 rows."""
        return int(np.clip(AUTO_CHUNK_BYTES // (8 * self.n_columns), 1024, MAX_CHUNK_ROWS))

    def _check_rows(self, X, name):
        """Training rows without a whole-matrix finiteness pass (dense float32 kept).

        A non-finite entry turns every logit of its row non-finite, so the
        passes over the rows (scoring, Hessian, HVP) find it on the way, chunk
        by chunk, and raise the error a check up front would have raised.
        """
        check_feature_names(self.estimator, X, name)
        try:
            X = check_array(X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32),
                            ensure_all_finite=False, input_name=name)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from exc
        if is_sparse(X):
            X = check_features(X, name, dtype=X.dtype)  # cheap: only the stored values
        return self._check_width(X, name)

    def check_X(self, X, name, dtype=np.float64):
        check_feature_names(self.estimator, X, name)
        return self._check_width(check_features(X, name, dtype=dtype), name)

    def _check_width(self, X, name):
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but the estimator was fitted "
                f"with {self.n_features}."
            )
        return X

    def encode(self, y, *, name, n):
        """Map labels to class indices; unknown labels are an error, never dropped."""
        y = check_labels(y, name, n)
        idx = _consecutive_int_codes(y, self.classes_)
        if idx is not None:
            return idx
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

    def with_parameters(self, estimator, theta):
        """A deep copy of ``estimator`` whose ``coef_`` / ``intercept_`` are ``theta``."""
        new = copy.deepcopy(estimator)
        M = theta.reshape(self.n_outputs, self.n_columns)
        coef = np.asarray(estimator.coef_)
        new.coef_ = M[:, :self.n_features].astype(coef.dtype, copy=True).reshape(coef.shape)
        if self.fit_intercept:
            intercept = np.asarray(estimator.intercept_)
            new.intercept_ = M[:, -1].astype(intercept.dtype, copy=True).reshape(intercept.shape)
        return new

    # ------------------------------------------------------------------ model maths
    def _split(self, theta):
        M = theta.reshape(self.n_outputs, self.n_columns)
        return M[:, : self.n_features], (M[:, -1] if self.fit_intercept else None)

    def logits(self, theta, X):
        W, b = self._split(theta)
        F = np.asarray(X @ W.T)
        return F + b if b is not None else F

    def probabilities(self, F):
        """Class probabilities from logits: sigmoid (one logit) or softmax, (n, K')."""
        return expit(F) if not self.multinomial else softmax(F, axis=1)

    def targets(self, y_idx):
        """Class indices -> the one-hot targets of the logits' residual, (n, K')."""
        if not self.multinomial:
            return y_idx.reshape(-1, 1).astype(np.float64)
        Y = np.zeros((len(y_idx), self.n_outputs))
        Y[np.arange(len(y_idx)), y_idx] = 1.0
        return Y

    def predict_proba(self, X, theta=None):
        """Class probabilities (n, K) at ``theta`` (default: the fitted parameters)."""
        F = self.logits(self.theta if theta is None else theta, X)
        if not self.multinomial:
            p = expit(F[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(F, axis=1)

    def curvature(self, P):
        """Per-sample Hessian of the log-loss w.r.t. the logits: (n, K', K')."""
        if not self.multinomial:
            return (P * (1.0 - P))[:, :, None]
        return np.einsum("nk,kl->nkl", P, np.eye(P.shape[1])) - P[:, :, None] * P[:, None, :]

    def _phi_derivatives(self, terms, F):
        """Value, gradient (n, K') and Hessian (n, K', K') of phi w.r.t. the logits."""
        P = self.probabilities(F)
        if terms.kind == "loss":
            value = self.per_sample_loss_from_logits(F, terms.y)
            return value, P - self.targets(terms.y), self.curvature(P)
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
        hess = pc[:, None, None] * (E[:, :, None] * E[:, None, :] - self.curvature(P))
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

    def objective_gradients(self, terms, theta=None):
        """(P, m) block: column j is the gradient of row j's term ``coef_j * phi_j``.

        ``phi_j``'s gradient is ``g_j (x) a_j`` (its logit gradient times the
        row), so the block is built from the rows at once.
        """
        theta = self.theta if theta is None else theta
        _, G, _ = self._phi_derivatives(terms, self.logits(theta, terms.X))
        A = terms.X.toarray() if is_sparse(terms.X) else np.asarray(terms.X, dtype=np.float64)
        if self.fit_intercept:
            A = np.hstack([A, np.ones((A.shape[0], 1))])
        G = terms.coef[:, None] * G
        return (G[:, :, None] * A[:, None, :]).reshape(A.shape[0], -1).T

    def objective_logit_curvature(self, terms, theta=None):
        """(m, K', K'): ``coef_j`` times row j's Hessian of ``phi_j`` in its logits."""
        theta = self.theta if theta is None else theta
        _, _, Hf = self._phi_derivatives(terms, self.logits(theta, terms.X))
        return terms.coef[:, None, None] * Hf

    def objective_hessian(self, terms, theta=None, batch_size=4096):
        """hess_theta J (P x P): sum_j coef_j * (d2 phi / df2)_j (x) a_j a_j^T."""
        theta = self.theta if theta is None else theta

        def blocks(Xc, rows):
            part = replace(terms, y=terms.y[rows])
            _, _, Hf = self._phi_derivatives(part, self.logits(theta, Xc))
            return terms.coef[rows, None, None] * Hf

        return self._sandwich(terms.X, blocks, batch_size, zero_sum=True)

    def training_gradient(self, train, theta=None):
        """Gradient of the sum-form training objective F (test helper; ~0 at the fit)."""
        theta = self.theta if theta is None else theta
        F = self.logits(theta, train.X)
        R = self.probabilities(F) - self.targets(train.y)
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

    def _sandwich(self, X, blocks, batch_size, zero_sum=False):
        """sum_i B_i (x) a_i a_i^T, streamed: ``blocks(X_chunk, rows)`` gives (n_c, K', K').

        Nothing of size n is held. Multinomial, dense: each block (k, m) is
        symmetric, so only its upper triangle is accumulated, all (k, m) pairs
        of a chunk in one product per column; ``zero_sum`` (every row of B_i
        sums to 0, as for the softmax curvature) derives the last class's
        blocks from the others: half the arithmetic of one ``X^T diag(B_km) X``
        per pair. The chunks are shared out to one worker thread per core,
        each on one BLAS thread (see :func:`blas_single_thread`).
        """
        K, D = self.n_outputs, self.n_columns
        step = max(1, min(batch_size, HESSIAN_CHUNK_ROWS))
        triangle = K > 1 and not is_sparse(X)
        Kr = K - 1 if zero_sum and triangle else K
        pk, pm = np.triu_indices(Kr)

        def accumulate(first, last):
            if not triangle:
                H = np.zeros((K, D, K, D))
                for start in range(first, last, step):
                    stop = min(start + step, last)
                    Xc = X[start:stop] if is_sparse(X) else _dense_rows(X, start, stop)
                    Bc = blocks(Xc, slice(start, stop))
                    for k in range(K):
                        for m in range(k, K):
                            G = self._gram(Xc, Bc[:, k, m])
                            H[k, :, m, :] += G
                            if m != k:
                                H[m, :, k, :] += G.T
                return H
            upper = np.zeros((len(pk), D, D))
            for start in range(first, last, step):
                stop = min(start + step, last)
                Xc = _dense_rows(X, start, stop)
                A = np.hstack([Xc, np.ones((stop - start, 1))]) if self.fit_intercept else Xc
                WT = np.ascontiguousarray(blocks(Xc, slice(start, stop))[:, pk, pm].T)
                for p in range(D):
                    upper[:, p, p:] += WT @ (A[:, p:p + 1] * A[:, p:])
            return upper

        acc = _parallel_sum(accumulate, X.shape[0], step)
        if not triangle:
            return _finite_or_raise(acc.reshape(K * D, K * D), X)
        for block in acc:  # mirror each upper triangle in place
            block += np.triu(block, 1).T
        H = np.zeros((K, D, K, D))
        H[pk, :, pm, :] = acc
        H[pm, :, pk, :] = acc
        if Kr < K:
            last = -H[:Kr, :, :Kr, :].sum(axis=2)  # (Kr, D, D): the blocks (k, K-1)
            H[:Kr, :, K - 1, :] = last
            H[K - 1, :, :Kr, :] = last.transpose(1, 0, 2)  # blocks are symmetric
            H[K - 1, :, K - 1, :] = -last.sum(axis=0)
        return _finite_or_raise(H.reshape(K * D, K * D), X)

    def _chunks(self, X, batch_size):
        step = max(1, min(batch_size, HESSIAN_CHUNK_ROWS))
        for start in range(0, X.shape[0], step):
            stop = min(start + step, X.shape[0])
            rows = slice(start, stop)
            yield rows, (X[rows] if is_sparse(X) else _dense_rows(X, start, stop))

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
        w = w * (1.0 / train.n if sample_weights is None else sample_weights)

        def blocks(Xc, rows):
            return w[rows, None, None] * self.curvature(
                self.probabilities(self.logits(theta, Xc)))

        return self._sandwich(X, blocks, batch_size, zero_sum=True)

    def training_hessian_derivative(self, train, direction, theta=None, batch_size=4096):
        """``d/dt hess F(theta + t * direction)`` at t = 0 (sum form, P x P).

        The third derivative of the training loss contracted once; NewtonLOO
        uses it for the error of its Newton step. The l2 penalty adds nothing.
        """
        theta = self.theta if theta is None else theta

        def blocks(Xc, rows):
            P = self.probabilities(self.logits(theta, Xc))
            dS = self.curvature_derivative(P, self.logits(direction, Xc))
            return train.weight[rows, None, None] * dS

        return self._sandwich(train.X, blocks, batch_size, zero_sum=True)

    def curvature_derivative(self, P, df):
        """Change of the per-sample logit curvature S when the logits move by ``df``."""
        if self.multinomial:
            dp = np.einsum("nkl,nl->nk", self.curvature(P), df)
            return (np.einsum("nk,kl->nkl", dp, np.eye(P.shape[1]))
                    - dp[:, :, None] * P[:, None, :] - P[:, :, None] * dp[:, None, :])
        return (P * (1 - P) * (1 - 2 * P) * df)[:, :, None]

    def curvature_derivative_forms(self, P, G):
        """``g^T (dS / df_k) g`` for every logit k: (..., K'), P and G broadcast (..., K').

        With ``S = diag(p) - p p^T`` (one logit: ``p (1 - p)``, the same
        formula), ``dS / df_k`` moves p by ``S e_k``, so the form is
        ``(S g^2)_k - 2 (S g)_k (p . g)``, written without any K' x K' array.
        """
        if not self.multinomial:  # p (1 - p) (1 - 2p) g^2, three products
            return (P * (1.0 - P) * (1.0 - 2.0 * P)) * (G * G)
        pg = np.sum(P * G, axis=-1, keepdims=True)
        pg2 = np.sum(P * G * G, axis=-1, keepdims=True)
        return P * (G * G - pg2) - 2.0 * P * (G - pg) * pg

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
        X, w = train.X, train.relative_weight
        if indices is not None:
            X, w = X[indices], w[indices]
        w = w * (1.0 / train.n if sample_weights is None else sample_weights)
        out = np.zeros_like(vec)
        with blas_single_thread():
            for rows, Xc in self._chunks(X, batch_size):
                P = self.probabilities(self.logits(theta, Xc))
                SZ = self._curvature_times(P, self.logits(vec, Xc))  # S (A V^T)
                out += self._back_project(Xc, w[rows, None] * SZ)
        return _finite_or_raise(out, X) + self.regulariser_hessian_mean(train) * vec

    def _curvature_times(self, P, Z):
        """Each row's logit curvature times its row of Z, without the (n, K, K) array."""
        if not self.multinomial:
            return P * (1.0 - P) * Z
        return P * (Z - np.einsum("nk,nk->n", P, Z)[:, None])

    def hessian_norms(self, train, theta=None):
        """||hess l_i||_F for every training row (the logit sampler's sizes)."""
        theta = self.theta if theta is None else theta
        out = np.empty(train.n)
        for rows, Xc in self._chunks(train.X, MAX_CHUNK_ROWS):
            S = self.curvature(self.probabilities(self.logits(theta, Xc)))
            if is_sparse(Xc):
                sq = np.asarray(Xc.multiply(Xc).sum(axis=1)).ravel()
            else:
                sq = np.einsum("ij,ij->i", Xc, Xc)
            out[rows] = np.linalg.norm(S, axis=(1, 2)) * (sq + float(self.fit_intercept))
        return _finite_or_raise(out, train.X) * train.relative_weight

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
    def score_pass(self, train, thetas, directions, *, batch_size, chunk_hook=None,
                   progress=None):
        """All members' scores ``<v_k, w_i grad l_i(theta_k)>`` in one read of X.

        Parameters
        ----------
        thetas, directions : lists, one pair per member
            Flat parameter vectors; each direction is a flat vector, or a
            (P, B) block of B directions (the same B for every member), all
            scored by the same chunk product.
        chunk_hook : callable or None
            Extra per-chunk work (NewtonLOO's). It has ``directions`` (R, P),
            whose logit products with each row come out of the same chunk
            product, and ``n_columns``; ``chunk_hook(rows, chunk)`` gets a
            :class:`~skinfluence.models.base.Chunk` for member 0 and returns
            (rows, n_columns) values.

        Returns
        -------
        scores : (n, n_members) array, (n, n_members, B) for blocks of directions;
            with ``chunk_hook``, also its (n, n_columns) array.
        """
        K, D, d = self.n_outputs, self.n_columns, self.n_features
        n_members = len(thetas)
        block = directions[0].ndim == 2
        width = directions[0].shape[1] if block else 1
        # direction b of a block: rows b*K:(b+1)*K of the stacked coefficients
        stacked = [t.reshape(K, D) for t in thetas] + [
            np.asarray(v).T.reshape(width * K, D) for v in directions]
        if chunk_hook is not None:  # class k's block of every hook direction, k by k
            stacked += [chunk_hook.directions[:, k * D:(k + 1) * D] for k in range(K)]
        C = np.vstack(stacked)  # (rows, D): one matmul per chunk gives every column
        # a hook's products can be K * P wide: fewer rows keep them at ~32 MiB
        step = min(batch_size, MAX_CHUNK_ROWS, max(64, 4 * AUTO_CHUNK_BYTES // (8 * len(C))))
        Cx = np.ascontiguousarray(C[:, :d].T)
        cb = C[:, d] if self.fit_intercept else None
        scores = np.empty((train.n, n_members, width))
        extra = None if chunk_hook is None else np.empty((train.n, chunk_hook.n_columns))
        with blas_single_thread():
            self._score_chunks(train, max(1, step), (Cx, cb), (scores, extra), chunk_hook,
                               progress, block)
        if not block:
            scores = scores[:, :, 0]
        return scores if chunk_hook is None else (scores, extra)

    def _score_chunks(self, train, step, coefs, out, chunk_hook, progress, block=False):
        """The chunk loop of :meth:`score_pass`, filling ``out`` in place."""
        (Cx, cb), (scores, extra) = coefs, out
        K, (n_members, width) = self.n_outputs, scores.shape[1:]
        wK = width * K  # columns of one member's directions
        inv_mean = 1.0 / train.weight.mean()  # relative weights, chunk by chunk
        for start in range(0, train.n, step):
            stop = min(start + step, train.n)
            Xc = train.X[start:stop]
            if Xc.dtype != np.float64:
                Xc = Xc.astype(np.float64)
            Z = np.asarray(Xc @ Cx)
            if cb is not None:
                Z += cb
            if not np.isfinite(Z).all():
                check_finite_rows(Xc)
            y = train.y[start:stop]
            w = train.weight[start:stop] * inv_mean
            first = n_members * K  # the directions' columns start here
            for m in range(n_members):
                F = Z[:, m * K:(m + 1) * K]
                G = Z[:, first + m * wK:first + (m + 1) * wK].reshape(stop - start, width, K)
                scores[start:stop, m] = w[:, None] * self._residual_dot(F, G, y)
            if chunk_hook is not None:
                jvps = Z[:, first + n_members * wK:].reshape(stop - start, K, -1)
                G0 = Z[:, first:first + wK]
                chunk = Chunk(self, Z[:, :K], G0.reshape(-1, width, K) if block else G0,
                              jvps, y, train.weight[start:stop])
                extra[start:stop] = chunk_hook(slice(start, stop), chunk)
            if progress is not None:
                progress.update(stop - start)

    def _residual_dot(self, F, G, y):
        """``<p(F_i) - onehot(y_i), G_ib>`` for every row i and direction b, G (n, B, K').

        The score's factor, without the one-hots."""
        if not self.multinomial:
            return (expit(F[:, 0]) - y)[:, None] * G[:, :, 0]
        E = np.exp(F - F.max(axis=1, keepdims=True))
        rows = np.arange(len(y))
        return np.einsum("nk,nbk->nb", E, G) / E.sum(axis=1)[:, None] - G[rows, :, y]


def _consecutive_int_codes(y, classes):
    """Class indices without a search when the classes are consecutive integers.

    ``y - classes[0]`` after one min/max pass (the common case: 0..K-1 labels);
    None when that does not apply or a label is out of range (the caller then
    searches, and names the unknown labels).
    """
    if y.dtype.kind not in "iu" or classes.dtype.kind not in "iu":
        return None
    lo = int(classes[0])
    if int(classes[-1]) - lo != len(classes) - 1 or len(y) == 0:
        return None
    if y.min() < lo or y.max() > classes[-1]:
        return None
    return (y - lo if lo else y).astype(np.intp)  # subtracted in y's own width


def check_finite_rows(X, name="X"):
    """Raise the usual error if X holds NaN or infinity (scanned chunk by chunk)."""
    values = X.data if is_sparse(X) else X
    for start in range(0, values.shape[0], MAX_CHUNK_ROWS):
        if not np.isfinite(values[start:start + MAX_CHUNK_ROWS]).all():
            raise ValueError(f"{name}: Input {name} contains NaN or infinity.")


_BLAS = []


def blas_single_thread():
    """Context: numpy's BLAS on one thread (threadpoolctl).

    The passes run many small products, one or a few per chunk. With
    OpenBLAS's own threads each product waits for a second core, and on a
    busy machine (other jobs, or OpenMP threads still spinning after torch
    or scikit-learn's k-means) that wait dominated: a 10-class ExactHessian
    at n = 10^4, d = 100 took 3.6-4.3 s with two BLAS threads and 0.27 s with
    one (benchmarks/RESULTS_scale.md). Parallel work is split by chunks instead.
    """
    if not _BLAS:
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def n_workers():
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _parallel_sum(accumulate, n, step):
    """``sum(accumulate(first, last))`` over contiguous row ranges, one per worker thread.

    Ranges start on chunk boundaries, so the chunks are those of one serial
    loop; BLAS stays on one thread. One range (a single worker or a single
    chunk): no thread is started.
    """
    n_chunks = -(-n // step)
    workers = min(n_workers(), n_chunks)
    bounds = [min(n, step * (n_chunks * j // workers)) for j in range(workers + 1)]
    with blas_single_thread():
        if workers <= 1:
            return accumulate(0, n)
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(accumulate, bounds[:-1], bounds[1:]))
    return sum(parts[1:], parts[0])


def _finite_or_raise(result, X):
    """``result``, after naming non-finite training rows as the cause if it is not finite."""
    if not np.isfinite(result).all():
        check_finite_rows(X)
    return result


def _dense_rows(X, start, stop):
    """Rows start:stop as float64 (a float32 chunk is converted here, one at a time)."""
    Xc = X[start:stop]
    if Xc.dtype != np.float64:
        Xc = Xc.astype(np.float64)
    return Xc


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
