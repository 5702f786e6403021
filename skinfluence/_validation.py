"""Argument checks shared by the public entry points.

Every error names the argument and says what was expected (the convention of the whole package).
"""
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import (
    check_array,
    check_random_state,
    column_or_1d,
)

_DEVICES = ("auto", "cpu", "cuda")


def check_batch_size(batch_size, n_samples):
    """Return a positive int no larger than ``n_samples``."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive int, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    return int(min(batch_size, max(n_samples, 1)))


def check_device(device):
    """Validate ``device`` ("auto", "cpu", "cuda" or "cuda:N")."""
    if isinstance(device, str) and (device in _DEVICES or device.startswith("cuda:")):
        return device
    # torch.device objects are accepted as-is by the torch adapter.
    if type(device).__name__ == "device":
        return str(device)
    raise ValueError(f"device must be one of {_DEVICES} (or 'cuda:N'), got {device!r}.")


def check_features(X, name, *, accept_sparse=True, dtype=np.float64):
    """Validate a 2-D feature matrix: finite, numeric; pandas and sparse accepted.

    The input is never modified; a converted copy is returned when needed.
    """
    try:
        return check_array(
            X,
            accept_sparse=["csr", "csc"] if accept_sparse else False,
            dtype=dtype,
            ensure_all_finite=True,
            input_name=name,
        )
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def check_labels(y, name, n_samples):
    """Validate a 1-D label vector of length ``n_samples`` with no missing values."""
    if y is None:
        raise ValueError(f"{name} is required (1-D labels of length {n_samples}), got None.")
    y = column_or_1d(y, warn=False)
    if y.dtype.kind == "O":
        check_sortable_labels(y, name)
    if len(y) != n_samples:
        raise ValueError(
            f"{name} has {len(y)} labels but the matching features have {n_samples} rows."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return y


def check_sortable_labels(y, name):
    """Object labels must be present and comparable (all numbers or all strings)."""
    missing = [v is None or (isinstance(v, float) and v != v) for v in y]
    if any(missing):
        raise ValueError(f"{name} contains missing labels (None or NaN) at "
                         f"{int(np.sum(missing))} rows; every row needs a class.")
    kinds = {"str" if isinstance(v, str) else "number" if isinstance(v, numbers.Number)
             else type(v).__name__ for v in y}
    if len(kinds) > 1:
        raise TypeError(
            f"{name} mixes label types {sorted(kinds)}; labels must be all numbers or all "
            "strings, so that the classes can be sorted."
        )


def check_n_rows(X, name):
    """Number of rows of a 2-D input, or a clear error for None / a scalar."""
    if X is None:
        raise ValueError(f"{name} is required (2-D array-like of shape (n_samples, "
                         "n_features)), got None.")
    if hasattr(X, "shape") and len(X.shape) >= 1:
        return X.shape[0]
    if hasattr(X, "__len__") and not isinstance(X, (str, bytes)):
        return len(X)
    raise TypeError(f"{name} must be a 2-D array-like of shape (n_samples, n_features), "
                    f"got {type(X).__name__}.")


def check_generator(random_state):
    """A numpy ``Generator`` from an int, ``RandomState``, ``Generator`` or None.

    A ``Generator`` (or ``RandomState``) passed in is advanced by one draw,
    the seed of the generator used inside: its later draws stay reproducible.
    """
    if isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state.integers(2**31 - 1))
    try:
        rs = check_random_state(random_state)
    except ValueError:
        raise ValueError(
            "random_state must be None, an int, a numpy RandomState or Generator, got "
            f"{random_state!r}."
        ) from None
    return np.random.default_rng(rs.randint(2**31 - 1))


def check_feature_names(estimator, X, name):
    """Refuse a DataFrame whose columns differ from the fitted estimator's, as its predict does.

    Only when both have names: a numpy array is taken by position (sklearn
    warns there; the adapters stay silent).
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    columns = getattr(X, "columns", None)
    if fitted is None or columns is None:
        return
    given = np.asarray([str(c) for c in columns], dtype=object)
    if len(given) == len(fitted) and np.all(given == np.asarray(fitted, dtype=object)):
        return
    if set(given) == set(fitted):
        raise ValueError(
            f"{name}: the columns are those the estimator was fitted with but in another "
            f"order; reorder them as in fit: {list(fitted)[:10]}."
        )
    missing = sorted(set(fitted) - set(given))[:5]
    unseen = sorted(set(given) - set(fitted))[:5]
    raise ValueError(
        f"{name}: the column names differ from those the estimator was fitted with "
        f"(missing: {missing}; unseen at fit time: {unseen})."
    )


def check_sample_weight(sample_weight, n_samples, name="sample_weight"):
    if sample_weight is None:
        return None
    w = column_or_1d(np.asarray(sample_weight, dtype=np.float64), warn=False)
    if len(w) != n_samples:
        raise ValueError(f"{name} has length {len(w)}, expected {n_samples}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative.")
    return w


def column_values(X, col, x_name):
    """1-D values of column ``col`` (a name for a DataFrame, else an index) of ``X``."""
    if hasattr(X, "columns"):
        if col in X.columns:
            return np.asarray(X[col]).ravel()
        if isinstance(col, numbers.Integral) and not isinstance(col, bool):
            if not -X.shape[1] <= col < X.shape[1]:
                raise ValueError(f"sensitive_feature={col} is out of range: {x_name} has "
                                 f"{X.shape[1]} columns.")
            return np.asarray(X.iloc[:, col]).ravel()
        raise ValueError(f"sensitive_feature={col!r} is not a column of {x_name}.")
    if not isinstance(col, numbers.Integral) or isinstance(col, bool):
        raise ValueError(
            f"sensitive_feature={col!r} is a column name, but {x_name} has no column "
            "names; give a column index or pass a pandas DataFrame."
        )
    n_cols = X.shape[1] if len(getattr(X, "shape", ())) == 2 else np.shape(X)[1]
    if not -n_cols <= col < n_cols:
        raise ValueError(
            f"sensitive_feature={col} is out of range: {x_name} has {n_cols} columns."
        )
    if sp.issparse(X):
        return X.tocsc()[:, col].toarray().ravel()
    return np.asarray(X)[:, col].ravel()


def is_sparse(X):
    return sp.issparse(X)
