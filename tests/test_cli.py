import csv
import io

from skinfluence.cli import demo, main


def test_demo_finds_the_flipped_labels_and_saves_scores(tmp_path):
    buf = io.StringIO()
    results = demo(output=str(tmp_path), out=buf)
    text = buf.getvalue()
    assert "flipped-label detection AUC" in text
    assert "InfluenceTrimmer" in text and "test accuracy" in text
    rows = list(csv.DictReader(open(tmp_path / "blobs_scores.csv")))
    assert len(rows) == 150
    worst = sorted(rows, key=lambda r: float(r["exact_hessian"]))[:10]
    assert sum(int(r["flipped"]) for r in worst) >= 8
    assert set(results) == {"ip", "exact_hessian", "newton_loo"}


def test_main_runs_the_demo_command(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    assert "blobs_scores.csv" in capsys.readouterr().out
