"""Argument checks shared by the public entry points.

Every error names the argument and says what was expected (the convention of the whole package).
"""
import numbers
import sys

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


def check_sortable_labels(y, name, what="labels", each="class"):
    """Object labels must be present and comparable (all numbers or all strings)."""
    missing = [_is_missing(v) for v in y]
    if any(missing):
        raise ValueError(f"{name} contains missing {what} (None or NaN) at "
                         f"{int(np.sum(missing))} rows; every row needs a {each}.")
    kinds = {"str" if isinstance(v, str) else "number" if isinstance(v, numbers.Number)
             else type(v).__name__ for v in y}
    if len(kinds) > 1:
        raise TypeError(
            f"{name} mixes {what[:-1]} types {sorted(kinds)}; {what} must be all numbers or "
            f"all strings, so that they can be sorted."
        )


def _is_missing(v):
    return v is None or (isinstance(v, numbers.Real) and v != v)


def check_groups(s, name, n_samples=None):
    """A sensitive attribute: one group per row, none missing, all sortable.

    NaN / None are refused rather than dropped or kept as a group of their
    own: a row of unknown group would silently change every group's rate.
    Several columns (a DataFrame or a 2-D array, fairlearn's intersectional
    groups) make one group per combination of their values.
    """
    s = intersectional_groups(s, name)
    s = column_or_1d(np.asarray(s), warn=True)
    if n_samples is not None and len(s) != n_samples:
        raise ValueError(f"{name} has {len(s)} values, expected {n_samples} (one per row).")
    if s.dtype.kind == "O":
        check_sortable_labels(s, name, what="groups", each="group")
    elif s.dtype.kind in "fc" and not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains NaN or infinity; every row needs a group.")
    return s


def check_split_groups(groups, n_samples):
    """Group labels for a CV splitter: 1-D, one per row (any hashable labels)."""
    groups = column_or_1d(np.asarray(groups), warn=True)
    if len(groups) != n_samples:
        raise ValueError(f"groups has {len(groups)} values, expected {n_samples} (one per row).")
    return groups


def intersectional_groups(s, name):
    """One group label per row from several sensitive columns; one column is left as it is.

    A row's group is ``"col=value, col=value"`` for a DataFrame and
    ``"value, value"`` for a 2-D array, so that groups sort and print as
    fairlearn's ``MetricFrame`` shows its intersectional index.
    """
    if hasattr(s, "columns") and hasattr(s, "iloc"):  # a DataFrame
        if s.shape[1] == 1:
            return s.iloc[:, 0].to_numpy()
        columns = [str(c) for c in s.columns]
        values = s.to_numpy(dtype=object)
    else:
        values = np.asarray(s, dtype=object) if np.ndim(s) == 2 else None
        if values is None or values.shape[1] == 1:
            return s if values is None else values[:, 0]
        columns = None
    if values.shape[1] == 0:
        raise ValueError(f"{name} has no column; give one group per row.")
    for j in range(values.shape[1]):  # missing values keep their own error
        check_groups(values[:, j], f"{name} (column {j if columns is None else columns[j]!r})")
    if columns is None:
        return np.array([", ".join(map(str, row)) for row in values], dtype=object)
    return np.array([", ".join(f"{c}={v}" for c, v in zip(columns, row)) for row in values],
                    dtype=object)


def check_binary_pos_label(pos_label, labels, name="pos_label"):
    """``pos_label`` must be one of ``labels`` unless a single label of its kind is present.

    Labels of another kind (strings with the default ``pos_label=1``) would
    make every rate 0 silently.
    """
    labels = np.unique(np.concatenate([np.asarray(v).ravel() for v in labels]))
    if np.isin(pos_label, labels).item():
        return
    kind_of = _label_kind
    if len(labels) >= 2 or (len(labels) == 1 and kind_of(labels[0]) != kind_of(pos_label)):
        raise ValueError(
            f"{name}={pos_label!r} is not one of the labels {labels.tolist()[:10]}; pass "
            f"{name}= the positive label."
        )


def _label_kind(v):
    return "str" if isinstance(v, (str, np.str_)) else "number" if isinstance(
        v, (numbers.Number, np.number, np.bool_)) else type(v).__name__


def check_trusted(trusted):
    """``trusted`` of the cross-fitting: "agree" or None, nothing else taken as None."""
    if trusted is None or (isinstance(trusted, str) and trusted == "agree"):
        return trusted
    raise ValueError(f"trusted must be 'agree' or None, got {trusted!r}.")


