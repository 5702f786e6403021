"""``influence_scores`` (the public entry point), its result, and the estimators' entry."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from .utils._params import resolve
from .utils._typing import (Any, ArrayLike, BatchSize, Device, EstimatorLike, MethodLike,
                            ObjectiveLike, RandomStateLike)
from .utils._progress import progress
from .models._dask import DaskLinearAdapter, compute_if_dask, is_dask
from .utils._validation import (
    check_batch_size,
    check_device,
    check_generator,
    check_n_rows,
    check_not_overflowing,
    check_sample_weight,
)
from .methods._base import Context
from .methods import METHODS
from .models import make_adapter
from .models._row_chunks import blas_single_thread
from .objectives import OBJECTIVES


@dataclass
class InfluenceResult:
    """Scores and the details of how they were computed.

    Attributes
    ----------
    scores : ndarray of shape (n_train,)
        Higher = more beneficial to the objective; negative = detrimental.
        Trimming removes the lowest scores.
    method, objective : the parameter objects used.
    damping : float or None
        Damping added to the Hessian (Hessian methods).
    member_scores : ndarray (n_train, n_members) or None
        IPEnsemble: each member's scores (their spread is an uncertainty).
    leverage : ndarray (n_train,) or None
        NewtonLOO: each sample's self-influence h_i in [0, 1].
    objective_value : float
        J at the fitted parameters.
    extras : dict
        Method-specific detail (e.g. ``first_order_scores`` for NewtonLOO,
        ``subset_indices`` for SampledHessian, solver iterations).
    """

    scores: np.ndarray
    method: object
    objective: object
    damping: float = None
    member_scores: np.ndarray = None
    leverage: np.ndarray = None
    objective_value: float = None
    extras: dict = field(default_factory=dict)

    sign_convention = "higher = more beneficial; negative = detrimental"


def influence_scores(estimator: EstimatorLike, X: ArrayLike, y: ArrayLike, X_val: ArrayLike,
                     y_val: ArrayLike, *, method: MethodLike = "ip",
                     objective: ObjectiveLike = "utility",
                     sensitive_features_val: ArrayLike | None = None,
                     sample_weight: ArrayLike | None = None, batch_size: BatchSize = "auto",
                     device: Device = "auto", random_state: RandomStateLike = None,
                     verbose: bool = False, return_result: bool = False,
                     **adapter_options: Any) -> np.ndarray | InfluenceResult:
    """Score every training sample's influence on an objective.

    ``score_i = <v, grad l(z_i; theta)>`` where the method decides ``v``; the
    whole vector comes from one streamed pass over the training set (one matrix
    product per chunk for linear models, one forward-mode JVP per chunk for
    networks); no per-sample gradient matrix is ever built.

    Parameters
    ----------
    estimator : fitted estimator
        scikit-learn ``LogisticRegression`` / ``SGDClassifier(loss="log_loss")``,
        a skorch ``NeuralNetClassifier`` / ``NeuralNetBinaryClassifier``, or a
        ``torch.nn.Module``. Never modified.
    X, y : training data the estimator was fitted on (numpy, scipy.sparse, pandas).
        Linear models also take a Dask array or DataFrame (with y, and
        sample_weight, as Dask or numpy arrays): each pass runs one task per
        block of rows on the current Dask scheduler (a ``dask.distributed``
        cluster when a client is active), and the scores come back as a Dask
        array chunked as X's rows. The validation data is brought into memory.
        Torch models also take a ``DataLoader`` or map-style ``Dataset`` of
        (x, y) items as X (y=None: the items' labels): each pass reads its
        chunk of rows from the dataset, so the rows can stay on disk.
    X_val, y_val : validation data the objective is measured on.
    method : str or Method, default="ip"
        "ip", "ip_ensemble", "exact_hessian", "sampled_hessian", "newton_loo",
        or an instance (``IPEnsemble(n_members=5)``...).
    objective : str or Objective, default="utility"
        "utility", "demographic_parity", "adversarial_robustness", or an instance.
    sensitive_features_val : array-like or None
        The sensitive attribute of the validation rows (DemographicParity).
    sample_weight : array-like or None
        Weights the estimator was fitted with, so the Hessian is that of its
        actual training objective.
    batch_size : int or "auto", default="auto"
        Training rows per chunk: bounds memory, whatever n is. "auto": about
        8 MiB of float64 rows for linear models (8,192 rows at d = 100, the
        fastest measured), 4096 rows for networks.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Torch models: where to compute (default: where the parameters are).
        Linear models are scored on the CPU in float64.
    random_state : int, RandomState, Generator or None
        Seeds every stochastic step (ensemble members, samplers).
    verbose : bool, default=False
        Show a progress bar over the scoring pass (needs tqdm).
    return_result : bool, default=False
        Return an :class:`InfluenceResult` instead of the bare scores.
    **adapter_options
        Passed to the model's adapter (:func:`skinfluence.models.make_adapter`).
        Torch modules and skorch nets: ``loss=`` (the training criterion of a
        bare module, e.g. ``torch.nn.CrossEntropyLoss()``), ``params=``
        (``"all"`` or ``"last_layer"``: the parameters the influence is taken
        over), ``weight_decay=`` (the L2 decay of training, a float or a dict
        by parameter name), ``classes=``. Linear models take none. The
        estimators take the same options as a dict, ``adapter_options=``.

    Returns
    -------
    scores : ndarray of shape (n_train,)
        Higher = more beneficial; negative = detrimental. (Or the result object.)

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import influence_scores
    >>> from skinfluence.datasets import make_flipped_blobs
    >>> d = make_flipped_blobs(random_state=0)
    >>> model = LogisticRegression(C=100, fit_intercept=False).fit(d.X_train, d.y_train)
    >>> scores = influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test,
    ...                           method="exact_hessian")
    >>> worst = scores.argsort()[:10]          # the 10 most detrimental samples
    >>> int(d.flipped[worst].sum()) >= 8        # mostly the flipped labels
    True
    """
    method = resolve(method, METHODS, "method")
    objective = resolve(objective, OBJECTIVES, "objective")
    device = check_device(device)
    adapter = make_adapter(estimator, device=device, **adapter_options)
    lazy = is_dask(X)
    if lazy:  # scored block by block; the validation rows are small and come into memory
        adapter = DaskLinearAdapter(adapter)
        X_val, y_val, sensitive_features_val = map(
            compute_if_dask, (X_val, y_val, sensitive_features_val))
    elif type(X).__name__ == "DataLoader":  # it counts batches; its dataset counts rows
        n_rows = len(X.dataset) if hasattr(X.dataset, "__len__") else None
    else:
        n_rows = check_n_rows(X, "X")
    if not lazy:
        sample_weight = check_sample_weight(sample_weight, n_rows)
    train = adapter.training_data(X, y, sample_weight)
    if not lazy and not getattr(adapter, "is_regressor", False) \
            and train.y.min() == train.y.max():  # class indices: O(n), no sort
        raise ValueError("y contains a single class; influence needs at least two.")
    result = _score(adapter, train, X_val, y_val, sensitive_features_val, method, objective,
                    batch_size, random_state, verbose, lazy)
    return result if return_result else result.scores


def score_validated(estimator, X, y, X_val, y_val, *, method, objective,
                    sensitive_features_val=None, sample_weight=None, batch_size="auto",
                    random_state=None, verbose=False, **adapter_options):
    """The meta-estimators' :func:`influence_scores`: nothing resolved or validated twice.

    ``method`` and ``objective`` are resolved instances; ``X``, ``y`` and
    ``sample_weight`` come out of the estimator's ``validate_data`` (the
    adapter skips its own checks of X where it can,
    :meth:`~skinfluence.models.base.ModelAdapter.checked_training_data`), and
    the estimator refused a single class. Returns the scores.
    """
    adapter = make_adapter(estimator, **adapter_options)
    train = adapter.checked_training_data(X, y, sample_weight)
    return _score(adapter, train, X_val, y_val, sensitive_features_val, method, objective,
                  batch_size, random_state, verbose, lazy=False).scores


def _score(adapter, train, X_val, y_val, s_val, method, objective, batch_size, random_state,
           verbose, lazy):
    """The objective's terms, the method's pass and the result, for validated rows."""
    if isinstance(batch_size, str) and batch_size == "auto":
        batch_size = getattr(adapter, "auto_batch_size", lambda: 4096)()
    batch_size = check_batch_size(batch_size, train.n)
    terms = objective.terms(adapter, X_val, y_val, s_val)
    rng = check_generator(random_state)
    ctx = Context(adapter, train, terms, batch_size, rng)
    try:
        with _progress(verbose, train.n) as bar, _blas_threads(adapter):
            ctx.progress = bar
            out = _compute(method, ctx)
        if lazy:  # checked block by block when computed
            scores = out.scores.map_blocks(_finite_scores, dtype=out.scores.dtype)
        else:
            scores = _finite_scores(_to_numpy(out.scores))
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        # a numerical failure whose cause is features beyond the squares' range says so
        if not lazy:
            named = [("X", train.X), ("X_val", terms.X)]
            if getattr(adapter, "is_regressor", False):  # real targets enter the squares too
                named += [("y", train.y), ("y_val", terms.y)]
            for name, rows in named:
                check_not_overflowing(rows, name, getattr(adapter, "dtype", np.float64), exc)
        raise
    as_array = _keep if lazy else _to_numpy  # Dask arrays stay lazy
    return InfluenceResult(
        scores=scores, method=method, objective=objective, damping=out.damping,
        member_scores=None if out.member_scores is None else as_array(out.member_scores),
        leverage=None if out.leverage is None else as_array(out.leverage),
        objective_value=adapter.objective_value(terms), extras=out.extras,
    )


def _compute(method, ctx):
    """``method.compute(ctx)``; a NotImplementedError the model family can explain (a
    layer torch cannot differentiate forward) comes out explained."""
    try:
        return method.compute(ctx)
    except NotImplementedError as exc:
        explained = ctx.adapter.explain(exc)
        if explained is exc:
            raise
        raise explained from exc


def _blas_threads(adapter):
    """Linear models: one BLAS thread for the whole computation (its products are
    small and many; with BLAS threads next to OpenMP ones, e.g. after torch ran,
    a 10-class NewtonLOO took 29 s instead of 4 s). Its Hessian build splits
    chunks across cores itself."""
    if getattr(adapter, "uses_numpy_blas", False):
        return blas_single_thread()
    return nullcontext()


def _finite_scores(scores):
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError(
            "Non-finite influence scores: the Hessian is near-singular; increase damping."
        )
    return scores


def _to_numpy(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _keep(a):
    return a


def _progress(verbose, total):
    return progress(verbose=verbose, total=total, desc="scoring", unit="rows")
