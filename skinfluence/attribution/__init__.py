"""``influence_matrix``: every training row's influence on every single test prediction.

Row j of the matrix is :func:`~skinfluence.influence_scores` with the one test
row ``(X_test[j], y_test[j])`` as the validation data (objective
:class:`~skinfluence.Utility`): the method's direction becomes a block of
directions, one per test row, and the same streamed pass over the training
rows scores all of them (one chunk product for a linear model, one batched
JVP for a network). What does not depend on the direction (the Hessian's
factorisation, an ensemble's members, a sampler's subset) is computed once.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import numbers

import numpy as np

from ..utils._typing import (Any, ArrayLike, BatchSize, Device, EstimatorLike, MethodLike,
                             RandomStateLike)
from ..models._dask import is_dask
from ..methods._base import Context
from ..utils._params import resolve
from ..utils._validation import check_batch_size, check_device, check_generator, check_n_rows, \
    check_sample_weight
from ..influence import _blas_threads, _compute, _finite_scores, _progress, _to_numpy
from ..methods import METHODS
from ..models import make_adapter
from ..models.base import ObjectiveTerms


@dataclass
class TopInfluences:
    """The training rows that most support and most oppose each test prediction.

    Attributes
    ----------
    proponents, opponents : ndarray of shape (n_test, k)
        Indices of the training rows with the highest scores (they lower the
        test row's loss most: removing them would raise it) and with the
        lowest (they raise it), most influential first.
    proponent_scores, opponent_scores : ndarray of shape (n_test, k)
        Their scores (higher = more beneficial, as everywhere).
    """

    proponents: np.ndarray
    proponent_scores: np.ndarray
    opponents: np.ndarray
    opponent_scores: np.ndarray


def influence_matrix(estimator: EstimatorLike, X: ArrayLike, y: ArrayLike, X_test: ArrayLike,
                     y_test: ArrayLike, *, method: MethodLike = "ip",
                     sample_weight: ArrayLike | None = None, top_k: int | None = None,
                     test_batch_size: int | None = None, batch_size: BatchSize = "auto",
                     device: Device = "auto", random_state: RandomStateLike = None,
                     verbose: bool = False,
                     **adapter_options: Any) -> np.ndarray | TopInfluences:
    """Influence of every training row on the loss of every test row.

    ``M[j, i]`` is the score of training row i for the log-loss of test row j
    alone: row j equals :func:`~skinfluence.influence_scores` called with
    ``X_test[j:j + 1], y_test[j:j + 1]`` as the validation data (same method,
    same integer ``random_state``). Higher = more beneficial (training row i
    lowers test row j's loss); negative = it raises it.

    Parameters
    ----------
    estimator : fitted estimator
        As for :func:`~skinfluence.influence_scores` (linear models, skorch
        nets, torch modules; not Dask collections).
    X, y : training data the estimator was fitted on.
    X_test, y_test : the predictions to explain (their given labels).
    method : str or Method, default="ip"
        "ip", "ip_ensemble", "exact_hessian", "sampled_hessian", "newton_loo",
        or an instance. CG and LiSSA solves (large networks) run once per
        test row; Cholesky solves share one factorisation. NewtonLOO's
        second-order terms cost O(n_train^2 K (d + n_test)) here (the
        per-row call: O(n_train P^2) per test row); ``second_order=False``
        makes it a single pass.
    sample_weight : array-like or None
        Weights the estimator was fitted with.
    top_k : int or None, default=None
        None: return the whole (n_test, n_train) matrix. An int: return
        :class:`TopInfluences` (the ``top_k`` proponents and opponents of
        each test row) without holding the matrix: at most
        ``test_batch_size`` rows of it exist at a time.
    test_batch_size : int or None, default=None
        Test rows scored per pass over the training rows (each holds an
        (n_train, test_batch_size) block). None: all of them in one pass
        when ``top_k`` is None, else as many as fit in 64 MiB.
    batch_size : int or "auto", default="auto"
        Training rows per chunk of the pass, as for ``influence_scores``.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState, Generator or None
        Seeds the ensemble members / sampler (drawn once for all test rows).
    verbose : bool, default=False
        Progress bar over the passes (needs tqdm).
    **adapter_options
        Torch models: ``loss``, ``params``, ``weight_decay``, ``classes``.

    Returns
    -------
    scores : ndarray of shape (n_test, n_train), or :class:`TopInfluences`.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import influence_matrix
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=1000).fit(X[::2], y[::2])
    >>> M = influence_matrix(model, X[::2], y[::2], X[1::50], y[1::50],
    ...                      method="exact_hessian")
    >>> M.shape
    (3, 75)
    >>> top = influence_matrix(model, X[::2], y[::2], X[1::50], y[1::50],
    ...                        method="exact_hessian", top_k=2)
    >>> bool((y[::2][top.proponents[0]] == y[1]).all())  # same-class rows support it
    True
    """
    method = resolve(method, METHODS, "method")
    if is_dask(X):
        raise TypeError(
            "influence_matrix: X is a Dask collection; it needs the training rows in memory "
            "or as a torch Dataset (use influence_scores for Dask input)."
        )
    adapter = make_adapter(estimator, device=check_device(device), **adapter_options)
    if type(X).__name__ != "DataLoader":
        sample_weight = check_sample_weight(sample_weight, check_n_rows(X, "X"))
    train = adapter.training_data(X, y, sample_weight)
    if not getattr(adapter, "is_regressor", False) and train.y.min() == train.y.max():
        raise ValueError("y contains a single class; influence needs at least two.")
    X_test = adapter.check_X(X_test, "X_test")
    n_test = X_test.shape[0]
    # each test row is its own objective: its log-loss (Utility of that row alone)
    terms = ObjectiveTerms(X_test, adapter.encode(y_test, name="y_test", n=n_test),
                           np.ones(n_test), "loss")
    top_k = _check_top_k(top_k, train.n)
    block = _test_block(test_batch_size, top_k, n_test, train.n)
    if isinstance(batch_size, str) and batch_size == "auto":
        batch_size = getattr(adapter, "auto_batch_size", lambda: 4096)()
    ctx = Context(adapter, train, terms, check_batch_size(batch_size, train.n),
                  check_generator(random_state), per_row=True)
    parts = []
    n_passes = -(-n_test // block)
    with _progress(verbose, train.n * n_passes) as bar, _blas_threads(adapter):
        ctx.progress = bar
        for start in range(0, n_test, block):
            rows = slice(start, min(start + block, n_test))
            ctx.terms = replace(terms, X=terms.X[rows], y=terms.y[rows], coef=terms.coef[rows])
            out = _compute(method, ctx)
            scores = _finite_scores(_to_numpy(out.scores)).T  # (B, n_train)
            parts.append(scores if top_k is None else _top(scores, top_k))
    if top_k is None:
        return np.concatenate(parts)
    return TopInfluences(*(np.concatenate([p[i] for p in parts]) for i in range(4)))


#: bytes of one (n_train, test_batch_size) block when top_k is given and test_batch_size is None
TOP_K_BLOCK_BYTES = 64 * 2**20


def _check_top_k(top_k, n_train):
    if top_k is None:
        return None
    if not isinstance(top_k, numbers.Integral) or isinstance(top_k, bool) \
            or not 1 <= top_k <= n_train:
        raise ValueError(f"top_k must be None or an int in [1, {n_train}], got {top_k!r}.")
    return int(top_k)


def _test_block(test_batch_size, top_k, n_test, n_train):
    if test_batch_size is None:
        if top_k is None:
            return n_test
        return int(np.clip(TOP_K_BLOCK_BYTES // (8 * n_train), 1, n_test))
    if not isinstance(test_batch_size, numbers.Integral) or isinstance(test_batch_size, bool) \
            or test_batch_size < 1:
        raise ValueError(
            f"test_batch_size must be None or a positive int, got {test_batch_size!r}."
        )
    return int(min(test_batch_size, n_test))


def _top(scores, k):
    """(proponents, their scores, opponents, their scores) of each row of ``scores``."""
    n = scores.shape[1]
    hi = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else \
        np.tile(np.arange(n), (len(scores), 1))
    hi = np.take_along_axis(hi, np.argsort(-np.take_along_axis(scores, hi, 1), axis=1), 1)
    lo = np.argpartition(scores, k - 1, axis=1)[:, :k] if k < n else \
        np.tile(np.arange(n), (len(scores), 1))
    lo = np.take_along_axis(lo, np.argsort(np.take_along_axis(scores, lo, 1), axis=1), 1)
    return hi, np.take_along_axis(scores, hi, 1), lo, np.take_along_axis(scores, lo, 1)
