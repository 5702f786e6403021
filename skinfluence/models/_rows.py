"""Rows of the inputs a network takes: n-d arrays and skorch's dicts of arrays.

A torch or skorch network takes images ``(n, C, H, W)``, signals ``(n, C, L)``
or, through skorch, a dict of arrays passed to ``module.forward(**X)``. The
meta-estimators and :func:`~skinfluence.find_label_issues` select and split
such rows as skorch does (``skorch.utils.multi_indexing``); for every other
estimator X stays a 2-D matrix checked by scikit-learn's ``validate_data``.
"""
import inspect

import numpy as np
from sklearn.utils import _safe_indexing


def is_net(estimator):
    """A torch module, ``(module, loss)`` pair or skorch net (not a Pipeline of one)."""
    # the classes' modules, so that a user's subclass of a skorch net counts too
    return any(c.__module__.startswith(("skorch", "torch.nn"))
               for c in type(estimator).__mro__) or isinstance(estimator, tuple)


def takes_net_rows(estimator, X):
    """True when X is net input the 2-D checks would refuse: a dict, or an array of ndim > 2."""
    if not is_net(estimator):
        return False
    return isinstance(X, dict) or len(getattr(X, "shape", ())) > 2


def check_net_rows(X, name, estimator=None):
    """Validate a network's rows: a numeric array of ndim >= 2, or a dict of such arrays.

    Every array must be finite (floats) and all must have the same number of
    rows; a dict's keys must be what the network's ``forward`` takes (when
    ``estimator``, a skorch net or torch module, is given). The input is
    returned as given (arrays are converted, never modified).
    """
    if isinstance(X, dict):
        if not X:
            raise ValueError(f"{name} is an empty dict; give at least one array of rows.")
        out = {}
        for key, value in X.items():
            if not isinstance(key, str):
                raise TypeError(f"{name}: dict keys must be the forward() argument names "
                                f"(str), got {key!r}.")
            out[key] = _check_array(value, f"{name}[{key!r}]", min_ndim=1)
        lengths = {k: v.shape[0] for k, v in out.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{name}: the arrays of the dict must have the same number of "
                             f"rows; got {lengths}.")
        module = getattr(estimator, "module", estimator)  # a skorch net's module (class or not)
        if module is not None and hasattr(module, "forward"):
            check_forward_keys(module, out, name)
        return out
    return _check_array(X, name, min_ndim=2)


def check_forward_keys(module, keys, name):
    """A dict input is passed as ``module.forward(**X)``: its keys must be forward's arguments.

    A ``forward(**kwargs)`` takes any key; a signature that cannot be read is
    not checked (the call itself will say what is wrong).
    """
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return
    if isinstance(module, type):  # the unbound function of a class: drop self
        params = params[1:]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    required = {p.name for p in named if p.default is p.empty}
    missing = sorted(required - set(keys))
    extra = [] if takes_any else sorted(set(keys) - {p.name for p in named})
    if missing or extra:
        parts = (f"missing {missing}" if missing else "", f"not taken: {extra}" if extra else "")
        what = "; ".join(part for part in parts if part)
        forward_name = getattr(module, "__name__", type(module).__name__)
        raise ValueError(
            f"{name}: a dict input is passed as forward(**{name}), and "
            f"{forward_name}.forward takes {[p.name for p in named]}; the dict's keys are "
            f"{sorted(keys)} ({what}).")


def _check_array(X, name, min_ndim):
    if hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}.")
    if arr.ndim < min_ndim or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n_samples, ...) with n_samples >= 1 and "
                         f"ndim >= {min_ndim}; got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def n_rows(X):
    """Number of rows of a matrix, n-d array or dict of arrays."""
    if isinstance(X, dict):
        return next(iter(X.values())).shape[0]
    return X.shape[0]


def take_rows(X, idx):
    """The rows ``idx`` of X (dicts indexed array by array, as skorch's multi_indexing does)."""
    if isinstance(X, dict):
        return {k: take_rows(v, idx) for k, v in X.items()}
    return _safe_indexing(X, idx)


def splittable(X):
    """What a CV splitter's ``split`` gets for X: a dict's length is its key count, so a
    dict is replaced by a placeholder of as many rows (splitters read only its length)."""
    if isinstance(X, dict):
        return np.zeros((n_rows(X), 1))
    return X
