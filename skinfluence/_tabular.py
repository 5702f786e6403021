"""Tables for the command line: read CSV / Parquet, check and encode the columns.

Every problem a user's file can have is raised as :class:`TableError` with a
message that names the file or column and says what to do; the command line
prints it and exits with status 2.
"""
import os

import numpy as np

READABLE = (".csv", ".csv.gz", ".parquet", ".pq")


class TableError(ValueError):
    """A problem with the user's data file or columns (exit status 2)."""


def _kind(path, what):
    name = str(path).lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return "csv"
    raise TableError(f"{what} {path!r}: unknown file type; expected one of "
                     f"{', '.join(READABLE)}.")


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is in the dev install
        raise TableError("reading data files needs pandas: pip install 'skinfluence[pandas]'.") \
            from exc
    return pd


def read_table(path, what="input file"):
    """Read a CSV or Parquet file into a DataFrame with at least one row."""
    pd = _pandas()
    if not os.path.exists(path):
        raise TableError(f"{what} {path!r} does not exist.")
    if os.path.isdir(path):
        raise TableError(f"{what} {path!r} is a folder; give a CSV or Parquet file.")
    kind = _kind(path, what)
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TableError(f"{what} {path!r} is empty.") from None
    except ImportError as exc:
        raise TableError(f"reading Parquet needs pyarrow: pip install pyarrow ({exc}).") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise TableError(f"{what} {path!r} could not be read as {kind}: {exc}") from None
    if frame.shape[0] == 0:
        raise TableError(f"{what} {path!r} has a header but no rows.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def write_table(frame, path):
    """Write a DataFrame as CSV or Parquet, chosen by the file name."""
    kind = _kind(path, "output file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TableError(f"output file {path!r}: folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise TableError(f"output file {path!r} is a folder.")
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def check_column(frame, column, option, path):
    if column not in frame.columns:
        shown = ", ".join(map(repr, list(frame.columns)[:20]))
        more = "" if frame.shape[1] <= 20 else f" (and {frame.shape[1] - 20} more)"
        raise TableError(f"{option} {column!r} is not a column of {path!r}; its columns are "
                         f"{shown}{more}.")


def target_values(frame, target, path):
    """The label column: no missing values, at least two classes."""
    y = frame[target]
    missing = int(y.isna().sum())
    if missing:
        raise TableError(f"--target {target!r} has {missing} missing value(s) in {path!r}; "
                         "every training row needs a label.")
    classes = np.unique(y.astype(str))
    if len(classes) < 2:
        raise TableError(f"--target {target!r} has a single class ({classes[0]!r}) in {path!r}; "
                         "influence needs at least two.")
    return y.to_numpy()


def split_columns(X, path):
    """(numeric, categorical) column names; raise for anything that cannot be encoded."""
    pd = _pandas()
    if X.shape[1] == 0:
        raise TableError(f"{path!r} has no feature column besides the target.")
    with_nan = {c: int(n) for c, n in X.isna().sum().items() if n}
    if with_nan:
        listed = ", ".join(f"{c!r} ({n})" for c, n in list(with_nan.items())[:10])
        raise TableError(f"missing values in {path!r}, column (rows): {listed}; fill or drop "
                         "them first (influence needs complete rows).")
    numeric, categorical = [], []
    for col in X.columns:
        s = X[col]
        if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s)
                                             and not pd.api.types.is_complex_dtype(s)):
            if not np.all(np.isfinite(s.to_numpy(dtype=np.float64))):
                raise TableError(f"column {col!r} of {path!r} holds infinite values.")
            numeric.append(col)
        elif isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s) \
                or s.dtype == object:
            bad = s.map(lambda v: not isinstance(v, (str, bool, int, float, np.generic)))
            if bad.any():
                example = s[bad].iloc[0]
                raise TableError(f"column {col!r} of {path!r} holds values that cannot be "
                                 f"encoded (e.g. {type(example).__name__} {example!r}).")
            categorical.append(col)
        else:
            raise TableError(f"column {col!r} of {path!r} has type {s.dtype}, which cannot be "
                             "encoded; convert it to numbers or categories, or drop it.")
    return numeric, categorical


def make_encoder(numeric, categorical):
    """Standardise the numeric columns, one-hot encode the categorical ones (dense)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("numeric", StandardScaler(), numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         categorical),
    ], verbose_feature_names_out=False)


def prepare_features(frame, target, path):
    """(X, numeric, categorical): every column but the target, categories as strings.

    Mixed-type categories (``"a"`` and ``3`` in one column) become strings, so
    the encoder sees one type per column.
    """
    X = frame.drop(columns=[target])
    numeric, categorical = split_columns(X, path)
    X = X.copy()
    for col in categorical:
        X[col] = X[col].astype(str)
    return X, numeric, categorical
