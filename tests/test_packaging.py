"""Packaging: the linear path needs neither torch nor skorch (they are the ``torch`` extra)."""
import subprocess
import sys
import textwrap

_BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("torch", "skorch"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)")

    sys.meta_path.insert(0, Block())
""")


def test_linear_path_runs_without_torch_or_skorch():
    code = _BLOCK_TORCH + textwrap.dedent("""
        from sklearn.linear_model import LogisticRegression
        import skinfluence
        from skinfluence.datasets import make_flipped_blobs
        d = make_flipped_blobs(random_state=0)
        model = LogisticRegression().fit(d.X_train, d.y_train)
        s = skinfluence.influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test)
        t = skinfluence.InfluenceTrimmer(LogisticRegression(), fraction=0.05)
        t.fit(d.X_train, d.y_train)
        assert not any(m.split(".")[0] in ("torch", "skorch") for m in sys.modules)
        print(len(s), int((~t.support_).sum()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["150", "7"]


def test_the_blocker_really_blocks_torch():
    code = _BLOCK_TORCH + "import torch\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "blocked" in out.stderr


def _blocking(*names):
    return textwrap.dedent(f"""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in {names!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")

        sys.meta_path.insert(0, Block())
    """)


def test_the_command_line_without_pandas_says_what_to_install(tmp_path):
    code = _blocking("pandas") + textwrap.dedent("""
        from skinfluence.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    for args in (["demo"], ["score", "data.csv", "--target", "y", "-o", "out.csv"]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                             text=True, timeout=120, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert "pip install 'skinfluence[pandas]'" in out.stderr
        assert "Traceback" not in out.stderr


def test_without_torch_every_name_imports_and_unlearn_works_on_a_linear_model():
    code = _BLOCK_TORCH + textwrap.dedent("""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from skinfluence import *  # every public name, torch or not
        import skinfluence
        missing = [n for n in skinfluence.__all__ if n not in globals()]
        assert not missing, missing
        rng = np.random.default_rng(0)
        X = rng.normal(size=(80, 3)); y = (X[:, 0] > 0).astype(int)
        model = LogisticRegression().fit(X, y)
        forgot = unlearn(model, X, y, np.arange(5))
        assert forgot is not model and forgot.coef_.shape == model.coef_.shape
        assert not any(m.split(".")[0] in ("torch", "skorch") for m in sys.modules)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]


def test_without_torch_the_skorch_callbacks_say_what_to_install():
    code = _BLOCK_TORCH + textwrap.dedent("""
        try:
            import skinfluence.callbacks
        except ImportError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'skinfluence[torch]'" in out.stdout


def test_the_public_functions_are_typed():
    import inspect
    import typing

    from skinfluence import (find_label_issues, influence_matrix, influence_scores,
                             influence_weights, unlearn)
    from skinfluence.metrics import linear_datamodeling_score

    for func in (influence_scores, influence_matrix, find_label_issues, influence_weights,
                 unlearn, linear_datamodeling_score):
        hints = typing.get_type_hints(func)  # every annotation resolves
        params = inspect.signature(func).parameters
        assert set(params) <= set(hints) and "return" in hints, func.__name__


def test_kfac_without_torch_says_what_it_needs():
    code = _BLOCK_TORCH + textwrap.dedent("""
        from sklearn.linear_model import LogisticRegression
        import skinfluence
        from skinfluence.datasets import make_flipped_blobs
        d = make_flipped_blobs(random_state=0)
        model = LogisticRegression().fit(d.X_train, d.y_train)
        try:
            skinfluence.influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test,
                                         method="kfac")
        except TypeError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("KFAC needs a torch network")


def test_a_missing_tqdm_is_told_once_without_naming_a_verbose_value():
    code = _blocking("tqdm") + textwrap.dedent("""
        import warnings
        from sklearn.linear_model import LogisticRegression
        import skinfluence
        from skinfluence.datasets import make_flipped_blobs
        d = make_flipped_blobs(random_state=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            skinfluence.InfluenceTrimmer(LogisticRegression(), cv=5, verbose=2).fit(
                d.X_train, d.y_train)
            skinfluence.influence_scores(LogisticRegression().fit(d.X_train, d.y_train),
                                         d.X_train, d.y_train, d.X_test, d.y_test, verbose=1)
        told = [str(w.message) for w in caught if "tqdm" in str(w.message)]
        print(len(told), "True" in told[0], "2" in told[0])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].split() == ["1", "False", "False"]
