"""Hessians of a linear model's training objective: built in chunks, or as products."""

import numpy as np

from ..utils._validation import is_sparse
from .base import ATTACK_NORMS, Chunk, ModelAdapter, ObjectiveTerms, TrainingData  # noqa: F401
from ._row_chunks import HESSIAN_CHUNK_ROWS, MAX_CHUNK_ROWS, _dense_rows, _finite_or_raise, \
    _parallel_sum, blas_single_thread


class LinearCurvatureMixin:
    """The curvature part of :class:`~skinfluence.models.linear.LinearModelAdapter`."""

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
        return self.loss.curvature_derivative(P, df)

    def curvature_derivative_forms(self, P, G):
        """``g^T (dS / df_k) g`` for every logit k: (..., K'), P and G broadcast (..., K')."""
        return self.loss.curvature_derivative_forms(P, G)

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
        return self.loss.curvature_times(P, Z)

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
