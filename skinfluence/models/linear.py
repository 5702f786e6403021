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
import copy
from dataclasses import replace

import numpy as np
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_array, check_is_fitted

from ..utils._validation import check_feature_names, check_features, class_indices, is_sparse
from ._loss import HalfBinomialLoss, HalfMultinomialLoss
from .base import ATTACK_NORMS, Chunk, ModelAdapter, ObjectiveTerms, TrainingData  # noqa: F401
from ._linear_attack import LinearAttackMixin
from ._linear_curvature import LinearCurvatureMixin
from ._row_chunks import AUTO_CHUNK_BYTES, MAX_CHUNK_ROWS, blas_single_thread, check_finite_rows

SUPPORTED = ("LogisticRegression", "SGDClassifier(loss='log_loss')", "LinearRegression",
             "Ridge", "SGDRegressor(loss='squared_error')")


class LinearModelAdapter(LinearCurvatureMixin, LinearAttackMixin, ModelAdapter):
    """Differentiable view of a fitted log-loss linear classifier.

    Parameters
    ----------
    estimator : LogisticRegression or SGDClassifier(loss="log_loss"), fitted
        Read only; never modified.
    """

    family = "linear"
    convex = True  # log-loss plus an l2 penalty
    linear_in_parameters = True  # logits X theta: the Gauss-Newton matrix is the Hessian
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
        #: the per-sample loss (value, residual, curvature in the logits)
        self.loss = HalfMultinomialLoss(self.n_outputs) if self.multinomial else \
            HalfBinomialLoss()

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
        return class_indices(y, self.classes_, name, n)

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
        """The loss's inverse link of the logits (sigmoid, softmax; identity), (n, K')."""
        return self.loss.link(F)

    def targets(self, y):
        """Labels -> the targets of the logits' residual ``P - Y`` (one-hots), (n, K')."""
        return self.loss.targets(y)

    def predict_proba(self, X, theta=None):
        """Class probabilities (n, K) at ``theta`` (default: the fitted parameters)."""
        F = self.logits(self.theta if theta is None else theta, X)
        if not self.multinomial:
            p = expit(F[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(F, axis=1)

    def curvature(self, P):
        """Per-sample Hessian of the loss w.r.t. the logits: (n, K', K')."""
        return self.loss.curvature(P)

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
        return self.loss.value(F, y_idx)

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
        return self.loss.residual_dot(F, G, y)


def _unsupported_message(estimator):
    return (
        f"Unsupported estimator {type(estimator).__name__}. Supported model families: "
        f"scikit-learn {', '.join(SUPPORTED)}, MLPClassifier, MLPRegressor; torch.nn.Module "
        "(with a loss); "
        "skorch NeuralNetClassifier / NeuralNetBinaryClassifier / NeuralNetRegressor; "
        "gradient-boosted trees (HistGradientBoostingClassifier / Regressor, LightGBM's and "
        "XGBoost's LGBM* / XGB* models); a "
        "Pipeline ending in one of them; or a family added with "
        "skinfluence.models.register_adapter. For any other classifier (random forests, "
        "SVMs, k-NN), flag label issues from its out-of-fold probabilities: "
        "find_label_issues(labels=y, pred_probs=cross_val_predict(model, X, y, "
        "method='predict_proba'))."
    )
