"""Influence of training rows on gradient-boosted trees: LDS, label noise, cost.

Models: scikit-learn HistGradientBoostingClassifier, LightGBM LGBMClassifier,
XGBoost XGBClassifier (fitted without row subsampling or early-stopping hold-out).
Tables: adult (binary; categorical columns, missing values), breast_cancer
(binary), digits (10 classes), anes96 (3 classes). Three parts, per table,
model and seed:

(a) LDS: influence_matrix of each skinfluence form (and tree-influence's
    BoostIn / LeafInfluence, computed in their own environment by
    ``_treeinf_worker.py``) scored by linear_datamodeling_score against one
    shared set of refits on half-size subsets.
(b) label noise: flip 20% of the training labels, rank the rows by each
    method's score for the clean validation loss, check the top k% and fix the
    flipped ones, refit, test accuracy; beside cleanlab's CleanLearning and
    InfluenceTrimmer(fraction="auto") (noisy and clean table).
(c) time of one influence pass (influence_scores on the validation loss) per
    method, against one fit and against BoostIn's fit + per-row influence on
    the validation rows summed.

Run from the repository root::

    .venv/bin/python benchmarks/trees/bench_trees.py            # the full run
    .venv/bin/python benchmarks/trees/bench_trees.py --quick    # smoke run
    .venv/bin/python benchmarks/trees/bench_trees.py --report   # tables from the .jsonl

Thread pinning: OMP/OpenBLAS/MKL threads = 1 (set before numpy is imported),
n_jobs=1 in LightGBM and XGBoost; ``--jobs`` tasks run side by side (default 2).
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_JSONL = os.path.join(HERE, "RESULTS_trees.jsonl")
TREEINF_PYTHON = os.environ.get("TREEINF_PYTHON", "/work/bench_envs/treeinf/bin/python")
WORKER = os.path.join(HERE, "_treeinf_worker.py")

TABLES = ("adult", "breast_cancer", "digits", "anes96", "adult_num")
MODELS = ("hgb", "lgbm", "xgb")
#: (n_train, n_val, n_test): n_test rows for accuracy, the first 100 of them for the LDS
SIZES = {"adult": (1200, 200, 2000), "breast_cancer": (319, 100, 150),
         "digits": (800, 200, 597), "anes96": (544, 150, 250), "adult_num": (1200, 200, 2000)}
#: (table, model) pairs run beside TABLES[:4] x MODELS: adult with its category codes read as
#: numbers (no categorical declaration), for the HGB model (see RESULTS_trees.md)
EXTRA = (("adult_num", "hgb"),)
N_LDS = 100
NOISE = 0.2
CHECK = (0.0, 0.05, 0.1, 0.2, 0.3)
PARAMS = {
    "hgb": dict(max_iter=50, max_leaf_nodes=15, learning_rate=0.1, early_stopping=False),
    "lgbm": dict(n_estimators=50, num_leaves=15, learning_rate=0.1, n_jobs=1, verbose=-1),
    "xgb": dict(n_estimators=50, max_depth=4, learning_rate=0.1, n_jobs=1, base_score=0.5,
                tree_method="hist"),
}
SK_METHODS = ("ip", "exact_hessian", "exact_hessian_lr", "newton_loo", "newton_deriv")
TI_METHODS = ("boostin", "leafinf")
LABELS = {"ip": "ip", "exact_hessian": "exact_hessian", "exact_hessian_lr": "exact_hessian +lr",
          "newton_loo": "newton_loo", "newton_deriv": "NewtonLOO(second_order=False)",
          "boostin": "TI BoostIn", "leafinf": "TI LeafInfluence",
          "boostin_flipped": "TI BoostIn, sign flipped", "boostin_valsum": "TI BoostIn (val sum)",
          "boostin_self": "TI BoostIn (self-inf.)", "leafinf_valsum": "TI LeafInf (val sum)",
          "random": "random order"}


# ---------------------------------------------------------------------------- tables
def load_table(name):
    """(X float64 with NaN for missing, y int, categorical column indices, description)."""
    if name in ("adult", "adult_num"):
        import pandas as pd

        path = os.path.join(ROOT, "skinfluence", "data", "adult.csv.gz")
        frame = pd.read_csv(path, compression="gzip")
        frame = frame[frame["split"] == "train"].reset_index(drop=True)
        cats = ["workclass", "marital_status", "occupation", "relationship", "race", "sex",
                "native_country"]
        cols = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"] + cats
        X = np.empty((len(frame), len(cols)))
        for j, c in enumerate(cols):
            if c in cats:  # integer codes, NaN where the value was '?' (unknown)
                codes = frame[c].astype("category").cat.codes.to_numpy().astype(np.float64)
                X[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                X[:, j] = frame[c].to_numpy(dtype=np.float64)
        y = (frame["income"] == ">50K").to_numpy().astype(np.int64)
        if name == "adult_num":
            return X, y, [], "adult, category codes read as numbers"
        return X, y, list(range(5, len(cols))), "UCI adult (train part), income > 50K"
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        return X, y, [], "sklearn breast_cancer"
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X.astype(np.float64), y, [], "sklearn digits (8x8), 10 classes"
    if name == "anes96":
        import statsmodels.api as sm

        d = sm.datasets.anes96.load_pandas().data
        cols = ["popul", "TVnews", "selfLR", "ClinLR", "DoleLR", "age", "educ", "income"]
        pid = d["PID"].to_numpy()
        y = np.where(pid <= 1, 0, np.where(pid <= 4, 1, 2)).astype(np.int64)
        return (d[cols].to_numpy(dtype=np.float64), y, [],
                "statsmodels anes96, party id in 3 classes (0-1 / 2-4 / 5-6)")
    raise ValueError(name)


def split(name, seed, quick):
    """Stratified random train / validation / test rows of one seed."""
    from sklearn.model_selection import train_test_split

    X, y, cat_idx, _ = load_table(name)
    n_train, n_val, n_test = SIZES[name]
    if quick:
        n_train, n_val, n_test = min(n_train, 300), min(n_val, 80), min(n_test, 120)
    rest, idx_test = train_test_split(np.arange(len(y)), test_size=n_test, stratify=y,
                                      random_state=seed)
    idx_train, idx_val = train_test_split(rest, train_size=n_train, test_size=n_val,
                                          stratify=y[rest], random_state=seed + 1000)
    return (X[idx_train], y[idx_train], X[idx_val], y[idx_val], X[idx_test], y[idx_test],
            cat_idx)


def make_model(kind, cat_idx, seed, n_features):
    params = dict(PARAMS[kind])
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(categorical_features=cat_idx or None,
                                              random_state=seed, **params), params
    if kind == "lgbm":
        from lightgbm import LGBMClassifier

        extra = {"categorical_feature": cat_idx} if cat_idx else {}
        return LGBMClassifier(random_state=seed, **extra, **params), params
    from xgboost import XGBClassifier

    if cat_idx:
        params["feature_types"] = ["c" if j in cat_idx else "q" for j in range(n_features)]
        model = XGBClassifier(random_state=seed, enable_categorical=True, **params)
        return model, params
    return XGBClassifier(random_state=seed, **params), params


# ---------------------------------------------------------------------------- skinfluence
def _lr_variant_ctx(model, X, y, X_rows, y_rows):
    """The Context influence_matrix builds: one objective row per row of X_rows."""
    from skinfluence.methods._base import Context
    from skinfluence.models import make_adapter
    from skinfluence.models.base import ObjectiveTerms

    adapter = make_adapter(model)
    train = adapter.training_data(X, y)
    Xr = adapter.check_X(X_rows, "X_test")
    terms = ObjectiveTerms(Xr, adapter.encode(y_rows, name="y_test", n=len(Xr)),
                           np.ones(len(Xr)), "loss")
    return Context(adapter, train, terms, 4096, np.random.default_rng(0), per_row=True)


def lr_variant(model, X, y, X_rows, y_rows):
    """(n_rows, n_train): the Newton form with BoostIn's extra learning-rate factor."""
    from skinfluence.methods._rounds import round_influence

    ctx = _lr_variant_ctx(model, X, y, X_rows, y_rows)
    return np.asarray(round_influence(ctx, "newton", hessian_lr_factor=True)).T


