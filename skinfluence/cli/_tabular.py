"""Tables for the command line: read CSV / Parquet, check and encode the columns.

Every problem a user's file can have is raised as :class:`TableError` with a
message that names the file or column and says what to do; the command line
prints it and exits with status 2.
"""
import os
import re
import secrets
import warnings

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
    """Read a CSV or Parquet file into a DataFrame with at least one row.

    Every failure to read (a corrupt or truncated file, a wrong encoding, a
    duplicated column name) is a :class:`TableError`.
    """
    pd = _pandas()
    if not os.path.exists(path):
        raise TableError(f"{what} {path!r} does not exist.")
    if os.path.isdir(path):
        raise TableError(f"{what} {path!r} is a folder; give a CSV or Parquet file.")
    kind = _kind(path, what)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            # pandas would fail on duplicate names deep inside pyarrow: check the schema first
            _check_unique_names(pq.read_schema(path).names, path, what)
            frame = pd.read_parquet(path)
        else:
            # pandas renames a repeated header ("a", "a.1"): read the header row as it is
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
            _check_unique_names(list(header.iloc[0]), path, what)
            frame = pd.read_csv(path)
    except TableError:
        raise
    except pd.errors.EmptyDataError:
        raise TableError(f"{what} {path!r} is empty.") from None
    except ImportError as exc:
        raise TableError(f"reading Parquet needs pyarrow: pip install pyarrow ({exc}).") from None
    except Exception as exc:  # corrupt, truncated, mis-encoded: whatever the reader raised
        raise TableError(f"{what} {path!r} could not be read as {kind} "
                         f"({type(exc).__name__}: {exc}).") from None
    if frame.shape[0] == 0:
        raise TableError(f"{what} {path!r} has a header but no rows.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _check_unique_names(names, path, what):
    names = [str(n) for n in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TableError(f"{what} {path!r} has repeated column names: "
                         f"{', '.join(map(repr, repeated))}; rename them so that each column "
                         "has its own name.")


def check_output(path, inputs=(), overwrite=False):
    """Refuse an output path that is one of ``inputs``, a folder, or (unless ``overwrite``)
    an existing file or link; return its kind ("csv" or "parquet")."""
    kind = _kind(path, "output file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TableError(f"output file {path!r}: folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise TableError(f"output file {path!r} is a folder.")
    if os.path.lexists(path):
        for source in inputs:
            if source is not None and os.path.exists(source) and os.path.exists(path) \
                    and os.path.samefile(path, source):
                raise TableError(f"output file {path!r} is the input file {source!r}; write the "
                                 "result to another file (the input is never overwritten).")
        if not overwrite:
            raise TableError(f"output file {path!r} exists; pass --overwrite to replace it, or "
                             "choose another name.")
    return kind


#: the temporary files of a write: ``.<name>.<writer's pid>.<12 hex>.partial``
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{12}\.partial$")


def write_table(frame, path, inputs=(), overwrite=False):
    """Write a DataFrame as CSV or Parquet (chosen by the name), atomically.

    The table goes to a temporary file in the same folder, which then takes
    ``path``'s place in one step: an interrupted write leaves any previous file
    at ``path`` as it was. The temporary name carries the writer's process id,
    so a file left by a writer that was killed (SIGKILL) is removed by the next
    write in that folder, and a concurrent writer's is not.

    Without ``overwrite`` the file is created exclusively (a hard link that
    fails if ``path`` appeared meanwhile): of two runs writing the same new
    file, one wins and the other fails. A symbolic link at ``path`` is written
    through (``--overwrite`` replaces the file it points to and keeps the link).
    """
    kind = check_output(path, inputs, overwrite)
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise TableError(f"output file {path!r} links to {target!r}, whose folder does not "
                         "exist.")
    remove_stale_temporaries(folder)
    # the name is chosen before the file exists, so an interruption at any point (even
    # between creating the file and the next statement) knows what to remove
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{os.getpid()}."
                               f"{secrets.token_hex(6)}.partial")
    try:
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except PermissionError:
            raise TableError(f"output file {path!r}: the folder {folder!r} is not writable; "
                             "choose another folder (or change its permissions).") from None
        if kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            # the temporary name hides the extension: say the compression explicitly
            compression = "gzip" if str(path).lower().endswith(".gz") else None
            frame.to_csv(tmp, index=False, compression=compression)
        os.chmod(tmp, _file_mode(target))
        if overwrite:
            os.replace(tmp, target)
        else:
            _create_exclusively(tmp, target, path)
    finally:
        if os.path.exists(tmp):  # not renamed: an error or an interruption
            os.remove(tmp)


def _create_exclusively(tmp, target, path):
    """Put ``tmp`` at ``target`` only if nothing is there (atomic where hard links work)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise TableError(f"output file {path!r} was created by another run while this one "
                         "was writing; nothing was replaced. Pass --overwrite to replace it, "
                         "or choose another name.") from None
    except OSError:  # a file system without hard links: the check, then the rename
        if os.path.lexists(target):
            raise TableError(f"output file {path!r} exists; pass --overwrite to replace it, "
                             "or choose another name.") from None
        os.replace(tmp, target)


def remove_stale_temporaries(folder):
    """Remove this tool's temporary files in ``folder`` whose writing process is gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMPORARY.match(name)
        if match and not _alive(int(match.group(1))):
            try:
                os.remove(os.path.join(folder, name))
            except OSError:  # removed by another run meanwhile, or not ours to remove
                pass


def _alive(pid):
    """Whether a process with this id exists (on this machine)."""
    if pid == os.getpid() or os.name != "posix":  # signal 0 is a probe on POSIX only
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:
        return True
    return True


def _file_mode(path):
    """The permissions a plain write would give: the old file's, else 0o666 less the umask."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_column(frame, column, option, path):
    if column not in frame.columns:
        shown = ", ".join(map(repr, list(frame.columns)[:20]))
        more = "" if frame.shape[1] <= 20 else f" (and {frame.shape[1] - 20} more)"
        raise TableError(f"{option} {column!r} is not a column of {path!r}; its columns are "
                         f"{shown}{more}.")


def target_values(frame, target, path, regression=False):
    """The target column: no missing values; at least two classes, or (``regression``)
    finite numbers that are not all equal."""
    y = frame[target]
    missing = int(y.isna().sum())
    if missing:
        raise TableError(f"--target {target!r} has {missing} missing value(s) in {path!r}; "
                         "every training row needs a label.")
    nested = y.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)))
    if nested.any():
        raise TableError(f"--target {target!r} in {path!r} holds lists or maps (row "
                         f"{int(np.argmax(nested.to_numpy()))}, for one); the target must be one "
                         "label or number per row.")
    if regression:
        try:
            values = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise TableError(f"--target {target!r} in {path!r} is not numeric; --task "
                             "regression needs numbers (or use --task classification).") from None
        if not np.all(np.isfinite(values)):
            raise TableError(f"--target {target!r} in {path!r} has infinite values.")
        if values.min() == values.max():
            raise TableError(f"--target {target!r} is constant ({values[0]:g}) in {path!r}; "
                             "there is nothing to fit.")
        return values
    classes = np.unique(y.astype(str))
    if len(classes) < 2:
        raise TableError(f"--target {target!r} has a single class ({classes[0]!r}) in {path!r}; "
                         "influence needs at least two.")
    return y.to_numpy()


#: strategies of ``--impute`` for the numeric columns (text columns take the most frequent value)
IMPUTE_STRATEGIES = ("mean", "median", "most_frequent")


def drop_missing(frame, columns, path):
    """(frame without the rows that miss a value in ``columns``, number of rows dropped)."""
    keep = frame[list(columns)].notna().all(axis=1).to_numpy()
    if not keep.any():
        raise TableError(f"every row of {path!r} misses a value in some column; --dropna would "
                         "leave nothing (--drop the emptiest columns, or --impute).")
    return frame.loc[keep], int((~keep).sum())


def split_columns(X, path, impute=None):
    """(numeric, categorical) column names; raise for anything that cannot be encoded.

    Missing values are refused unless ``impute`` names a strategy; a column with
    no value at all is refused either way.
    """
    pd = _pandas()
    if X.shape[1] == 0:
        raise TableError(f"{path!r} has no feature column besides the target.")
    counts = X.isna().sum()
    empty = [c for c, n in counts.items() if n == len(X)]
    if empty:
        raise TableError(f"column(s) {', '.join(map(repr, empty))} of {path!r} hold no value; "
                         "leave them out with --drop.")
    with_nan = {c: int(n) for c, n in counts.items() if n}
    if with_nan and impute is None:
        listed = ", ".join(f"{c!r} ({n})" for c, n in list(with_nan.items())[:10])
        raise TableError(f"missing values in {path!r}, column (rows): {listed}; fill them with "
                         "--impute {mean,median,most_frequent}, leave those rows out with "
                         "--dropna, or leave the columns out with --drop.")
    numeric, categorical = [], []
    for col in X.columns:
        s = X[col]
        if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s)
                                             and not pd.api.types.is_complex_dtype(s)):
            values = s.dropna().to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise TableError(f"column {col!r} of {path!r} holds infinite values.")
            numeric.append(col)
        elif isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s) \
                or s.dtype == object:
            present = s.dropna()
            bad = present.map(lambda v: not isinstance(v, (str, bool, int, float, np.generic)))
            if bad.any():
                example = present[bad].iloc[0]
                raise TableError(f"column {col!r} of {path!r} holds values that cannot be "
                                 f"encoded (e.g. {type(example).__name__} {example!r}).")
            categorical.append(col)
        else:
            raise TableError(f"column {col!r} of {path!r} has type {s.dtype}, which cannot be "
                             "encoded; convert it to numbers or categories, or --drop it.")
    return numeric, categorical


#: a text column with more distinct values than this share of the rows (and more than
#: ``MIN_IDENTIFIER_VALUES``) reads as an identifier or free text: one-hot encoding it
#: would give the model one column per row and teach it nothing
IDENTIFIER_SHARE = 0.5
MIN_IDENTIFIER_VALUES = 20


def identifier_columns(X, categorical):
    """The text columns that look like identifiers or free text (almost one value per row)."""
    limit = max(MIN_IDENTIFIER_VALUES, IDENTIFIER_SHARE * len(X))
    return [c for c in categorical if _distinct(X[c]) > limit]


def _distinct(column):
    """Distinct values of a column; 0 for unhashable ones (lists...), refused later by name."""
    try:
        return column.nunique(dropna=True)
    except TypeError:
        return 0


def make_encoder(numeric, categorical, impute=None):
    """Standardise the numeric columns, one-hot encode the categorical ones.

    The one-hot columns are sparse, so a column with many categories costs
    memory in proportion to the rows, not rows x categories; the encoded
    matrix is sparse when most of it is zeros (``ColumnTransformer``'s rule).
    With ``impute``, missing numbers take the column's mean, median or most
    frequent value, and missing categories the most frequent one.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = StandardScaler()
    categories = OneHotEncoder(handle_unknown="ignore", sparse_output=True)
    if impute is not None:
        numbers = make_pipeline(SimpleImputer(strategy=impute), numbers)
        categories = make_pipeline(SimpleImputer(strategy="most_frequent"), categories)
    return ColumnTransformer([("numeric", numbers, numeric),
                              ("categorical", categories, categorical)],
                             verbose_feature_names_out=False)


def find_identifiers(frame, target, path, drop=()):
    """The feature columns that look like identifiers or free text, with a warning.

    Text columns only (numbers are never one-hot encoded); found before
    missing values are checked, so that a column left out never decides
    which rows are kept.
    """
    pd = _pandas()
    X = frame.drop(columns=[target, *drop])
    text = [c for c in X.columns if not (pd.api.types.is_bool_dtype(X[c])
                                         or pd.api.types.is_numeric_dtype(X[c]))]
    identifiers = identifier_columns(X, text)
    if identifiers:
        warnings.warn(
            f"left out of the features: text column(s) {', '.join(map(repr, identifiers))} "
            f"of {path!r} hold a different value in almost every row (identifiers or free "
            "text); --drop them to silence this.", UserWarning, stacklevel=2)
    numbered = [c for c in X.columns if c not in identifiers and _row_numbers(X[c], c)]
    if numbered:
        warnings.warn(
            f"left out of the features: integer column(s) {', '.join(map(repr, numbered))} "
            f"of {path!r} hold a different value in every row, numbered in row order or "
            "named as an identifier (row numbers or ids, not measurements); --drop them to "
            "silence this.", UserWarning, stacklevel=2)
    return identifiers + numbered


_ID_NAME = re.compile(r"(?i)(^|[_\s.-])(id|key|index|idx|row|uuid)$")


def _row_numbers(column, name):
    """An integer column that numbers the rows: every value distinct and none missing, and
    either consecutive, increasing down the table or named like an identifier (``id``,
    ``customer_id``, ``index``...). Distinct measurements (a weight, an income) are kept."""
    pd = _pandas()
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_integer_dtype(column) \
            or len(column) < MIN_IDENTIFIER_VALUES or column.isna().any():
        return False
    values = column.to_numpy()
    if len(np.unique(values)) != len(values):
        return False
    consecutive = int(values.max()) - int(values.min()) + 1 == len(values)
    increasing = bool(np.all(np.diff(values) > 0))
    return consecutive or increasing or bool(_ID_NAME.search(str(name)))


def prepare_features(frame, target, path, drop=(), impute=None, identifiers=None):
    """(X, numeric, categorical, identifiers): the feature columns, categories as strings.

    ``drop`` names columns left out of the features; so are the text columns
    that look like identifiers (``identifiers``: the list found on the
    training file, to leave out the same ones elsewhere; None: found here,
    with a warning). Mixed-type categories (``"a"`` and ``3`` in one column)
    become strings, so the encoder sees one type per column; missing values
    stay missing.
    """
    pd = _pandas()
    if identifiers is None:
        identifiers = find_identifiers(frame, target, path, drop)
    X = frame.drop(columns=[target, *drop, *identifiers])
    if not X.shape[1] and identifiers:
        raise TableError(f"{path!r} has no usable feature column besides the target "
                         f"(identifier-like columns left out: {', '.join(identifiers)}).")
    numeric, categorical = split_columns(X, path, impute)
    X = X[numeric + categorical].copy()
    for col in categorical:
        X[col] = X[col].map(lambda v: np.nan if pd.isna(v) else str(v)).astype(object)
    return X, numeric, categorical, identifiers
