"""Dask input for linear models: the training set scored block by block, on any cluster.

``influence_scores`` hands a Dask array or DataFrame training set to
:class:`DaskLinearAdapter`, which speaks the adapter protocol (so every method
runs unchanged) and maps each streamed pass onto the blocks of X:

- the direction ``v`` is computed once on the client (the validation set is
  small and is brought into memory), then sent to the workers as one shared
  graph key;
- a Hessian is a tree reduction of the per-block ``X_b^T D_b X_b``; an HVP
  (CG) is one per block, summed the same way; the samplers draw across blocks
  and bring only the drawn rows to the client;
- the scores come back as a Dask array with the rows chunked as X, one task
  per block; nothing of size n is held on the client.

The per-block work is the in-memory adapter's own, on the block's rows, with
the block's weights put back on the scale of the whole training set.
"""
import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from .base import TrainingData


def is_dask(obj):
    """True for a Dask collection (array, DataFrame, Series), without importing dask."""
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr")


def as_dask_rows(X, name):
    """A Dask array of rows (one block of columns); a DataFrame / Series is converted."""
    import dask.array as da

    if not is_dask(X):
        return da.from_array(np.asarray(X))
    if hasattr(X, "to_dask_array"):  # DataFrame / Series: row counts known after one pass
        # (counted on the array's own graph: a DataFrame's partitions may be regrouped
        # between the expression and the array, and lengths=True then disagrees)
        X = X.to_dask_array().compute_chunk_sizes()
    if not isinstance(X, da.Array):
        raise TypeError(f"{name}: expected a Dask array or DataFrame, got {type(X).__name__}.")
    if X.ndim == 2 and len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # whole rows per block: one product per block
    return X


def compute_if_dask(obj):
    """The validation data in memory (it is small); other input unchanged."""
    if is_dask(obj):
        obj = obj.compute()
    return obj


class _Weights:
    """Each training row's c_i as a Dask array, with its sum and mean known up front."""

    def __init__(self, blocks, total, n):
        self.blocks, self.total, self.n = blocks, float(total), n
        self.relative = blocks / self.mean()  # one collection: one set of graph keys

    def sum(self):
        return self.total

    def mean(self):
        return self.total / self.n


class DaskTrainingData(TrainingData):
    """Training rows as Dask arrays (X, class indices y, weights c_i) chunked alike."""

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def relative_weight(self):
        return self.weight.relative