def _method(name):
    from skinfluence import NewtonLOO

    return NewtonLOO(second_order=False) if name == "newton_deriv" else name


def sk_matrix(name, model, X, y, X_rows, y_rows):
    from skinfluence import influence_matrix

    if name == "exact_hessian_lr":
        return lr_variant(model, X, y, X_rows, y_rows)
    return influence_matrix(model, X, y, X_rows, y_rows, method=_method(name))


def sk_scores(name, model, X, y, X_val, y_val):
    """(n_train,) score for the mean validation loss (lowest = most harmful)."""
    from skinfluence import influence_scores

    if name == "exact_hessian_lr":
        return lr_variant(model, X, y, X_val, y_val).mean(axis=0)
    return influence_scores(model, X, y, X_val, y_val, method=_method(name))


# ---------------------------------------------------------------------------- tree-influence
def run_treeinf(kind, params, cat_idx, seed, arrays, explainers, leafinf_noise, timeout):
    """Call the worker in tree-influence's venv; (outputs dict, errors dict, info dict)."""
    if not os.path.exists(TREEINF_PYTHON):
        return {}, {"all": f"tree-influence's python {TREEINF_PYTHON} not found"}, {}
    spec = {"kind": kind, "params": params, "cat_idx": cat_idx, "seed": seed,
            "explainers": list(explainers), "leafinf_noise": bool(leafinf_noise)}
    with tempfile.TemporaryDirectory() as tmp:
        path_in, path_out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(path_in, spec=json.dumps(spec), **arrays)
        try:
            proc = subprocess.run([TREEINF_PYTHON, WORKER, path_in, path_out],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {}, {"all": f"worker timed out after {timeout} s"}, {}
        if proc.returncode != 0 or not os.path.exists(path_out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {}, {"all": f"worker exited {proc.returncode}: {' | '.join(tail)}"}, {}
        d = np.load(path_out, allow_pickle=False)
        out = {k: d[k] for k in d.files if k not in ("errors", "info")}
        return out, json.loads(str(d["errors"])), json.loads(str(d["info"]))


# ---------------------------------------------------------------------------- one task
def flip_labels(y, rate, rng):
    classes = np.unique(y)
    idx = rng.choice(len(y), int(round(rate * len(y))), replace=False)
    y_noisy = y.copy()
    for i in idx:
        y_noisy[i] = rng.choice(classes[classes != y[i]])
    return y_noisy, idx


def accuracy(model, X, y):
    return float(np.mean(model.predict(X) == y))


def run_task(table, kind, seed, quick, leafinf):
    from sklearn.base import clone
    from skinfluence import InfluenceTrimmer
    from skinfluence.metrics import linear_datamodeling_score

    warnings.filterwarnings("ignore")
    X, y, X_val, y_val, X_test, y_test, cat_idx = split(table, seed, quick)
    X_lds, y_lds = X_test[:N_LDS], y_test[:N_LDS]
    n = len(y)
    base, params = make_model(kind, cat_idx, seed, X.shape[1])
    row = {"table": table, "model": kind, "seed": seed, "quick": quick, "n_train": n,
           "n_val": len(y_val), "n_test": len(y_test), "n_lds": len(y_lds),
           "n_features": X.shape[1], "n_classes": int(len(np.unique(y))),
           "missing_share": float(np.isnan(X).mean()), "n_categorical": len(cat_idx)}
    t0 = time.perf_counter()
    model = clone(base).fit(X, y)
    row["fit_s"] = time.perf_counter() - t0
    row["acc_clean"] = accuracy(model, X_test, y_test)

    # (b)'s noisy labels, drawn here so that the worker explains the same noisy model
    rng = np.random.default_rng(10_000 + seed)
    y_noisy, flipped = flip_labels(y, NOISE, rng)
    model_noisy = clone(base).fit(X, y_noisy)

    # (a) LDS: skinfluence's matrices first (a model it refuses ends the task here)
    mats, row["matrix_s"] = {}, {}
    for name in SK_METHODS:
        t0 = time.perf_counter()
        mats[name] = sk_matrix(name, model, X, y, X_lds, y_lds)
        row["matrix_s"][name] = time.perf_counter() - t0

    leafinf_tables, leafinf_noise_tables = leafinf
    explainers = ("boostin", "leafinf") if table in leafinf_tables else ("boostin",)
    ti_out, ti_err, ti_info = run_treeinf(
        kind, params, cat_idx, seed,
        dict(X_train=X, y_train=y, X_test=X_lds, y_test=y_lds, X_val=X_val, y_val=y_val,
             y_noisy=y_noisy, proba_test=model.predict_proba(X_lds),
             proba_test_noisy=model_noisy.predict_proba(X_lds)),
        explainers, table in leafinf_noise_tables, timeout=1800)
    row["treeinf"] = {"explainers": list(explainers), "errors": ti_err, "info": ti_info,
                      "leafinf_noise": table in leafinf_noise_tables}
    for name in TI_METHODS:
        if f"lds_{name}" in ti_out:
            mats[name] = ti_out[f"lds_{name}"]
    if "boostin" in mats:
        mats["boostin_flipped"] = -mats["boostin"]
    t0 = time.perf_counter()
    row["lds"] = {k: float(v) for k, v in linear_datamodeling_score(
        base, X, y, X_lds, y_lds, mats, n_subsets=10 if quick else 50, alpha=0.5,
        random_state=seed).items()}
    row["lds_refits_s"] = time.perf_counter() - t0
    # agreement of BoostIn's matrix with the Newton form (same estimator up to the lr factor)
    if "boostin" in mats:
        row["corr_boostin"] = {k: float(np.corrcoef(mats["boostin"].ravel(),
                                                    mats[k].ravel())[0, 1])
                               for k in ("exact_hessian", "exact_hessian_lr")}

    # (c) time of one pass on the validation loss, per method
    row["pass_s"], scores = {}, {}
    for name in SK_METHODS:
        t0 = time.perf_counter()
        sk_scores(name, model, X, y, X_val, y_val)
        row["pass_s"][name] = time.perf_counter() - t0
    if "time_boostin" in ti_out:
        row["pass_s"]["boostin"] = float(ti_out["time_boostin"])
        sk_agg = sk_scores("exact_hessian_lr", model, X, y, X_val, y_val) * len(y_val)
        row["corr_boostin_agg"] = float(np.corrcoef(sk_agg, ti_out["agg_boostin"])[0, 1])

    # (b) label noise: rank, check the top k%, fix the flipped rows among them, refit
    for name in SK_METHODS:
        scores[name] = sk_scores(name, model_noisy, X, y_noisy, X_val, y_val)
    rankings = {name: np.argsort(s, kind="stable") for name, s in scores.items()}
    for name in ("boostin_valsum", "leafinf_valsum"):
        if f"noise_{name}" in ti_out:
            rankings[name] = np.argsort(ti_out[f"noise_{name}"], kind="stable")
    if "noise_boostin_self" in ti_out:
        rankings["boostin_self"] = np.argsort(-ti_out["noise_boostin_self"], kind="stable")
    rankings["random"] = np.random.default_rng(20_000 + seed).permutation(n)
    acc_noisy = accuracy(model_noisy, X_test, y_test)
    row["acc_noisy"] = acc_noisy
    row["noise"], row["detected"] = {}, {}
    is_flipped = np.zeros(n, bool)
    is_flipped[flipped] = True
    for name, order in rankings.items():
        accs, found = [], []
        for k in CHECK:
            checked = order[:int(n * k)]
            found.append(float(is_flipped[checked].sum() / len(flipped)))
            if k == 0:
                accs.append(acc_noisy)
                continue
            y_fixed = y_noisy.copy()
            y_fixed[checked] = y[checked]
            accs.append(accuracy(clone(base).fit(X, y_fixed), X_test, y_test))
        row["noise"][name], row["detected"][name] = accs, found

    from cleanlab.classification import CleanLearning

    t0 = time.perf_counter()
    cl = CleanLearning(clf=clone(base), seed=seed, verbose=False).fit(X, y_noisy)
    row["cleanlab"] = {"acc": accuracy(cl, X_test, y_test), "s": time.perf_counter() - t0,
                       "n_removed": int(cl.label_issues_df["is_label_issue"].sum())}
    for tag, labels in (("trimmer_noisy", y_noisy), ("trimmer_clean", y)):
        t0 = time.perf_counter()
        tr = InfluenceTrimmer(clone(base), fraction="auto", random_state=seed).fit(X, labels)
        check = tr.refit_check_ or {}
        dropped = ~tr.support_
        row[tag] = {"acc": accuracy(tr, X_test, y_test), "n_trimmed": int(tr.n_trimmed_),
                    "frac_trimmed": tr.n_trimmed_ / n, "s": time.perf_counter() - t0,
                    "flipped_among_trimmed": int((dropped & is_flipped).sum()),
                    "amount": check.get("amount"), "acted": check.get("acted"),
                    "acted_on": check.get("acted_on"),
                    "n_candidates": (None if check.get("candidates") is None
                                     else int(np.size(check["candidates"]))),
                    "noise_rate": tr.noise_rate_}
    return row


# ---------------------------------------------------------------------------- report
def _ms(values, digits=3, scale=1.0):
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float) * scale
    if len(v) == 0:
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def report(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    seeds = sorted({r["seed"] for r in rows})
    cells = {}
    for r in rows:
        cells.setdefault((r["table"], r["model"]), []).append(r)
    keys = [(t, m) for t in TABLES for m in MODELS if (t, m) in cells]
    out = [f"Rows: {len(rows)} (seeds {seeds}); mean ± std over seeds.\n"]

    out.append("### (a) LDS (50 half-size refits, 100 test rows; higher is better)\n")
    cols = list(SK_METHODS) + ["boostin", "leafinf", "boostin_flipped"]
    out.append("| table | model | " + " | ".join(LABELS[c] for c in cols) + " |")
    out.append("|---|---|" + "---|" * len(cols))
    for t, m in keys:
        rs = cells[(t, m)]
        vals = []
        for c in cols:
            have = [r["lds"][c] for r in rs if c in r["lds"]]
            note = f" ({len(have)} seeds)" if 0 < len(have) < len(rs) else ""
            vals.append(_ms(have) + note)
        out.append(f"| {t} | {m} | " + " | ".join(vals) + " |")
    out.append("\nPaired on the seeds where BoostIn ran: exact_hessian minus BoostIn, "
               "best skinfluence form (per seed) minus BoostIn:\n")
    for t, m in keys:
        rs = [r for r in cells[(t, m)] if "boostin" in r["lds"]]
        if rs:
            d1 = [r["lds"]["exact_hessian"] - r["lds"]["boostin"] for r in rs]
            d2 = [max(r["lds"][c] for c in SK_METHODS) - r["lds"]["boostin"] for r in rs]
            out.append(f"- {t} / {m} ({len(rs)} seeds): {_ms(d1)}; {_ms(d2)}")

    out.append("\n### (b) label noise: test accuracy (%) after checking the top k% "
               f"({NOISE:.0%} of labels flipped)\n")
    names = list(SK_METHODS) + ["boostin_valsum", "boostin_self", "leafinf_valsum", "random"]
    for t, m in keys:
        rs = cells[(t, m)]
        out.append(f"**{t} / {m}** (clean model {_ms([r['acc_clean'] for r in rs], 1, 100)}, "
                   f"noisy {_ms([r['acc_noisy'] for r in rs], 1, 100)}; CleanLearning "
                   f"{_ms([r['cleanlab']['acc'] for r in rs], 1, 100)}; InfluenceTrimmer auto "
                   f"{_ms([r['trimmer_noisy']['acc'] for r in rs], 1, 100)}, removed "
                   f"{_ms([r['trimmer_noisy']['n_trimmed'] for r in rs], 1)} rows)\n")
        out.append("| method | " + " | ".join(f"k={k:.0%}" for k in CHECK)
                   + " | flipped found at 30% |")
        out.append("|---|" + "---|" * (len(CHECK) + 1))
        for name in names:
            have = [r for r in rs if name in r["noise"]]
            if not have:
                continue
            accs = [_ms([r["noise"][name][i] for r in have], 1, 100) for i in range(len(CHECK))]
            found = _ms([r["detected"][name][-1] for r in have], 1, 100)
            suffix = "" if len(have) == len(rs) else f" ({len(have)} seeds)"
            out.append(f"| {LABELS[name]}{suffix} | " + " | ".join(accs) + f" | {found} |")
        out.append("")

    out.append("### (b) summary: automatic cleaning against CleanLearning (accuracy %)\n")
    out.append("| table | model | noisy | CleanLearning | removed | InfluenceTrimmer auto | "
               "trimmed | flipped among trimmed | acted | clean: plain | clean: trimmer | "
               "clean: trimmed % |")
    out.append("|---|---|" + "---|" * 10)
    diffs = []
    for t, m in keys:
        rs = cells[(t, m)]
        diffs += [r["trimmer_noisy"]["acc"] - r["cleanlab"]["acc"] for r in rs]
        acted = sum(bool(r["trimmer_noisy"]["acted"]) for r in rs)
        prec = [r["trimmer_noisy"]["flipped_among_trimmed"] / r["trimmer_noisy"]["n_trimmed"]
                if r["trimmer_noisy"]["n_trimmed"] else None for r in rs]
        out.append(
            f"| {t} | {m} | {_ms([r['acc_noisy'] for r in rs], 1, 100)} | "
            f"{_ms([r['cleanlab']['acc'] for r in rs], 1, 100)} | "
            f"{_ms([r['cleanlab']['n_removed'] for r in rs], 0)} | "
            f"{_ms([r['trimmer_noisy']['acc'] for r in rs], 1, 100)} | "
            f"{_ms([r['trimmer_noisy']['n_trimmed'] for r in rs], 0)} | "
            f"{_ms(prec, 1, 100)}% | {acted}/{len(rs)} | "
            f"{_ms([r['acc_clean'] for r in rs], 1, 100)} | "
            f"{_ms([r['trimmer_clean']['acc'] for r in rs], 1, 100)} | "
            f"{_ms([r['trimmer_clean']['frac_trimmed'] for r in rs], 2, 100)} |")
    out.append(f"\nInfluenceTrimmer auto minus CleanLearning, mean over all {len(diffs)} runs: "
               f"{100 * np.mean(diffs):+.2f} points (std {100 * np.std(diffs, ddof=1):.2f}).\n")

    out.append("### (c) time (s) of one influence pass on the validation loss\n")
    tcols = list(SK_METHODS) + ["boostin"]
    out.append("| table | model | one fit | " + " | ".join(LABELS[c] for c in tcols)
               + " | ip / fit | BoostIn / exact_hessian |")
    out.append("|---|---|---|" + "---|" * (len(tcols) + 2))
    for t, m in keys:
        rs = cells[(t, m)]
        vals = [_ms([r["pass_s"].get(c) for r in rs], 3) for c in tcols]
        ratio = _ms([r["pass_s"]["ip"] / r["fit_s"] for r in rs], 2)
        bi = [r["pass_s"]["boostin"] / r["pass_s"]["exact_hessian"] for r in rs
              if "boostin" in r["pass_s"]]
        out.append(f"| {t} | {m} | {_ms([r['fit_s'] for r in rs], 3)} | " + " | ".join(vals)
                   + f" | {ratio} | {_ms(bi, 1)} |")

    out.append("\n### tasks that failed (the whole table / model / seed)\n")
    seen = {}
    for r in failed:
        seen.setdefault((r["table"], r["model"], r["error"]), []).append(r["seed"])
    for (t, m, err), s in sorted(seen.items()):
        out.append(f"- {t} / {m} (seeds {sorted(set(s))}): `{err}`")
    out.append("\n### tree-influence: failures and checks\n")
    seen = {}
    for r in rows:
        for tag, err in r["treeinf"]["errors"].items():
            seen.setdefault((r["table"], r["model"], tag, err), []).append(r["seed"])
    for (t, m, tag, err), s in sorted(seen.items()):
        out.append(f"- {t} / {m} / {tag} (seeds {sorted(set(s))}): `{err}`")
    for t, m in keys:
        rs = cells[(t, m)]
        gaps = [r["treeinf"]["info"].get("proba_gap_vs_main_clean") for r in rs]
        corr = [r.get("corr_boostin", {}).get("exact_hessian_lr") for r in rs]
        corr2 = [r.get("corr_boostin_agg") for r in rs]
        out.append(f"- {t} / {m}: max |p_treeinf-env - p_skinfluence-env| on the LDS rows "
                   f"{_ms(gaps, 4)}; corr(BoostIn matrix, exact_hessian +lr matrix) "
                   f"{_ms(corr, 4)}; corr of the validation aggregates {_ms(corr2, 4)}")
    versions = {json.dumps(r["treeinf"]["info"].get("versions"), sort_keys=True) for r in rows
                if r["treeinf"]["info"].get("versions")}
    out.append(f"\ntree-influence env versions: {sorted(versions)}")
    return "\n".join(out)


# ---------------------------------------------------------------------------- main
def _task(args):
    table, kind, seed, quick, leafinf = args
    t0 = time.perf_counter()
    try:
        row = run_task(table, kind, seed, quick, leafinf)
    except Exception as exc:  # recorded in the .jsonl, the run goes on
        import traceback

        row = {"table": table, "model": kind, "seed": seed, "quick": quick,
               "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    row["task_s"] = time.perf_counter() - t0
    return row


def versions():
    import cleanlab
    import lightgbm
    import sklearn
    import xgboost

    import skinfluence

    return {"python": sys.version.split()[0], "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "lightgbm": lightgbm.__version__,
            "xgboost": xgboost.__version__, "cleanlab": cleanlab.__version__,
            "skinfluence": getattr(skinfluence, "__version__", "dev")}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run (1 seed, 2 tables)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--leafinf-tables", nargs="*", default=["breast_cancer"],
                   help="tables on which tree-influence's LeafInfluence also runs, LDS (slow)")
    p.add_argument("--leafinf-noise-tables", nargs="*", default=["breast_cancer"],
                   help="tables on which LeafInfluence also ranks the noisy rows (slow)")
    p.add_argument("--jobs", type=int, default=2, help="tasks run side by side")
    p.add_argument("--out", default=None, help=f"jsonl of per-seed rows (default {OUT_JSONL})")
    p.add_argument("--resume", action="store_true", help="skip tasks already in --out")
    p.add_argument("--report", action="store_true", help="print the tables of --out and exit")
    args = p.parse_args()
    out = args.out or (OUT_JSONL.replace(".jsonl", "_quick.jsonl") if args.quick else OUT_JSONL)
    if args.report:
        print(report(out))
        return
    if args.quick:
        args.seeds = args.seeds[:1]
        if args.tables == list(TABLES):
            args.tables = ["breast_cancer", "anes96"]
    done = set()
    if args.resume and os.path.exists(out):
        for line in open(out):
            r = json.loads(line)
            if "error" not in r:
                done.add((r["table"], r["model"], r["seed"]))
    elif os.path.exists(out):
        os.remove(out)
    pairs = [(t, m) for t in args.tables for m in args.models if t != "adult_num"]
    pairs += [(t, m) for t, m in EXTRA if t in args.tables and m in args.models]
    leafinf = (tuple(args.leafinf_tables), tuple(args.leafinf_noise_tables))
    tasks = [(t, m, s, args.quick, leafinf) for t, m in pairs for s in args.seeds
             if (t, m, s) not in done]
    print(f"{len(tasks)} tasks, {args.jobs} at a time; versions {versions()}", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, open(out, "a") as f:
        futures = [pool.submit(_task, t) for t in tasks]
        for fut in as_completed(futures):
            row = fut.result()
            row["versions"] = versions()
            f.write(json.dumps(row) + "\n")
            f.flush()
            state = row.get("error") or (
                f"lds eh={row['lds'].get('exact_hessian', float('nan')):.3f} "
                f"boostin={row['lds'].get('boostin', float('nan')):.3f}")
            print(f"[{time.perf_counter() - start:7.0f}s] {row['table']}/{row['model']}/"
                  f"seed {row['seed']}: {row['task_s']:.0f}s {state}", flush=True)
    print(report(out))


if __name__ == "__main__":
    main()
