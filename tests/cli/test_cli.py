"""The command line: the demo, and score / clean on CSV and Parquet files, end to end."""
import contextlib
import csv
import gzip
import io
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import skinfluence
from skinfluence.cli import demo, main


def test_demo_cleans_labels_and_reports_every_job(tmp_path):
    buf = io.StringIO()
    results = demo(output=str(tmp_path), out=buf)
    text = buf.getvalue()
    lc = results["label_cleaning"]
    # the headline: cleaning with the defaults beats the noisy model by a wide margin,
    # and most of what it drops were flipped labels
    assert lc["after"] > lc["before"] + 0.03
    assert lc["true_flags"] > 0.8 * lc["n_flagged"] and lc["true_flags"] > 0.8 * lc["n_flipped"]
    assert abs(lc["noise_rate"] - 0.2) < 0.05
    fair, rob = results["fairness"], results["robustness"]
    assert fair["before"][1] > 0.15 and abs(fair["after"][1] - 0.05) < 0.02  # the gap asked for
    assert rob["after"][1] > rob["before"][1]  # accuracy under the adaptive attack
    assert "demographic-parity gap" in text and "l2 attack" in text
    rows = list(csv.DictReader(open(tmp_path / "label_cleaning_scores.csv")))
    assert len(rows) == 1257 and {"score", "trimmed", "label", "flipped"} <= set(rows[0])
    assert (tmp_path / "label_cleaning.png").stat().st_size > 10_000