class DaskLinearAdapter:
    """The adapter protocol over a Dask training set, for a linear model's adapter.

    Parameters
    ----------
    inner : LinearModelAdapter
        Everything that does not read the training rows (the parameters, the
        objective's derivatives on the validation rows...) is its own.
    """

    def __init__(self, inner):
        if hasattr(inner, "transformers"):  # a PipelineAdapter
            raise TypeError(
                "Dask input needs the bare linear model; transform the Dask data with the "
                "pipeline's steps first (e.g. dask-ml) and score its last step."
            )
        if not getattr(inner, "supports_dask", False):
            raise TypeError(
                "Dask input is supported for linear models (LogisticRegression, "
                "SGDClassifier(loss='log_loss')); for networks pass a torch DataLoader."
            )
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    # ------------------------------------------------------------------ data
    def training_data(self, X, y, sample_weight=None, *, name="X"):
        import dask.array as da

        a = self.inner
        X = as_dask_rows(X, name)
        if X.ndim != 2 or X.shape[1] != a.n_features:
            raise ValueError(f"{name} must be 2-D with {a.n_features} features (those the "
                             f"estimator was fitted with), got shape {X.shape}.")
        if not np.issubdtype(X.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {X.dtype}.")
        rows = X.chunks[0]
        y = as_dask_rows(y, "y")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} labels but {name} has {X.shape[0]} rows.")
        y = y.rechunk((rows,))
        codes = y.map_blocks(lambda b: a.encode(b, name="y", n=len(b)), dtype=np.intp)
        sw = (da.ones(X.shape[0], chunks=(rows,)) if sample_weight is None
              else as_dask_rows(sample_weight, "sample_weight"))
        if sw.shape != (X.shape[0],):
            raise ValueError(f"sample_weight has shape {sw.shape}, expected ({X.shape[0]},).")
        sw = sw.rechunk((rows,))
        K = len(a.classes_)
        counts, weighted, sw_min, sw_finite = da.compute(
            da.bincount(codes, minlength=K), da.bincount(codes, weights=sw, minlength=K),
            sw.min(), da.isfinite(sw).all())
        if not sw_finite or sw_min < 0:
            raise ValueError("sample_weight must be finite and non-negative.")
        if np.count_nonzero(counts) < 2:
            raise ValueError("y contains a single class; influence needs at least two.")
        per_class = self._class_weights(counts, weighted, sample_weight is not None)
        scale = 1.0 / X.shape[0] if a._c == "mean" else a._c
        weight = da.map_blocks(lambda s, c: s * per_class[c] * scale, sw, codes,
                               dtype=np.float64)
        total = float(weighted @ per_class) * scale
        if total == 0:
            raise ValueError("sample_weight: every training sample has zero weight.")
        return DaskTrainingData(X, codes, _Weights(weight, total, X.shape[0]))

    def _class_weights(self, counts, weighted, has_sample_weight):
        """Per-class multipliers as the estimator computes them (from the global counts)."""
        a = self.inner
        cw = getattr(a.estimator, "class_weight", None)
        if cw is None:
            return np.ones(len(counts))
        # the same function the estimator calls, on stand-in labels with the same counts
        present = np.flatnonzero(counts)
        labels = a.classes_[present]
        sw = weighted[present] if has_sample_weight else counts[present].astype(float)
        try:
            w = compute_class_weight(cw, classes=a.classes_, y=labels, sample_weight=sw)
        except (TypeError, ValueError):  # scikit-learn < 1.8: counts by repetition
            labels = np.repeat(a.classes_[present], counts[present])
            w = compute_class_weight(cw, classes=a.classes_, y=labels)
        return np.asarray(w, dtype=np.float64)

    # ------------------------------------------------------------------ blocks
    def _blocks(self, train, fn, **shared):
        """One delayed ``fn(X_b, y_b, w_b, **shared)`` per block, ``w`` relative to the whole set.

        ``shared`` values (parameters, directions) become one graph key each,
        sent once to every worker that needs them.
        """
        import dask

        shared = {k: dask.delayed(v, pure=True) for k, v in shared.items()}
        parts = zip(*[arr.to_delayed(optimize_graph=False).ravel()
                      for arr in (train.X, train.y, train.relative_weight)])
        return [dask.delayed(_unless_weightless(fn))(*p, **shared) for p in parts]

    @staticmethod
    def _tree_sum(parts):
        """Sum of delayed arrays by a pairwise tree (depth log2 of the number of blocks)."""
        import dask

        while len(parts) > 1:
            parts = [dask.delayed(np.add)(parts[i], parts[i + 1]) if i + 1 < len(parts)
                     else parts[i] for i in range(0, len(parts), 2)]
        return parts[0].compute()

    def _rows(self, train, indices):
        """A sampler's drawn rows in memory, weights relative to the whole training set."""
        import dask

        idx = np.asarray(indices)
        return _Relative(*dask.compute(train.X[idx], train.y[idx], train.relative_weight[idx],
                                       optimize_graph=False))

    # ------------------------------------------------------------------ Hessians
    def data_hessian(self, train, indices=None, sample_weights=None, theta=None,
                     batch_size=4096):
        a, n = self.inner, train.n
        if indices is not None:  # only the drawn rows come to the client
            return a.data_hessian(self._rows(train, indices), None, sample_weights, theta,
                                  batch_size)

        def block(Xb, yb, wb, theta=None):
            return a.data_hessian(_Relative(Xb, yb, wb), None, np.full(len(wb), 1.0 / n),
                                  theta, batch_size)
        return self._tree_sum(self._blocks(train, block, theta=theta))

    def hessian(self, train, indices=None, sample_weights=None, theta=None, batch_size=4096):
        H = self.data_hessian(train, indices, sample_weights, theta, batch_size)
        H[np.diag_indices_from(H)] += self.inner.regulariser_hessian_mean(train)
        return H

    def training_hessian_derivative(self, train, direction, theta=None, batch_size=4096):
        a, mean = self.inner, train.weight.mean()

        def block(Xb, yb, wb, direction=None, theta=None):
            return a.training_hessian_derivative(TrainingData(Xb, yb, wb * mean), direction,
                                                 theta, batch_size)
        return self._tree_sum(self._blocks(train, block, direction=direction, theta=theta))

    def hvp(self, train, vec, theta=None, batch_size=4096, indices=None, sample_weights=None):
        a, n = self.inner, train.n

        def data_part(part, omega, vec=None, theta=None):
            out = a.hvp(part, vec, theta, batch_size, None, omega)
            return out - a.regulariser_hessian_mean(part) * vec  # the whole set's is added

        if indices is not None:
            data = data_part(self._rows(train, indices), sample_weights, vec, theta)
        else:
            data = self._tree_sum(self._blocks(
                train, lambda Xb, yb, wb, **kw: data_part(
                    _Relative(Xb, yb, wb), np.full(len(wb), 1.0 / n), **kw),
                vec=vec, theta=theta))
        return data + self.inner.regulariser_hessian_mean(train) * vec

    def hessian_norms(self, train, theta=None):
        import dask

        a = self.inner
        parts = self._blocks(train, lambda Xb, yb, wb, theta=None: a.hessian_norms(
            _Relative(Xb, yb, wb), theta), theta=theta)
        return np.concatenate(dask.compute(*parts))

    def embedding(self, X):
        return X.compute() if is_dask(X) else X

    # ------------------------------------------------------------------ scoring pass
    def score_pass(self, train, thetas, directions, *, batch_size, chunk_hook=None,
                   progress=None):
        """The scores as a Dask array chunked as X's rows: one task per block."""
        import dask
        import dask.array as da

        a, mean = self.inner, train.weight.mean()
        n_members = len(thetas)
        width = n_members + (0 if chunk_hook is None else chunk_hook.n_columns)

        def block(Xb, yb, cb, thetas, directions, chunk_hook):
            if not np.any(cb):  # weightless rows change nothing
                return np.zeros((len(cb), width))
            out = a.score_pass(TrainingData(Xb, yb[:, 0], cb[:, 0]), thetas, directions,
                               batch_size=batch_size, chunk_hook=chunk_hook)
            scores, extra = (out, None) if chunk_hook is None else out
            scores = scores * (cb[:, 0].mean() / mean)  # the block's mean weight -> the set's
            return scores if extra is None else np.column_stack([scores, extra])

        shared = [dask.delayed(v, pure=True) for v in (thetas, directions, chunk_hook)]
        out = da.map_blocks(block, train.X, train.y[:, None], train.weight.blocks[:, None],
                            *shared, dtype=np.float64,
                            chunks=(train.X.chunks[0], (width,)))
        return out if chunk_hook is None else (out[:, :n_members], out[:, n_members:])


def _unless_weightless(fn):
    """``fn`` for a block, or zeros when its rows all have zero weight (no mean to divide by)."""
    def block(Xb, yb, wb, **shared):
        out = fn(Xb, yb, wb, **shared)
        return out if np.any(wb) else np.zeros_like(out)
    return block


class _Relative(TrainingData):
    """Rows whose weights are already relative to the whole training set (mean 1 there)."""

    @property
    def relative_weight(self):
        return self.weight

    @property
    def n(self):
        return self.X.shape[0]