def check_cv_split(train, test, n_rows, k):
    """One user-given (train, test) split of ``n_rows`` rows, as integer index arrays."""
    out = []
    for part, idx in (("training", train), ("test", test)):
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (n_rows,):
                raise ValueError(f"cv split {k}: its {part} mask has shape {idx.shape}, "
                                 f"expected ({n_rows},).")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError(f"cv split {k}: the {part} part must be 1-D integer row indices, "
                             f"got dtype {idx.dtype} and shape {idx.shape}.")
        if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
            raise ValueError(
                f"cv split {k}: the {part} indices run from {idx.min()} to {idx.max()}, but "
                f"there are {n_rows} rows to split (indices 0 to {n_rows - 1})."
            )
        out.append(idx.astype(np.intp))
    if out[0].size == 0:
        raise ValueError(f"cv split {k} has no training rows.")
    return out


def check_n_rows(X, name):
    """Number of rows of a 2-D input, or a clear error for None / a scalar."""
    if X is None:
        raise ValueError(f"{name} is required (2-D array-like of shape (n_samples, "
                         "n_features)), got None.")
    if hasattr(X, "shape") and len(X.shape) >= 1:
        return X.shape[0]
    if isinstance(X, dict) and X:  # skorch's dict input: its arrays' rows, not its keys
        return check_n_rows(next(iter(X.values())), name)
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


def check_sample_weight(sample_weight, n_samples, name="sample_weight", *, positive_sum=False):
    """Finite, non-negative weights of length ``n_samples`` (None stays None)."""
    if sample_weight is None:
        return None
    w = column_or_1d(np.asarray(sample_weight, dtype=np.float64), warn=False)
    if len(w) != n_samples:
        raise ValueError(f"{name} has length {len(w)}, expected {n_samples}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative.")
    if positive_sum and n_samples and not w.sum() > 0:
        raise ValueError(f"{name} is zero everywhere; at least one row needs a positive "
                         "weight.")
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


def check_not_overflowing(X, name, dtype, cause=None):
    """Raise when X has entries whose squares overflow ``dtype`` (read chunk by chunk).

    Called after a numerical failure (non-finite scores, a Hessian that will
    not factorise): such features, though finite, overflow in the model's
    gradients and Hessian, and the failure is theirs, not the damping's.
    """
    limit = np.sqrt(_largest(dtype))
    largest = _max_abs(X)
    dtype = str(dtype).replace("torch.", "") if "torch" in str(dtype) else np.dtype(dtype).name
    if largest > limit:
        raise ValueError(
            f"{name} has entries as large as {largest:.3g}, too large for {dtype}: past about "
            f"{limit:.1g} their squares overflow {dtype} in the model's gradients and "
            f"Hessian, so the result is not finite; rescale {name} (e.g. with StandardScaler)."
        ) from cause


def _largest(dtype):
    try:
        return float(np.finfo(dtype).max)
    except (TypeError, ValueError):  # a torch dtype
        import torch

        return float(torch.finfo(dtype).max)


def _max_abs(X, step=65536):
    """Largest finite |entry| of a 2-D array, sparse matrix, tensor or row source."""
    if sp.issparse(X):
        return _finite_max_abs(X.data)
    tensors = getattr(X, "tensors", None)  # a network's dict input, one tensor per argument
    if isinstance(tensors, dict):
        return max(_max_abs(t, step) for t in tensors.values())
    largest = 0.0
    for start in range(0, X.shape[0], step):
        chunk = X[start:start + step]
        if hasattr(chunk, "detach"):
            chunk = chunk.detach().cpu().numpy()
        largest = max(largest, _finite_max_abs(np.asarray(chunk)))
    return largest


def _finite_max_abs(values):
    """Largest finite |value| (NaN / inf have their own error, raised where they are met)."""
    if not values.size or values.dtype.kind != "f":
        return 0.0
    return float(np.max(np.abs(values), where=np.isfinite(values), initial=0.0))


def is_tensor(value):
    """Whether ``value`` is a torch tensor, without importing torch (optional) to find out.

    Nothing can be a tensor before torch has been imported by someone.
    """
    torch = sys.modules.get("torch")
    return torch is not None and torch.is_tensor(value)


def check_real_targets(y, name, n):
    """Regression targets as a finite float64 vector of length ``n``, or a ValueError."""
    if y is None:
        raise ValueError(f"{name} is required (1-D targets of length {n}), got None.")
    try:
        y = np.asarray(column_or_1d(y, warn=False), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of real targets: {exc}") from exc
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} targets but the matching features have "
                         f"{n} rows.")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return y


def class_indices(y, classes, name, n_samples):
    """Validated labels ``y`` as indices into the sorted ``classes``; labels not among them
    are a ValueError naming ``name`` (never dropped)."""
    y = check_labels(y, name, n_samples)
    idx = _consecutive_int_codes(y, classes)
    if idx is not None:
        return idx
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    bad = classes[idx] != y
    if np.any(bad):
        raise ValueError(
            f"{name} contains labels {np.unique(y[bad])[:5].tolist()} that the estimator "
            f"never saw; known classes: {classes.tolist()}."
        )
    return idx


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
