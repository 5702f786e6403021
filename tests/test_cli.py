"""The command line: the demo, and score / clean on CSV and Parquet files, end to end."""
import csv
import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

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


def run_cli(*args, cwd):
    """``python -m skinfluence ARGS`` in a fresh process: (exit status, stdout, stderr)."""
    out = subprocess.run([sys.executable, "-m", "skinfluence", *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
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