def test_main_runs_the_demo_command(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    assert "label_cleaning.png" in capsys.readouterr().out


# ---------------------------------------------------------------------- score / clean, end to end
N_ROWS, N_FLIPPED = 300, 30


# the child processes import the skinfluence these tests import, wherever it lies
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1",
             "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(skinfluence.__file__)))}


def run_cli(*args, cwd):
    """``python -m skinfluence ARGS`` in a fresh process: (exit status, stdout, stderr)."""
    out = subprocess.run([sys.executable, "-m", "skinfluence", *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=120, env=CHILD_ENV)
    return out.returncode, out.stdout, out.stderr


@pytest.fixture(scope="module")
def table():
    """Labels from two numbers and a colour; 30 of 300 labels flipped (column ``flipped``)."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(2, N_ROWS))
    colour = rng.choice(["red", "green", "blue"], N_ROWS)
    shift = pd.Series(colour).map({"red": 1.5, "green": 0.0, "blue": -1.5}).to_numpy()
    clean = np.where(2 * x1 - x2 + shift > 0, "yes", "no")
    flipped = np.zeros(N_ROWS, dtype=bool)
    flipped[rng.choice(N_ROWS, N_FLIPPED, replace=False)] = True
    label = np.where(flipped, np.where(clean == "yes", "no", "yes"), clean)
    group = rng.choice(["a", "b"], N_ROWS)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "group": group,
                          "label": label})
    return frame, flipped, clean


@pytest.fixture(params=["csv", "parquet"])
def data_file(request, table, tmp_path):
    frame, _, _ = table
    path = tmp_path / f"data.{request.param}"
    frame.to_csv(path, index=False) if request.param == "csv" else frame.to_parquet(path)
    return path


def read(path):
    return pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)


@pytest.mark.slow  # one process per call (python start, imports)
def test_score_writes_every_row_with_its_score_and_rank(data_file, table, tmp_path):
    frame, flipped, _ = table
    out = tmp_path / ("scores" + data_file.suffix)
    rc, stdout, stderr = run_cli("score", data_file, "--target", "label", "-o", out,
                                 cwd=tmp_path)
    assert rc == 0, stderr
    assert "Scored 300 rows" in stdout
    scores = read(out)
    pd.testing.assert_frame_equal(scores[frame.columns], frame, check_dtype=False)
    s = scores["influence_score"].to_numpy()
    assert np.all(np.isfinite(s))
    assert sorted(scores["influence_rank"]) == list(range(1, N_ROWS + 1))
    assert np.array_equal(np.argsort(s, kind="stable"),
                          np.argsort(scores["influence_rank"].to_numpy()))
    # the flipped labels are known: the 30 lowest scores are mostly theirs
    assert flipped[np.argsort(s)[:N_FLIPPED]].mean() >= 0.6


@pytest.mark.slow  # one process per call (python start, imports)
@pytest.mark.parametrize("method", ["ip", "exact_hessian"])
def test_clean_trim_drops_the_lowest_scored_rows(table, tmp_path, method):
    frame, flipped, _ = table
    src = tmp_path / "data.parquet"
    frame.to_parquet(src)
    common = ("--target", "label", "--method", method, "--cv", 3)
    assert run_cli("score", src, *common, "-o", tmp_path / "s.csv", cwd=tmp_path)[0] == 0
    rc, stdout, stderr = run_cli("clean", src, *common, "--action", "trim", "--fraction", 0.1,
                                 "-o", tmp_path / "c.parquet", cwd=tmp_path)
    assert rc == 0, stderr
    assert "trimmed 30 of 300 rows" in stdout
    kept = read(tmp_path / "c.parquet")
    ranks = read(tmp_path / "s.csv")["influence_rank"].to_numpy()
    # the same seed scores the same: the trimmed rows are the 30 lowest of `score`
    expected = frame[ranks > 30].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), expected, check_dtype=False)
    assert flipped[ranks <= 30].mean() >= 0.6


@pytest.mark.slow  # one process per call (python start, imports)
def test_clean_relabel_restores_flipped_labels(table, tmp_path):
    frame, flipped, clean = table
    src = tmp_path / "data.csv"
    frame.to_csv(src, index=False)
    rc, stdout, stderr = run_cli("clean", src, "--target", "label", "--action", "relabel",
                                 "--fraction", 0.05, "-o", tmp_path / "c.csv", cwd=tmp_path)
    assert rc == 0, stderr
    out = read(tmp_path / "c.csv")
    changed = out["relabeled"].to_numpy()
    assert changed.sum() == 15 and "relabeled 15 of 300 rows" in stdout
    assert np.all(out["label"][changed] != frame["label"][changed])
    assert np.array_equal(out["label"][~changed], frame["label"][~changed])
    # most relabeled rows were flipped, and now carry their true label
    assert np.mean(out["label"].to_numpy()[changed] == clean[changed]) >= 0.6


@pytest.mark.slow  # one process per call (python start, imports)
def test_clean_reweight_and_demographic_parity_with_a_validation_file(table, tmp_path):
    frame, _, _ = table
    train, val = frame.iloc[:200], frame.iloc[200:]
    train.to_parquet(tmp_path / "train.parquet")
    val.to_csv(tmp_path / "val.csv", index=False)
    args = ("--target", "label", "--sensitive", "group", "--objective", "demographic_parity",
            "--validation", tmp_path / "val.csv")
    rc, _, stderr = run_cli("score", tmp_path / "train.parquet", *args, "-o",
                            tmp_path / "s.parquet", cwd=tmp_path)
    assert rc == 0, stderr
    rc, stdout, stderr = run_cli("clean", tmp_path / "train.parquet", *args, "--action",
                                 "reweight", "-o", tmp_path / "w.parquet", cwd=tmp_path)
    assert rc == 0, stderr
    assert "validation file" in stdout and "demographic_parity" in stdout
    s = read(tmp_path / "s.parquet")["influence_score"].to_numpy()
    w = read(tmp_path / "w.parquet")["sample_weight"].to_numpy()
    assert len(w) == 200 and np.all(w >= 0)
    # weights are increasing in the score: the most beneficial rows weigh most
    order = np.argsort(s)
    assert np.all(np.diff(w[order]) >= -1e-12) and w[order[-1]] > w[order[0]]


def test_help_is_plain_text_and_version_is_printed(tmp_path):
    rc, stdout, _ = run_cli("--help", cwd=tmp_path)
    assert rc == 0 and "score" in stdout and "clean" in stdout
    assert "``" not in stdout and ":class:" not in stdout
    for command in ("score", "clean", "demo"):
        rc, text, _ = run_cli(command, "--help", cwd=tmp_path)
        assert rc == 0 and "``" not in text
    rc, stdout, _ = run_cli("--version", cwd=tmp_path)
    assert rc == 0 and stdout.strip() == f"skinfluence {skinfluence.__version__}"


def _write(tmp_path, name, frame=None, text=None):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    elif name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.slow  # one process per call (python start, imports)
@pytest.mark.parametrize("case, args, message", [
    ("missing file", ("score", "nope.csv", "--target", "label"), "does not exist"),
    ("missing target", ("score", "{ok}", "--target", "income"), "'income' is not a column"),
    ("missing sensitive", ("score", "{ok}", "--target", "label", "--sensitive", "sex",
                           "--objective", "demographic_parity"), "'sex' is not a column"),
    ("empty file", ("score", "{empty}", "--target", "label"), "is empty"),
    ("header only", ("score", "{header}", "--target", "label"), "no rows"),
    ("missing values", ("clean", "{nan}", "--target", "label", "--action", "trim"),
     "missing values"),
    ("a date column", ("score", "{dates}", "--target", "label"), "cannot be encoded"),
    ("a list column", ("score", "{lists}", "--target", "label"), "cannot be encoded"),
    ("one class", ("score", "{one_class}", "--target", "label"), "single class"),
    ("no features", ("score", "{only_target}", "--target", "label"), "no feature column"),
    ("unknown type", ("score", "{xlsx}", "--target", "label"), "unknown file type"),
    ("corrupt parquet", ("score", "{corrupt}", "--target", "label"), "could not be read"),
    ("dp without sensitive", ("score", "{ok}", "--target", "label", "--objective",
                              "demographic_parity"), "needs --sensitive"),
    ("one-group sensitive", ("score", "{const}", "--target", "label", "--sensitive", "site",
                             "--objective", "demographic_parity"), "sensitive feature"),
    ("fraction with reweight", ("clean", "{ok}", "--target", "label", "--action", "reweight",
                                "--fraction", "0.1"), "--fraction applies to"),
    ("fraction out of range", ("clean", "{ok}", "--target", "label", "--action", "trim",
                               "--fraction", "1.5"), "expected a number in [0, 1)"),
    ("no target option", ("score", "{ok}"), "--target"),
])
def test_each_input_error_exits_2_with_a_message_and_no_output(table, tmp_path, case, args,
                                                               message):
    frame, _, _ = table
    small = frame.iloc[:40]
    files = {
        "ok": _write(tmp_path, "ok.csv", small),
        "empty": _write(tmp_path, "empty.csv", text=""),
        "header": _write(tmp_path, "header.csv", text="x1,x2,label\n"),
        "nan": _write(tmp_path, "nan.csv", small.assign(x1=small.x1.where(small.x1 > 0))),
        "dates": _write(tmp_path, "dates.parquet",
                        small.assign(when=pd.Timestamp("2024-01-01"))),
        "lists": _write(tmp_path, "lists.parquet", small.assign(tags=[[1, 2]] * len(small))),
        "one_class": _write(tmp_path, "one.csv", small.assign(label="yes")),
        "const": _write(tmp_path, "const.csv", small.assign(site="north")),
        "only_target": _write(tmp_path, "target.csv", small[["label"]]),
        "xlsx": _write(tmp_path, "data.xlsx", text="x"),
        "corrupt": _write(tmp_path, "bad.parquet", text="not parquet"),
    }
    args = [str(a).format(**files) for a in args]
    out = tmp_path / "out.csv"
    rc, stdout, stderr = run_cli(*args, "-o", out, cwd=tmp_path)
    assert rc == 2, (case, stdout, stderr)
    assert message in stderr, (case, stderr)
    assert "Traceback" not in stderr and not out.exists()


@pytest.mark.slow  # one process per call (python start, imports)
def test_demo_output_must_be_a_folder(tmp_path):
    target = tmp_path / "a_file.txt"
    target.write_text("x")
    rc, _, stderr = run_cli("demo", "--output", target, cwd=tmp_path)
    assert rc == 2 and "is a file" in stderr and "Traceback" not in stderr


# ---------------------------------------------------------------------- never lose a file
def cli(*args):
    """``main(ARGS)`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def small_csv(table, tmp_path):
    frame, _, _ = table
    path = tmp_path / "data.csv"
    frame.iloc[:120].to_csv(path, index=False)
    return path


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("through_link", [False, True])
def test_the_input_is_never_the_output(small_csv, tmp_path, through_link):
    before = small_csv.read_bytes()
    source = small_csv
    if through_link:
        source = tmp_path / "link.csv"
        source.symlink_to(small_csv)
    for extra in ((), ("--overwrite",)):
        rc, _, err = cli("clean", source, "--target", "label", "--action", "trim",
                         "--fraction", 0.1, "-o", small_csv, *extra)
        assert rc == 2 and "is the input file" in err
    rc, _, err = cli("score", small_csv, "--target", "label", "--validation", source,
                     "-o", source, "--overwrite")
    assert rc == 2 and "is the input file" in err
    assert small_csv.read_bytes() == before and not _leftovers(tmp_path)


def test_an_existing_output_is_replaced_only_with_overwrite(small_csv, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("previous result\n")
    rc, _, err = cli("score", small_csv, "--target", "label", "-o", out)
    assert rc == 2 and "--overwrite" in err and out.read_text() == "previous result\n"
    rc, _, err = cli("score", small_csv, "--target", "label", "-o", out, "--overwrite")
    assert rc == 0, err
    assert len(pd.read_csv(out)) == 120 and not _leftovers(tmp_path)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_an_interrupted_write_keeps_the_previous_file(small_csv, tmp_path, monkeypatch, suffix):
    """Ctrl-C in the middle of writing: the old output stays whole, no partial file is left."""
    out = tmp_path / f"out{suffix}"
    assert cli("score", small_csv, "--target", "label", "-o", out)[0] == 0
    before = out.read_bytes()
    method = "to_parquet" if suffix == ".parquet" else "to_csv"
    real = getattr(pd.DataFrame, method)

    def write_half_then_interrupt(frame, path, *args, **kwargs):
        real(frame.iloc[: len(frame) // 2], path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, method, write_half_then_interrupt)
    rc, _, err = cli("score", small_csv, "--target", "label", "-o", out, "--overwrite")
    assert rc == 130 and "was not written" in err
    assert out.read_bytes() == before and not _leftovers(tmp_path)


@pytest.mark.slow  # a process of its own, killed while it writes
def test_sigterm_while_writing_keeps_the_previous_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 400_000  # large enough that writing takes a good fraction of a second
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["label"] = np.where(frame.x1 + rng.normal(size=n) > 0, "yes", "no")
    src = tmp_path / "big.parquet"
    frame.to_parquet(src)
    out = tmp_path / "scores.csv"
    for _ in range(3):  # under load the write may finish before the signal lands: retry
        out.write_text("previous result\n")
        proc = subprocess.Popen([sys.executable, "-m", "skinfluence", "score", str(src),
                                 "--target", "label", "--cv", "2", "-o", str(out),
                                 "--overwrite"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
        deadline = time.monotonic() + 120
        while not _leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if _leftovers(tmp_path):
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            break
    assert proc.returncode == 143 and "was not written" in err
    assert out.read_text() == "previous result\n" and not _leftovers(tmp_path)


# ---------------------------------------------------------------------- real tables
def test_an_identifier_column_is_left_out_so_memory_grows_with_n_not_n_squared():
    from skinfluence.cli._tabular import make_encoder, prepare_features

    widths = {}
    for n in (200, 2000):
        rng = np.random.default_rng(n)
        frame = pd.DataFrame({"id": [f"row-{i}" for i in range(n)], "x": rng.normal(size=n),
                              "city": rng.choice(["a", "b", "c"], n),
                              "label": rng.choice(["yes", "no"], n)})
        with pytest.warns(UserWarning, match="'id'.*identifiers or free text"):
            X, numeric, categorical, ids = prepare_features(frame, "label", "t.csv")
        assert ids == ["id"] and numeric == ["x"] and categorical == ["city"]
        encoded = make_encoder(numeric, categorical).fit_transform(X)
        widths[n] = encoded.shape[1]
        assert encoded.shape[0] == n
    assert widths == {200: 4, 2000: 4}  # x + three cities, whatever n


def test_a_many_valued_column_is_one_hot_encoded_sparsely():
    from skinfluence.cli._tabular import make_encoder, prepare_features

    rng = np.random.default_rng(0)
    n = 3000  # 400 postcodes: many categories, not an identifier
    frame = pd.DataFrame({"x": rng.normal(size=n), "zip": rng.integers(0, 400, n).astype(str),
                          "label": rng.choice(["yes", "no"], n)})
    X, numeric, categorical, ids = prepare_features(frame, "label", "t.csv")
    assert ids == [] and categorical == ["zip"]
    encoded = make_encoder(numeric, categorical).fit_transform(X)
    assert sp.issparse(encoded) and encoded.shape == (n, 1 + frame.zip.nunique())
    assert encoded.nnz == 2 * n  # one number and one category per row


def _scores(path, *args):
    out = path.parent / f"scores-{len(list(path.parent.iterdir()))}.csv"
    rc, _, err = cli("score", path, "--target", "label", "--cv", 3, "-o", out, *args)
    assert rc == 0, err
    return pd.read_csv(out)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_impute_fills_missing_values_as_filling_them_by_hand_does(table, tmp_path, strategy):
    frame, _, _ = table
    holes = frame.copy()
    holes.loc[::7, "x1"] = np.nan
    holes.loc[3::11, "colour"] = np.nan
    holes.to_csv(tmp_path / "holes.csv", index=False)
    filled = holes.copy()
    fill = {"mean": holes.x1.mean(), "median": holes.x1.median(),
            "most_frequent": holes.x1.mode().iloc[0]}[strategy]
    filled["x1"] = filled.x1.fillna(fill)
    filled["colour"] = filled.colour.fillna(holes.colour.mode().iloc[0])
    filled.to_csv(tmp_path / "filled.csv", index=False)
    rc, _, err = cli("score", tmp_path / "holes.csv", "--target", "label", "-o",
                     tmp_path / "x.csv")
    assert rc == 2 and "--impute" in err and "--dropna" in err
    got = _scores(tmp_path / "holes.csv", "--impute", strategy)
    ref = _scores(tmp_path / "filled.csv")
    np.testing.assert_allclose(got.influence_score, ref.influence_score, rtol=1e-6, atol=1e-12)
    assert got.x1.isna().sum() == len(range(0, len(frame), 7))  # the output keeps the holes


def test_dropna_and_drop_equal_removing_the_rows_and_columns_by_hand(table, tmp_path):
    frame, _, _ = table
    holes = frame.copy()
    holes.loc[::9, "x2"] = np.nan
    holes.loc[5, "label"] = np.nan
    holes.to_csv(tmp_path / "holes.csv", index=False)
    complete = holes.dropna()
    complete.to_csv(tmp_path / "complete.csv", index=False)
    got = _scores(tmp_path / "holes.csv", "--dropna")
    ref = _scores(tmp_path / "complete.csv")
    assert len(got) == len(complete) == len(frame) - len(range(0, len(frame), 9)) - 1
    np.testing.assert_allclose(got.influence_score, ref.influence_score, rtol=1e-6, atol=1e-12)
    # --drop leaves a column out of the features but keeps it in the output
    frame.drop(columns=["group"]).to_csv(tmp_path / "nogroup.csv", index=False)
    frame.to_csv(tmp_path / "full.csv", index=False)
    got = _scores(tmp_path / "full.csv", "--drop", "group")
    ref = _scores(tmp_path / "nogroup.csv")
    assert "group" in got.columns
    np.testing.assert_allclose(got.influence_score, ref.influence_score, rtol=1e-6, atol=1e-12)


def _truncated_gzip_csv():
    rows = np.random.default_rng(0).normal(size=(2000, 2))
    text = "x,label\n" + "".join(f"{a},{b > 0}\n" for a, b in rows)
    whole = gzip.compress(text.encode())
    return whole[: len(whole) // 2]


@pytest.mark.parametrize("case, write, args, message", [
    ("repeated csv header", lambda p: p.write_text("x,x,label\n1,2,a\n3,4,b\n"), (),
     "repeated column names: 'x'"),
    ("repeated target header", lambda p: p.write_text("label,x,label\n1,2,a\n3,4,b\n"), (),
     "repeated column names: 'label'"),
    ("truncated csv.gz", lambda p: p.write_bytes(_truncated_gzip_csv()), (),
     "could not be read as csv"),
    ("binary csv", lambda p: p.write_bytes(bytes(range(256)) * 4), (), "could not be read"),
    ("own score column", lambda p: pd.DataFrame({"x": range(20), "influence_score": 1.0,
                                                 "label": [0, 1] * 10}).to_csv(p, index=False),
     (), "already has a column 'influence_score'"),
    ("two rows", lambda p: p.write_text("x,label\n1,a\n2,b\n"), (),
     "needs at least 5 rows of each class"),
    ("drop the target", lambda p: p.write_text("x,label\n1,a\n2,b\n"), ("--drop", "label"),
     "is the --target column"),
    ("drop a missing column", lambda p: p.write_text("x,label\n1,a\n2,b\n"), ("--drop", "y"),
     "--drop 'y' is not a column"),
    ("an empty column", lambda p: p.write_text("x,e,label\n" + "1,,a\n2,,b\n" * 10),
     ("--impute", "mean"), "hold no value"),
    ("target gap without fairness", lambda p: p.write_text("x,label\n1,a\n2,b\n"),
     ("--target-gap", "0.05"), "needs --objective"),
    ("gap out of range", lambda p: p.write_text("x,label\n1,a\n2,b\n"),
     ("--target-gap", "2"), "expected a number in (0, 1)"),
    ("utility slack without a target gap", lambda p: p.write_text("x,label\n1,a\n2,b\n"),
     ("--utility-slack", "0.5"), "give --target-gap"),
    ("weight cap not positive", lambda p: p.write_text("x,label\n1,a\n2,b\n"),
     ("--max-weight", "0"), "expected a number > 0"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_tables_exit_2_with_a_message(tmp_path, case, write, args, message, capsys):
    name = "data.csv.gz" if "gz" in case else "data.csv"
    write(tmp_path / name)
    command = ("score",)
    if "weight" in case or "gap" in case:
        command = ("clean", "--action", "reweight" if "weight" in case else "trim")
    argv = [command[0], str(tmp_path / name), "--target", "label", *command[1:], *args,
            "-o", str(tmp_path / "out.csv")]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse refuses the value itself
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and message in err, (case, err)
    assert "Traceback" not in err and not (tmp_path / "out.csv").exists()


def test_parquet_with_repeated_names_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table([[1, 2], [3, 4], ["a", "b"]], names=["x", "x", "label"]),
                   tmp_path / "d.parquet")
    rc, _, err = cli("score", tmp_path / "d.parquet", "--target", "label", "-o",
                     tmp_path / "o.csv")
    assert rc == 2 and "repeated column names: 'x'" in err


@pytest.mark.parametrize("command, column", [
    (("clean", "--action", "reweight"), "sample_weight"),
    (("clean", "--action", "relabel"), "relabeled"),
    (("score",), "influence_score"), (("score",), "influence_rank")])
def test_a_column_the_output_adds_is_never_overwritten(small_csv, tmp_path, command, column):
    frame = pd.read_csv(small_csv).assign(**{column: 7})
    frame.to_csv(tmp_path / "mine.csv", index=False)
    rc, _, err = cli(command[0], tmp_path / "mine.csv", "--target", "label", *command[1:],
                     "-o", tmp_path / "out.csv")
    assert rc == 2 and f"already has a column {column!r}" in err


# ---------------------------------------------------------------------- the estimators' knobs
@pytest.mark.parametrize("cap", [2.0, 5.0])
def test_reweight_weight_cap_and_temperature(small_csv, tmp_path, cap):
    args = ("--target", "label", "--cv", 3)
    scores = _scores(small_csv)["influence_score"].to_numpy()
    for temperature in (1.0, 4.0):
        out = tmp_path / f"w-{cap}-{temperature}.csv"
        rc, stdout, err = cli("clean", small_csv, *args, "--action", "reweight", "--max-weight",
                              cap, "--temperature", temperature, "-o", out)
        assert rc == 0, err
        w = pd.read_csv(out)["sample_weight"].to_numpy()
        # the documented rule, written out: standardise, clip at 3, softmax / T, n * 4 * w, cap
        z = np.clip((scores - scores.mean()) / scores.std(), -3, 3) / temperature
        ref = np.minimum(len(z) * 4 * np.exp(z) / np.exp(z).sum(), cap)
        np.testing.assert_allclose(w, ref, rtol=1e-6)
        assert w.max() <= cap and f"at --max-weight {cap:g}" in stdout


def test_target_gap_several_groups_and_equalized_odds(table, tmp_path):
    frame, _, _ = table
    frame = frame.assign(group=np.where(frame.x2 > 0.5, "c", frame.group))  # three groups
    frame.to_csv(tmp_path / "d.csv", index=False)
    fair = ("--target", "label", "--sensitive", "group", "--cv", 3)
    for objective in ("demographic_parity", "equalized_odds"):
        rc, stdout, err = cli("clean", tmp_path / "d.csv", *fair, "--objective", objective,
                              "--action", "trim", "--target-gap", 0.05, "-o",
                              tmp_path / f"{objective}.csv")
        assert rc == 0, err
        assert "cross-fitted gap" in stdout and "(asked 0.05)" in stdout
        kept = pd.read_csv(tmp_path / f"{objective}.csv")
        assert 0 < len(frame) - len(kept) < len(frame) // 2


def test_utility_slack_reaches_the_search(table, tmp_path):
    """No slack and fairness alone pick different rows for the same gap."""
    frame, _, _ = table
    frame.to_csv(tmp_path / "d.csv", index=False)
    kept = {}
    for slack in ("0", "1"):
        rc, stdout, err = cli("clean", tmp_path / "d.csv", "--target", "label", "--sensitive",
                              "group", "--objective", "demographic_parity", "--action", "trim",
                              "--target-gap", 0.05, "--utility-slack", slack, "-o",
                              tmp_path / f"{slack}.csv")
        assert rc == 0, err
        kept[slack] = set(map(tuple, pd.read_csv(tmp_path / f"{slack}.csv").round(9).values))
    assert kept["0"] != kept["1"]


def test_clean_defaults_to_fraction_auto(small_csv, tmp_path):
    rc, stdout, err = cli("clean", small_csv, "--target", "label", "--action", "trim",
                          "-o", tmp_path / "o.csv")
    assert rc == 0, err
    assert "estimated share of wrong labels" in stdout


def test_outputs_are_readable_as_named_with_a_plain_files_permissions(small_csv, tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        for name in ("s.csv.gz", "s.parquet", "s.csv"):
            rc, _, err = cli("score", small_csv, "--target", "label", "-o", tmp_path / name)
            assert rc == 0, err
            got = read(tmp_path / name) if not name.endswith(".gz") else \
                pd.read_csv(tmp_path / name, compression="gzip")
            assert len(got) == 120 and "influence_score" in got
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_dropna_reads_only_the_columns_that_are_used(table, tmp_path):
    frame, _, _ = table
    notes = frame.assign(note=np.where(np.arange(len(frame)) % 3 == 0, None, "checked"))
    notes.to_csv(tmp_path / "notes.csv", index=False)
    got = _scores(tmp_path / "notes.csv", "--dropna", "--drop", "note")
    assert len(got) == len(frame)  # the missing notes are in a dropped column: every row stays


def test_the_validation_file_is_never_the_output(table, tmp_path):
    frame, _, _ = table
    frame.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "val.csv", index=False)
    before = (tmp_path / "val.csv").read_bytes()
    rc, _, err = cli("score", tmp_path / "train.csv", "--target", "label", "--validation",
                     tmp_path / "val.csv", "-o", tmp_path / "val.csv", "--overwrite")
    assert rc == 2 and "is the input file" in err
    assert (tmp_path / "val.csv").read_bytes() == before


def test_clean_with_a_fairness_objective_defaults_to_the_estimators_share(table, tmp_path):
    frame, _, _ = table
    frame.to_csv(tmp_path / "d.csv", index=False)
    rc, stdout, err = cli("clean", tmp_path / "d.csv", "--target", "label", "--sensitive",
                          "group", "--objective", "demographic_parity", "--action", "trim",
                          "-o", tmp_path / "o.csv")
    assert rc == 0, err
    assert f"trimmed {int(0.05 * len(frame))} of {len(frame)} rows" in stdout  # default 0.05


@pytest.mark.parametrize("option, value, ok", [
    ("--fraction", "1", False), ("--fraction", "0", True), ("--fraction", "0.999", True),
    ("--fraction", "auto", True), ("--fraction", "-0.1", False),
    ("--target-gap", "0", False), ("--target-gap", "1", False), ("--target-gap", "0.5", True),
    ("--utility-slack", "0", True), ("--utility-slack", "1", True),
    ("--utility-slack", "1.01", False), ("--utility-slack", "-0.1", False),
    ("--max-weight", "inf", False), ("--max-weight", "nan", False), ("--max-weight", "1", True),
    ("--cv", "2", True), ("--cv", "1", False), ("--cv", "2.5", False),
])
def test_option_values_at_their_bounds(option, value, ok):
    from skinfluence.cli import build_parser

    argv = ["clean", "d.csv", "--target", "y", "--action", "trim", "-o", "o.csv", option, value]
    if ok:
        assert getattr(build_parser().parse_args(argv), option[2:].replace("-", "_")) is not None
    else:
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()) as err:
            build_parser().parse_args(argv)
        assert exc.value.code == 2 and f"argument {option}" in err.getvalue()


@pytest.mark.parametrize("rows_of_b, ok", [(4, False), (5, True)])
def test_cv_needs_as_many_rows_of_each_class_as_folds(tmp_path, rows_of_b, ok):
    rng = np.random.default_rng(0)
    n = 20 + rows_of_b
    frame = pd.DataFrame({"x": rng.normal(size=n), "label": ["a"] * 20 + ["b"] * rows_of_b})
    frame.to_csv(tmp_path / "d.csv", index=False)
    rc, _, err = cli("score", tmp_path / "d.csv", "--target", "label", "--cv", 5, "-o",
                     tmp_path / "o.csv")
    assert (rc == 0) == ok, err
    if not ok:
        assert f"class 'b' has {rows_of_b}" in err


def test_an_identifier_columns_gaps_neither_block_nor_drop_rows(table, tmp_path):
    frame, _, _ = table
    notes = frame.assign(note=[None if i % 5 == 0 else f"free text {i}" for i in range(len(frame))])
    notes.to_csv(tmp_path / "notes.csv", index=False)
    for extra in ((), ("--dropna",)):
        got = _scores(tmp_path / "notes.csv", *extra)
        assert len(got) == len(frame)  # the note is left out: its gaps change nothing
    frame.to_csv(tmp_path / "plain.csv", index=False)
    np.testing.assert_allclose(got.influence_score, _scores(tmp_path / "plain.csv").influence_score,
                               rtol=1e-6, atol=1e-12)


_SLOW_WRITER = """
import sys, time
import pandas as pd
from skinfluence.cli._tabular import write_table
real = pd.DataFrame.to_csv
def slow(frame, path, *a, **k):
    real(frame.iloc[:1], path, *a, **k)   # a partial file on disk...
    time.sleep(60)                        # ...and the writer stops here until killed
pd.DataFrame.to_csv = slow
write_table(pd.DataFrame({"a": [1, 2]}), sys.argv[1])
"""


def _wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow  # processes of their own, one killed while it writes
def test_a_sigkilled_writer_leaves_a_file_the_next_run_removes(tmp_path):
    from skinfluence.cli._tabular import write_table

    killed = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(tmp_path / "a.csv")])
    live = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(tmp_path / "b.csv")])
    try:
        assert _wait_for(lambda: len(_leftovers(tmp_path)) == 2)
        killed.kill()
        killed.wait(30)
        left = sorted(_leftovers(tmp_path))
        assert [f".a.csv.{killed.pid}." in n for n in left].count(True) == 1
        write_table(pd.DataFrame({"c": [1]}), str(tmp_path / "c.csv"))  # the next run
        # the killed writer's file is gone; the live writer's stays, and so does its run
        assert [n for n in _leftovers(tmp_path)] == [n for n in left if f".{live.pid}." in n]
        assert live.poll() is None
    finally:
        for proc in (killed, live):
            proc.kill()
            proc.wait(30)
    assert pd.read_csv(tmp_path / "c.csv")["c"].tolist() == [1]


def test_a_file_created_during_the_write_is_not_replaced(tmp_path, monkeypatch):
    from skinfluence.cli._tabular import TableError, write_table

    out = tmp_path / "out.csv"
    real = pd.DataFrame.to_csv

    def other_run_finishes_first(frame, path, *args, **kwargs):
        out.write_text("the other run's result\n")  # appears after the existence check
        return real(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", other_run_finishes_first)
    with pytest.raises(TableError, match="created by another run while this one was writing"):
        write_table(pd.DataFrame({"a": [1]}), str(out))
    assert out.read_text() == "the other run's result\n" and not _leftovers(tmp_path)


@pytest.mark.slow
def test_two_concurrent_runs_to_one_output_never_both_succeed(small_csv, tmp_path):
    for attempt in range(3):
        out = tmp_path / f"out{attempt}.csv"
        procs = [subprocess.Popen([sys.executable, "-m", "skinfluence", "score", str(small_csv),
                                   "--target", "label", "-o", str(out)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        results = [(p.wait(120), p.stderr.read()) for p in procs]
        codes = sorted(rc for rc, _ in results)
        assert codes == [0, 2], results
        loser = next(err for rc, err in results if rc == 2)
        assert "exists" in loser or "created by another run" in loser
        assert len(pd.read_csv(out)) == 120
    assert not _leftovers(tmp_path)


def test_a_symlinked_output_is_written_through(small_csv, tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("previous result\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    rc, _, err = cli("score", small_csv, "--target", "label", "-o", link)
    assert rc == 2 and "exists" in err and target.read_text() == "previous result\n"
    rc, _, err = cli("score", small_csv, "--target", "label", "-o", link, "--overwrite")
    assert rc == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert len(pd.read_csv(target)) == 120 and not _leftovers(tmp_path)


def test_a_dangling_symlink_counts_as_an_existing_output(small_csv, tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "nowhere.csv")
    rc, _, err = cli("score", small_csv, "--target", "label", "-o", link)
    assert rc == 2 and "exists" in err and not (tmp_path / "nowhere.csv").exists()


def test_an_unwritable_folder_is_named_not_the_temporary_file(tmp_path, monkeypatch):
    # as root, a read-only folder is still writable: the refusal is simulated at os.open
    from skinfluence.cli import _tabular

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_tabular.os, "open", refuse)
    with pytest.raises(_tabular.TableError) as info:
        _tabular.write_table(pd.DataFrame({"a": [1]}), str(tmp_path / "out.csv"))
    message = str(info.value)
    assert f"the folder {str(tmp_path)!r} is not writable" in message
    assert ".partial" not in message


@pytest.mark.parametrize("name, values", [
    ("row", lambda n, rng: np.arange(n)),                          # consecutive
    ("ts", lambda n, rng: np.cumsum(rng.integers(1, 50, n))),       # increasing down the table
    ("customer_id", lambda n, rng: rng.permutation(10 * n)[:n]),   # named as an identifier
])
def test_numeric_row_numbers_are_left_out_like_text_ids(table, tmp_path, name, values):
    frame, _, _ = table
    frame = frame.iloc[:120].drop(columns="group").copy()
    rng = np.random.default_rng(5)
    frame.insert(0, name, values(len(frame), rng))
    frame["income"] = rng.permutation(100_000)[:len(frame)]  # distinct, but a measurement
    frame.to_csv(tmp_path / "ids.csv", index=False)
    rc, _, err = cli("score", tmp_path / "ids.csv", "--target", "label", "-o",
                     tmp_path / "with.csv")
    assert rc == 0, err
    assert re.search(rf"warning: left out of the features: integer column\(s\) '{name}' "
                     r".*row numbers or ids", err)
    assert "income" not in err
    rc, _, err = cli("score", tmp_path / "ids.csv", "--target", "label", "--drop", name, "-o",
                     tmp_path / "dropped.csv")
    assert rc == 0, err
    with_ids = pd.read_csv(tmp_path / "with.csv")["influence_score"]
    np.testing.assert_allclose(with_ids, pd.read_csv(tmp_path / "dropped.csv")["influence_score"])
    rc, _, err = cli("score", tmp_path / "ids.csv", "--target", "label", "--drop", name,
                     "--drop", "income", "-o", tmp_path / "no_income.csv")
    assert rc == 0, err  # the measurement was a feature: leaving it out changes the scores
    assert not np.allclose(with_ids, pd.read_csv(tmp_path / "no_income.csv")["influence_score"])


def _wages(tmp_path, n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    wage = np.exp(1 + x @ [0.3, -0.2, 0.1] + 0.1 * rng.normal(size=n))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "wage": wage})
    frame.to_csv(tmp_path / "w.csv", index=False)
    return frame


@pytest.mark.parametrize("C", [1.0, 0.2])
def test_a_continuous_target_is_scored_as_a_regression(tmp_path, C):
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    from skinfluence import InfluenceTrimmer

    frame = _wages(tmp_path)
    rc, out, err = cli("score", tmp_path / "w.csv", "--target", "wage", "--C", C, "-o",
                       tmp_path / "s.csv")
    assert rc == 0, err
    assert "regression" in out
    # the same scores as the library called by hand: standardised columns, ridge alpha = 1/C
    X = StandardScaler().fit_transform(frame[["a", "b", "c"]])
    want = InfluenceTrimmer(Ridge(alpha=1 / C), fraction=0.0, cv=5, random_state=0).fit(
        X, frame["wage"]).scores_
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv")["influence_score"], want,
                               rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("values, task", [
    (lambda n, rng: rng.normal(size=n), "regression"),                 # fractional
    (lambda n, rng: rng.integers(0, 60, n), "regression"),             # many integers
    (lambda n, rng: rng.integers(0, 4, n), "classification"),          # a few codes
    (lambda n, rng: rng.choice(["yes", "no"], n), "classification"),   # text
])
def test_the_task_is_read_from_the_target(tmp_path, values, task):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=150), "t": values(150, rng)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    rc, out, err = cli("score", tmp_path / "t.csv", "--target", "t", "-o", tmp_path / "o.csv")
    assert rc == 0, err
    assert f"({task}," in out


def test_the_task_can_be_forced_and_is_checked(tmp_path):
    _wages(tmp_path)
    rc, _, err = cli("score", tmp_path / "w.csv", "--target", "wage", "--task",
                     "classification", "-o", tmp_path / "c.csv")
    assert rc == 2 and "needs at least 5 rows of each class" in err
    rc, _, err = cli("score", tmp_path / "w.csv", "--target", "wage", "--objective",
                     "demographic_parity", "--sensitive", "a", "-o", tmp_path / "d.csv")
    assert rc == 2 and "needs a classification target" in err
    frame = pd.DataFrame({"x": np.arange(30.0), "y": ["a", "b"] * 15})
    frame.to_csv(tmp_path / "text.csv", index=False)
    rc, _, err = cli("score", tmp_path / "text.csv", "--target", "y", "--task", "regression",
                     "-o", tmp_path / "r.csv")
    assert rc == 2 and "is not numeric" in err


def test_a_list_valued_target_is_refused_by_name(tmp_path):
    frame = pd.DataFrame({"x": np.arange(40.0), "y": [[1, 2]] * 40})
    frame.to_parquet(tmp_path / "l.parquet")
    rc, _, err = cli("score", tmp_path / "l.parquet", "--target", "y", "-o", tmp_path / "o.csv")
    assert rc == 2 and "holds lists or maps" in err


@pytest.mark.parametrize("verbose", [False, True])
def test_verbose_shows_progress_on_stderr_only_when_asked(small_csv, tmp_path, verbose):
    pytest.importorskip("tqdm")
    extra = ("--verbose",) if verbose else ()
    rc, out, err = cli("score", small_csv, "--target", "label", "--cv", 3, *extra, "-o",
                       tmp_path / "o.csv")
    assert rc == 0, err
    assert ("3/3" in err) == verbose  # the bar over the cross-fitting's folds
    assert "3/3" not in out


@pytest.mark.parametrize("column", ["x1", "colour"])
def test_a_column_with_exactly_one_missing_value_is_named(table, tmp_path, column):
    frame, _, _ = table
    frame = frame.iloc[:120].copy()
    frame.loc[frame.index[7], column] = np.nan
    frame.to_csv(tmp_path / "one.csv", index=False)
    rc, _, err = cli("score", tmp_path / "one.csv", "--target", "label", "-o", tmp_path / "o.csv")
    assert rc == 2 and f"column (rows): {column!r} (1)" in err
    rc, _, err = cli("score", tmp_path / "one.csv", "--target", "label", "--dropna", "-o",
                     tmp_path / "d.csv")
    assert rc == 0, err
    assert len(pd.read_csv(tmp_path / "d.csv")) == 119


@pytest.mark.slow  # the demo in a process of its own, as `make demo` runs it
def test_make_demo_runs_its_command(tmp_path):
    """The Makefile's demo recipe, run as written (``$(PY)`` is this interpreter): a
    module that cannot be executed broke ``make demo`` once while the tests stayed green."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(skinfluence.__file__)))
    makefile = os.path.join(root, "Makefile")
    if not os.path.exists(makefile):  # an installed wheel or sdist test run: no Makefile
        pytest.skip("no Makefile beside the package")
    with open(makefile) as f:
        lines = f.read().splitlines()
    recipe = lines[lines.index("demo: $(STAMP)") + 1].strip().split()
    assert recipe[0] == "$(PY)" and recipe[1] == "-m"
    command = [sys.executable] + recipe[1:]
    command[command.index("demo_output")] = str(tmp_path / "out")
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=CHILD_ENV)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "label_cleaning_scores.csv").exists()


@pytest.mark.parametrize("module", ["skinfluence", "skinfluence.cli"])
def test_both_module_entry_points_run(module, tmp_path):
    out = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env=CHILD_ENV)
    assert out.returncode == 0 and "demo" in out.stdout
