"""Tests written for mutants that survived ``benchmarks/quality/mutation.py``.

Each one checks documented behaviour against a reference built independently of
the code under test (a value worked out by hand, the documented message or
rule), so that the mutant it was written for fails it.
"""
import sys
import warnings

import numpy as np
import pytest

# --- the progress bar (skinfluence/utils/_progress.py) ------------------------------------

_NO_TQDM = ("a progress bar (verbose) needs tqdm: pip install tqdm (or skinfluence[progress]); "
            "running without one.")


@pytest.fixture
def without_tqdm(monkeypatch):
    """tqdm not importable, and the once-per-process warning not given yet."""
    from skinfluence.utils import _progress

    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm.auto` raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(_progress, "_TOLD", [])
    return _progress.progress


def test_progress_without_tqdm_warns_once_and_runs_bare(without_tqdm):
    items = [3, 1, 2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = without_tqdm(items, verbose=True, desc="refits", unit="fit")
        second = without_tqdm(items, verbose=True, desc="refits", unit="fit")
        with without_tqdm(verbose=True, total=4, desc="scoring", unit="row") as by_hand:
            pass
    told = [w for w in caught if issubclass(w.category, UserWarning)]
    assert [str(w.message) for w in told] == [_NO_TQDM]  # once per process, the whole text
    assert first is items and second is items and by_hand is None


def test_progress_bar_carries_its_total_description_and_unit(capsys):
    pytest.importorskip("tqdm")
    from skinfluence.utils._progress import progress

    bar = progress(iter([5, 6, 7]), verbose=True, total=3, desc="refits", unit="fit")
    assert list(bar) == [5, 6, 7]
    bar.close()
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("refits: 100%") and " 3/3 " in last
    assert "fit/s]" in last or "s/fit]" in last  # the rate in the caller's unit
    assert progress([1], verbose=False, desc="x", unit="y") == [1]
    with progress(verbose=False, total=2, desc="x", unit="y") as none:
        assert none is None


# --- the linear datamodeling score (skinfluence/attribution/_lds.py) ------------------------

def _spearman_columns(a, b):
    from scipy.stats import spearmanr

    return np.array([spearmanr(a[:, j], b[:, j])[0] for j in range(a.shape[1])])


def _reference_lds(est, X, y, Xt, yt, A, n_subsets, alpha, rng, aggregate=False):
    """The protocol of the docstring, written out: subsets from ``rng``, refits, the
    log-loss of each test row (a class the refit never saw: p = 1e-15), Spearman."""
    from sklearn.base import clone

    n = len(y)
    preds, losses = [], []
    for _ in range(n_subsets):
        idx = rng.choice(n, size=int(round(alpha * n)), replace=False)
        model = clone(est).fit(X[idx], y[idx])
        proba = model.predict_proba(Xt)
        classes = list(model.classes_)
        p = np.array([proba[j, classes.index(c)] if c in classes else 0.0
                      for j, c in enumerate(yt)])
        losses.append(-np.log(np.maximum(p, 1e-15)))
        preds.append(np.asarray(A, dtype=np.float64)[:, idx].sum(axis=1))
    preds, losses = np.array(preds), np.array(losses)
    if aggregate:
        return _spearman_columns(preds.mean(axis=1)[:, None], -losses.mean(axis=1)[:, None])[0]
    return float(np.nanmean(_spearman_columns(preds, -losses)))


@pytest.fixture(scope="module")
def rare_class():
    """40 training rows of 3 classes, class 2 with 2 rows only: half-subsets often miss it."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = np.array([0] * 19 + [1] * 19 + [2] * 2)
    X = rng.normal(size=(40, 2)) + np.array([[0, 0], [2, 0], [0, 2]])[y]
    yt = np.array([0, 1, 2, 2, 0, 1])
    Xt = rng.normal(size=(6, 2)) + np.array([[0, 0], [2, 0], [0, 2]])[yt]
    A = rng.normal(size=(6, 40))
    return LogisticRegression(max_iter=1000), X, y, Xt, yt, A


@pytest.mark.parametrize("aggregate", [False, True])
def test_lds_of_test_rows_whose_class_a_subset_misses(rare_class, aggregate):
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    draws = np.random.default_rng(1)
    missed = sum(2 not in y[draws.choice(40, 20, replace=False)] for _ in range(12))
    assert missed  # the construction: some subsets miss class 2 (their loss is 34.5)
    got = linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=12, random_state=1,
                                    aggregate=aggregate)
    want = _reference_lds(est, X, y, Xt, yt, A, 12, 0.5, np.random.default_rng(1), aggregate)
    assert got == pytest.approx(want, rel=1e-9)


def test_lds_defaults_are_50_quiet_subsets_of_half_the_rows(rare_class, capsys):
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    got = linear_datamodeling_score(est, X, y, Xt, yt, A, random_state=4, aggregate=True)
    want = _reference_lds(est, X, y, Xt, yt, A, 50, 0.5, np.random.default_rng(4), True)
    assert got == pytest.approx(want, rel=1e-9)
    assert capsys.readouterr().err == ""  # verbose=False by default: no bar


def test_lds_draws_its_subsets_from_a_generator_seeded_by_one_draw(rare_class):
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    got = linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=10,
                                    random_state=np.random.default_rng(9))
    inner = np.random.default_rng(np.random.default_rng(9).integers(2**31 - 1))
    assert got == pytest.approx(_reference_lds(est, X, y, Xt, yt, A, 10, 0.5, inner),
                                rel=1e-9)


def test_lds_sums_boolean_and_small_integer_attributions_as_numbers(rare_class):
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    ranks = np.argsort(np.argsort(A, axis=1), axis=1)
    for attributions in (ranks >= 20, (ranks * 3).astype(np.int8)):  # int8 sums overflow
        got = linear_datamodeling_score(est, X, y, Xt, yt, attributions, n_subsets=8,
                                        random_state=2)
        want = _reference_lds(est, X, y, Xt, yt, attributions, 8, 0.5,
                              np.random.default_rng(2))
        assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("missing", ["X", "X_test", "y", "y_test"])
@pytest.mark.parametrize("regression", [False, True])
def test_lds_names_the_missing_argument(rare_class, missing, regression):
    from sklearn.linear_model import Ridge

    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    args = {"X": X, "y": y, "X_test": Xt, "y_test": yt}
    args[missing] = None
    what = "targets" if regression and missing.startswith("y") else \
        "labels" if missing.startswith("y") else "array-like"
    with pytest.raises(ValueError, match=f"^{missing} is required .*{what}"):
        linear_datamodeling_score(Ridge() if regression else est, args["X"], args["y"],
                                  args["X_test"], args["y_test"], A)


@pytest.mark.parametrize("kw, message", [
    ({"n_subsets": 5.0}, "n_subsets must be an int >= 3, got 5.0."),
    ({"alpha": 1.0}, "alpha must be a float in (0, 1), got 1.0."),
    ({"alpha": 1.5}, "alpha must be a float in (0, 1), got 1.5."),
    ({"alpha": 0.0}, "alpha must be a float in (0, 1), got 0.0."),
    ({"alpha": 0.99}, "alpha=0.99 gives subsets of 40 of 40 rows; need 1..39."),
])
def test_lds_refuses_arguments_out_of_their_documented_range(rare_class, kw, message):
    import re

    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        linear_datamodeling_score(est, X, y, Xt, yt, A, **kw)


def test_lds_takes_three_subsets_the_documented_minimum(rare_class):
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    got = linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=3, random_state=0)
    assert got == pytest.approx(
        _reference_lds(est, X, y, Xt, yt, A, 3, 0.5, np.random.default_rng(0)), rel=1e-9)


def test_lds_says_a_single_class_subset_cannot_be_refitted(rare_class):
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    y = np.array([0] * 39 + [1])
    with pytest.raises(ValueError, match=r"holds a single class \(0\): a classifier cannot be "
                                         r"refitted on it\. Raise alpha \(or give more "
                                         r"training rows\)\.$"):
        linear_datamodeling_score(est, X, y, Xt, yt % 2, A, alpha=0.1, random_state=0)


def test_lds_flat_rows_are_left_out_with_one_warning(rare_class):
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    A = A.copy()
    A[0] = 0.0  # row 0's predicted sum is 0 on every subset: no ranking
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=8, random_state=5)
    # one warning, and no numpy warning about the 0 / 0 of the flat row
    assert [(w.category, str(w.message)) for w in caught] == [
        (RuntimeWarning, "1 test row(s) have a constant loss or prediction across the "
                         "subsets; they are left out of the LDS.")]
    assert caught[0].filename == __file__  # the caller's line, on every Python version
    want = _reference_lds(est, X, y, Xt[1:], yt[1:], A[1:], 8, 0.5, np.random.default_rng(5))
    assert got == pytest.approx(want, rel=1e-9)
    with pytest.raises(ValueError, match=r"^Every test row has the same loss on every subset "
                                         r"\(or the same predicted sum\): the LDS is "
                                         r"undefined\.$"):
        linear_datamodeling_score(est, X, y, Xt, yt, np.zeros_like(A), n_subsets=4,
                                  random_state=5)


def test_lds_bar_is_named_refits_and_counts_fits(rare_class, capsys):
    pytest.importorskip("tqdm")
    from skinfluence.metrics import linear_datamodeling_score

    est, X, y, Xt, yt, A = rare_class
    linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=4, random_state=0, verbose=True)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("refits: 100%") and " 4/4 " in last
    assert "fit/s]" in last or "s/fit]" in last


# --- the command line's output files (skinfluence/cli/_tabular.py) --------------------------

_EXISTS = "exists; pass --overwrite to replace it, or choose another name."


def _dead_pid():
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_write_removes_dead_writers_temporaries_only(tmp_path):
    import os
    import subprocess

    pd = pytest.importorskip("pandas")
    from skinfluence.cli._tabular import write_table

    # a writer still running: a child of this test, so that a wrong signal harms nothing else
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".out.csv.{_dead_pid()}.0123456789ab.partial"
        live = tmp_path / f".out.csv.{running.pid}.0123456789ab.partial"
        mine = tmp_path / f".out.csv.{os.getpid()}.0123456789ab.partial"  # this process's
        other = tmp_path / ".notes.partial"  # not this tool's name
        for f in (stale, live, mine, other):
            f.write_text("x")
        write_table(pd.DataFrame({"a": [1, 2]}), str(tmp_path / "new.csv"))
        assert not stale.exists() and live.exists() and mine.exists() and other.exists()
        assert running.poll() is None  # probed with signal 0 only: still running
    finally:
        running.kill()
        running.wait()


def _recording_writes(monkeypatch, pd, seen):
    """Record, for each temporary file pandas writes, its path and permissions then."""
    import os

    for method in ("to_csv", "to_parquet"):
        real = getattr(pd.DataFrame, method)

        def record(frame, path, *args, _real=real, **kwargs):
            seen.append((str(path), os.stat(path).st_mode & 0o777))
            return _real(frame, path, *args, **kwargs)

        monkeypatch.setattr(pd.DataFrame, method, record)


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_a_table_is_written_without_its_index_through_a_private_temporary(
        tmp_path, monkeypatch, name):
    import os
    import re

    pd = pytest.importorskip("pandas")
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    from skinfluence.cli._tabular import read_table, write_table

    seen = []
    _recording_writes(monkeypatch, pd, seen)
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}, index=[7, 3, 5])
    write_table(frame, str(tmp_path / name))
    (tmp, mode), = seen
    assert os.path.dirname(tmp) == str(tmp_path)  # in the output's folder
    assert re.fullmatch(rf"\.{re.escape(name)}\.{os.getpid()}\.[0-9a-f]{{12}}\.partial",
                        os.path.basename(tmp))
    assert mode == 0o600  # nobody else reads a half-written table
    back = read_table(str(tmp_path / name))
    assert list(back.columns) == ["a", "b"]  # no index column
    assert back["a"].tolist() == [1, 2, 3] and back.index.tolist() == [0, 1, 2]
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        assert pq.read_schema(tmp_path / name).names == ["a", "b"]


def test_overwriting_keeps_the_old_files_permissions(tmp_path):
    import os

    pd = pytest.importorskip("pandas")
    from skinfluence.cli._tabular import write_table

    out = tmp_path / "out.csv"
    out.write_text("old\n")
    os.chmod(out, 0o640)
    write_table(pd.DataFrame({"a": [1]}), str(out), overwrite=True)
    assert os.stat(out).st_mode & 0o7777 == 0o640 and out.read_text() == "a\n1\n"


def test_an_overwritten_link_whose_folder_is_gone_is_named(tmp_path):
    pd = pytest.importorskip("pandas")
    from skinfluence.cli._tabular import TableError, write_table

    link = tmp_path / "link.csv"
    gone = tmp_path / "gone" / "x.csv"
    link.symlink_to(gone)
    with pytest.raises(TableError) as info:
        write_table(pd.DataFrame({"a": [1]}), str(link), overwrite=True)
    assert str(info.value) == (f"output file {str(link)!r} links to {str(gone)!r}, whose folder "
                               "does not exist.")


def test_an_unwritable_folder_says_what_to_do(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    from skinfluence.cli import _tabular

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_tabular.os, "open", refuse)
    out = str(tmp_path / "out.csv")
    with pytest.raises(_tabular.TableError) as info:
        _tabular.write_table(pd.DataFrame({"a": [1]}), out)
    assert str(info.value) == (f"output file {out!r}: the folder {str(tmp_path)!r} is not "
                               "writable; choose another folder (or change its permissions).")


def _another_run_writes_first(monkeypatch, pd, target):
    """While this run writes its table, another run creates ``target`` ("theirs")."""
    real = pd.DataFrame.to_csv

    def other_run_finishes_first(frame, path, *args, **kwargs):
        target.write_text("theirs\n")
        return real(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", other_run_finishes_first)


def test_a_file_created_meanwhile_is_named_in_the_refusal(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    from skinfluence.cli._tabular import TableError, write_table

    out = tmp_path / "out.csv"
    _another_run_writes_first(monkeypatch, pd, out)
    with pytest.raises(TableError) as info:
        write_table(pd.DataFrame({"a": [1]}), str(out))
    assert str(info.value) == (
        f"output file {str(out)!r} was created by another run while this one was writing; "
        "nothing was replaced. Pass --overwrite to replace it, or choose another name.")
    assert out.read_text() == "theirs\n"


def test_without_hard_links_a_new_file_is_still_written_and_never_replaces(
        tmp_path, monkeypatch):
    import os

    pd = pytest.importorskip("pandas")
    from skinfluence.cli import _tabular

    def no_links(src, dst, *args, **kwargs):
        raise OSError(1, "Operation not permitted")  # a file system without hard links

    monkeypatch.setattr(_tabular.os, "link", no_links)
    out = tmp_path / "out.csv"
    _tabular.write_table(pd.DataFrame({"a": [1, 2]}), str(out))
    assert out.read_text() == "a\n1\n2\n" and os.listdir(tmp_path) == ["out.csv"]

    later = tmp_path / "later.csv"
    _another_run_writes_first(monkeypatch, pd, later)
    with pytest.raises(_tabular.TableError) as info:
        _tabular.write_table(pd.DataFrame({"a": [1]}), str(later))
    assert str(info.value) == f"output file {str(later)!r} {_EXISTS}"
    assert later.read_text() == "theirs\n" and sorted(os.listdir(tmp_path)) == ["later.csv",
                                                                                "out.csv"]


def test_check_output_refuses_with_messages_that_name_the_file(tmp_path):
    from skinfluence.cli._tabular import TableError, check_output

    existing = tmp_path / "in.csv"
    existing.write_text("a\n1\n")
    cases = [
        (str(tmp_path / "out.xlsx"), {},
         f"output file {str(tmp_path / 'out.xlsx')!r}: unknown file type; expected one of "
         ".csv, .csv.gz, .parquet, .pq."),
        (str(tmp_path / "no" / "o.csv"), {},
         f"output file {str(tmp_path / 'no' / 'o.csv')!r}: folder {str(tmp_path / 'no')!r} "
         "does not exist."),
        (str(existing), {}, f"output file {str(existing)!r} {_EXISTS}"),
        (str(existing), {"inputs": (str(existing),), "overwrite": True},
         f"output file {str(existing)!r} is the input file {str(existing)!r}; write the result "
         "to another file (the input is never overwritten)."),
    ]
    (tmp_path / "d.csv").mkdir()
    cases.append((str(tmp_path / "d.csv"), {}, f"output file {str(tmp_path / 'd.csv')!r} is a "
                                               "folder."))
    for path, kwargs, message in cases:
        with pytest.raises(TableError) as info:
            check_output(path, **kwargs)
        assert str(info.value) == message
    assert check_output(str(existing), overwrite=True) == "csv"


def test_target_values_refuse_each_bad_target_with_its_message():
    pd = pytest.importorskip("pandas")
    from skinfluence.cli._tabular import TableError, target_values

    labels = pd.DataFrame({"t": ["a", "b", "a"]})
    assert target_values(labels, "t", "f.csv").tolist() == ["a", "b", "a"]  # classification
    cases = [
        (pd.DataFrame({"t": ["a", None, "b"]}), False,
         "--target 't' has 1 missing value(s) in 'f.csv'; every training row needs a label."),
        (pd.DataFrame({"t": ["a", "b", [1, 2]]}), False,
         "--target 't' in 'f.csv' holds lists or maps (row 2, for one); the target must be one "
         "label or number per row."),
        (labels, True, "--target 't' in 'f.csv' is not numeric; --task regression needs numbers "
                       "(or use --task classification)."),
        (pd.DataFrame({"t": [1.0, np.inf, 2.0]}), True,
         "--target 't' in 'f.csv' has infinite values."),
        (pd.DataFrame({"t": [2.5, 2.5, 2.5]}), True,
         "--target 't' is constant (2.5) in 'f.csv'; there is nothing to fit."),
        (pd.DataFrame({"t": ["a", "a"]}), False,
         "--target 't' has a single class ('a') in 'f.csv'; influence needs at least two."),
    ]
    for frame, regression, message in cases:
        with pytest.raises(TableError) as info:
            target_values(frame, "t", "f.csv", regression=regression)
        assert str(info.value) == message


def test_integer_row_numbers_are_found_by_the_documented_rule():
    """Left out: an integer column of distinct values, none missing, at least 20 rows, and
    consecutive, or increasing, or named like an identifier."""
    pd = pytest.importorskip("pandas")
    from skinfluence.cli._tabular import find_identifiers

    rng = np.random.default_rng(0)
    n = 20
    frame = pd.DataFrame({
        "y": np.arange(n) % 2,
        "shuffled": rng.permutation(np.arange(100, 100 + n)),  # consecutive, not in order
        "customer_id": rng.permutation(np.arange(n) * 7),  # only the name says so
        "repeated_id": np.r_[np.arange(n - 1), 0],  # a value repeated: not an id
        "weight": rng.permutation(np.arange(n) * 3),  # distinct measurements: kept
        "grams": np.arange(n) * 1.5,  # floats in row order: a measurement, kept
    })
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = find_identifiers(frame, "y", "f.csv")
    assert found == ["shuffled", "customer_id"]
    assert [(w.category, str(w.message)) for w in caught] == [(
        UserWarning, "left out of the features: integer column(s) 'shuffled', 'customer_id' of "
        "'f.csv' hold a different value in every row, numbered in row order or named as an "
        "identifier (row numbers or ids, not measurements); --drop them to silence this.")]
    assert find_identifiers(frame.iloc[:19], "y", "f.csv") == []  # fewer than 20 rows


def test_text_identifiers_are_named_in_one_warning():
    pd = pytest.importorskip("pandas")
    from skinfluence.cli._tabular import find_identifiers

    n = 30
    frame = pd.DataFrame({"y": np.arange(n) % 2, "name": [f"n{i}" for i in range(n)],
                          "email": [f"e{i}@x" for i in range(n)], "colour": ["r", "g"] * 15})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert find_identifiers(frame, "y", "f.csv") == ["name", "email"]
    assert [(w.category, str(w.message)) for w in caught] == [(
        UserWarning, "left out of the features: text column(s) 'name', 'email' of 'f.csv' hold "
        "a different value in almost every row (identifiers or free text); --drop them to "
        "silence this.")]


# --- the adapter registry and a network's rows (skinfluence/models) --------------------------

@pytest.fixture(scope="module")
def fitted_lr():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    return LogisticRegression().fit(X, y), X, y


def test_linear_models_take_only_the_cpu_and_no_torch_options(fitted_lr):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skinfluence.models import make_adapter

    model, X, y = fitted_lr
    pipe = make_pipeline(StandardScaler(), model.__class__()).fit(X, y)
    for est in (model, pipe):
        for device in ("auto", "cpu"):
            assert make_adapter(est, device=device) is not None
        with pytest.raises(ValueError) as info:
            make_adapter(est, device="cuda")
        assert str(info.value) == ("device='cuda': linear models are scored on the CPU in "
                                   "float64 (one matrix product per chunk); use device='auto' "
                                   "or 'cpu'.")
        with pytest.raises(TypeError) as info:
            make_adapter(est, batch=2)
        assert str(info.value) == ("Adapter options ['batch'] apply to torch models only; a "
                                   "LogisticRegression takes none.")


def test_linear_regressors_get_the_regressor_adapter():
    from sklearn.linear_model import Ridge

    from skinfluence.models import make_adapter
    from skinfluence.models.linear_regressor import LinearRegressorAdapter

    X = np.arange(20.0).reshape(10, 2)
    assert isinstance(make_adapter(Ridge().fit(X, X[:, 0] * 2.0)), LinearRegressorAdapter)


def test_model_errors_say_the_whole_message(fitted_lr):
    import copy

    from sklearn.linear_model import LogisticRegressionCV

    from skinfluence.models import make_adapter

    model, X, y = fitted_lr
    broken = copy.deepcopy(model)
    broken.coef_[0, 0] = np.nan
    with pytest.raises(ValueError) as info:
        make_adapter(broken)
    assert str(info.value) == ("The fitted LogisticRegression has NaN or infinite parameters "
                               "(coef_ / intercept_, or the network's weights): it cannot be "
                               "scored; refit it.")
    with pytest.raises(TypeError) as info:
        make_adapter(LogisticRegressionCV(Cs=2, cv=2).fit(X, y))
    message = str(info.value)
    assert message.startswith("LogisticRegressionCV is not supported (its coef_ comes from a "
                              "search over C, not one training objective); supported: ")
    assert message.endswith(", torch / skorch nets. Refit LogisticRegression(C=model.C_[0]) "
                            "with the chosen C and score that.")


def test_support_is_judged_on_a_pipelines_last_step():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from skinfluence.models import check_supported, is_supported, scores_by_probabilities

    def pipe(*last):
        return Pipeline([("a", StandardScaler()), ("b", LogisticRegression()), *last])

    assert is_supported(pipe()) and not scores_by_probabilities(pipe())
    forest = pipe(("c", RandomForestClassifier()))  # a supported step, not the last one
    assert not is_supported(forest) and scores_by_probabilities(forest)
    assert is_supported(pipe(("c", "passthrough"))) and is_supported(pipe(("c", None)))
    knn = pipe(("c", KNeighborsRegressor()))
    assert not is_supported(knn) and not scores_by_probabilities(knn)  # not a classifier
    with pytest.raises(TypeError, match="^Unsupported estimator KNeighborsRegressor. Supported "
                                        "model families: scikit-learn LogisticRegression"):
        check_supported(knn)
    check_supported(pipe())

    class NoProba(RandomForestClassifier):
        predict_proba = property()  # hasattr() is False

    assert not scores_by_probabilities(NoProba())


def test_a_registered_family_comes_before_the_built_in_ones_latest_first(fitted_lr):
    from sklearn.linear_model import LogisticRegression

    from skinfluence.models import make_adapter, register_adapter, unregister_adapter
    from skinfluence.models.linear import LinearModelAdapter

    model, X, y = fitted_lr
    made = []

    def family(tag):
        def factory(estimator, *, device="auto"):
            made.append((tag, device))
            return LinearModelAdapter(estimator)
        return factory

    def is_lr(estimator):
        return isinstance(estimator, LogisticRegression)

    first, second = family("first"), family("second")
    register_adapter(is_lr, first)
    register_adapter(is_lr, second)
    try:
        make_adapter(model, device="cpu")
    finally:
        unregister_adapter(first)
        unregister_adapter(second)
    assert made == [("second", "cpu")]
    # a builtin predicate without a readable signature is taken as it is
    register_adapter(bool, first)
    unregister_adapter(first)


def test_which_rows_are_a_networks_own():
    from sklearn.linear_model import LogisticRegression

    from skinfluence.models._rows import takes_net_rows

    net = ("module", "loss")  # a (module, loss) pair counts as a network
    assert takes_net_rows(net, np.zeros((3, 2, 2))) and takes_net_rows(net, {"a": np.zeros(3)})
    assert not takes_net_rows(net, np.zeros((3, 2)))  # 2-D rows: the usual checks
    assert not takes_net_rows(LogisticRegression(), np.zeros((3, 2, 2)))


class _TwoInputs:
    def forward(self, a, b=None):
        return a


class _AnyInputs:
    def forward(self, a, **extra):
        return a


def test_net_rows_checks_arrays_and_the_keys_forward_takes():
    from skinfluence.models._rows import check_net_rows

    out = check_net_rows({"a": np.zeros(3), "b": np.ones((3, 2))}, "X", _TwoInputs())
    assert set(out) == {"a", "b"} and out["a"].shape == (3,)  # 1-D arrays in a dict: fine
    assert check_net_rows(np.zeros((3, 2)), "X").shape == (3, 2)  # 2-D arrays: fine
    assert set(check_net_rows({"a": np.zeros(3), "z": np.zeros(3)}, "X", _AnyInputs())) == \
        {"a", "z"}  # forward(**extra) takes any key
    assert set(check_net_rows({"z": np.zeros(3)}, "X", object())) == {"z"}  # no forward
    cases = [({"b": np.zeros(3)}, "missing ['a']"),
             ({"a": np.zeros(3), "z": np.zeros(3)}, "not taken: ['z']"),
             ({"z": np.zeros(3)}, "missing ['a']; not taken: ['z']")]
    for rows, what in cases:
        with pytest.raises(ValueError) as info:
            check_net_rows(rows, "X_val", _TwoInputs())
        assert str(info.value) == (
            f"X_val: a dict input is passed as forward(**X_val), and _TwoInputs.forward takes "
            f"['a', 'b']; the dict's keys are {sorted(rows)} ({what}).")


def test_net_rows_read_a_tensor_as_its_array():
    torch = pytest.importorskip("torch")
    from skinfluence.models._rows import check_net_rows

    t = torch.arange(6.0, requires_grad=True).reshape(3, 2)
    np.testing.assert_array_equal(check_net_rows(t, "X"), np.arange(6.0).reshape(3, 2))


# --- the device reaches the torch adapter (skinfluence/models/__init__.py) ---------------

def test_the_device_argument_reaches_the_network_adapter():
    """An unknown device is refused by name by make_adapter, so the argument cannot be
    dropped on the way to the network adapter (the default would score on the CPU
    without a word); influence_scores checks it before any adapter is built."""
    torch = pytest.importorskip("torch")
    from skinfluence import influence_scores
    from skinfluence.models import make_adapter

    net = (torch.nn.Linear(3, 2).double(), torch.nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"^device='nonsense' is not a torch device; give "
                                         r"'auto', 'cpu', 'cuda'"):
        make_adapter(net, device="nonsense")
    X, y = np.random.default_rng(0).normal(size=(6, 3)), np.arange(6) % 2
    with pytest.raises(ValueError, match=r"device must be one of \('auto', 'cpu', 'cuda'\)"):
        influence_scores(net, X, y, X, y, device="nonsense")  # checked up front there
    assert str(make_adapter(net, device="cpu").device) == "cpu"
