"""tree-influence's BoostIn and LeafInfluence on one model, run in tree-influence's own venv.

Called by ``bench_trees.py`` as ``<treeinf python> _treeinf_worker.py IN.npz OUT.npz``.
IN holds the arrays and a JSON ``spec`` (model kind, hyperparameters, categorical
columns, which explainers to run). The worker fits the same model type with the
same hyperparameters and seed in this environment, then writes to OUT:

- ``lds_<name>``: (n_test, n_train) attributions of the clean-trained model on
  the LDS test rows (tree-influence returns (n_train, n_test); transposed here).
  Sign: tree-influence's own ("positive = the training row lowers the test loss").
- ``noise_<name>``: (n_train,) ranking scores of the model trained on noisy labels,
  ``valsum`` = local influence on the clean validation rows summed (the
  ``test_sum`` strategy of tree-influence's noise experiment; lowest = most
  harmful), ``self`` = self-influence (their ``self`` strategy; highest = most
  suspicious).
- ``time_boostin``: seconds for BoostIn ``fit`` + ``get_local_influence`` on the
  validation rows + the sum over them (the per-train influence on the
  validation set as a whole).
- ``errors`` (JSON): explainer -> the exception text, where one failed.
- ``info`` (JSON): library versions, parsed-model check, probability agreement
  with the model fitted in the benchmark's own environment.
"""
import json
import os
import sys
import time
import traceback
import warnings

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")


def make_model(kind, params, cat_idx, seed):
    params = dict(params)
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(categorical_features=cat_idx or None,
                                              random_state=seed, **params)
    if kind == "lgbm":
        from lightgbm import LGBMClassifier

        extra = {"categorical_feature": cat_idx} if cat_idx else {}
        return LGBMClassifier(random_state=seed, **extra, **params)
    from xgboost import XGBClassifier

    extra = {}
    if cat_idx:
        extra = {"enable_categorical": True, "feature_types": params.pop("feature_types")}
    return XGBClassifier(random_state=seed, **extra, **params)


class _Baseline(float):
    """A float (what tree-influence's parser asserts) that also has the array's dtype
    (what scikit-learn's own predict reads)."""

    dtype = np.dtype(np.float64)


def _patch_for_parser(model, kind):
    """sklearn >= 1.1 stores a binary HGB's baseline as a (1, 1) array; the parser wants a float."""
    if kind == "hgb" and np.size(model._baseline_prediction) == 1:
        model._baseline_prediction = _Baseline(np.ravel(model._baseline_prediction)[0])


def _parsed_gap(explainer, model, X):
    """Largest |p_parsed - p_model| over rows X (tree-influence only warns on a mismatch)."""
    from tree_influence.explainers.parsers import util

    p_model = model.predict_proba(X)
    p_parsed = explainer.model_.predict(util.check_input_data(np.array(X, dtype=np.float32)))
    if p_parsed.shape[1] == 1:
        p_parsed = np.column_stack([1 - p_parsed[:, 0], p_parsed[:, 0]])
    return float(np.max(np.abs(p_model - p_parsed)))


def _explainer(name):
    from tree_influence.explainers import BoostIn, LeafInfluence

    if name == "boostin":
        return BoostIn()
    return LeafInfluence(update_set=-1, atol=1e-5, n_jobs=1)


def main(path_in, path_out):
    import lightgbm
    import sklearn
    import xgboost

    d = np.load(path_in, allow_pickle=False)
    spec = json.loads(str(d["spec"]))
    kind, params, cat_idx, seed = spec["kind"], spec["params"], spec["cat_idx"], spec["seed"]
    X, y = d["X_train"], d["y_train"]
    X_test, y_test, X_val, y_val = d["X_test"], d["y_test"], d["X_val"], d["y_val"]
    y_noisy = d["y_noisy"]
    out, errors = {}, {}
    info = {"versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__,
                         "lightgbm": lightgbm.__version__, "xgboost": xgboost.__version__,
                         "python": sys.version.split()[0]}}
    tol = 1e-3
    for role, labels in (("clean", y), ("noisy", y_noisy)):
        t0 = time.perf_counter()
        model = make_model(kind, params, cat_idx, seed).fit(X, labels)
        info[f"fit_s_{role}"] = time.perf_counter() - t0
        key = "proba_test" if role == "clean" else "proba_test_noisy"
        info[f"proba_gap_vs_main_{role}"] = float(np.max(np.abs(
            model.predict_proba(X_test) - d[key])))
        _patch_for_parser(model, kind)
        for name in spec["explainers"]:
            tag = f"{name}/{role}"
            if role == "noisy" and name == "leafinf" and not spec["leafinf_noise"]:
                continue
            try:
                t0 = time.perf_counter()
                explainer = _explainer(name).fit(model, X, labels)
                fit_s = time.perf_counter() - t0
                gap = _parsed_gap(explainer, model, X_test)
                info[f"parse_gap_{tag}"] = gap
                if not gap < tol:
                    raise RuntimeError(f"the parsed model's probabilities differ from the "
                                       f"model's by up to {gap:.3g} (tree-influence only "
                                       "warns); its attributions would explain another model")
                if role == "clean":
                    t0 = time.perf_counter()
                    out[f"lds_{name}"] = explainer.get_local_influence(X_test, y_test).T
                    info[f"lds_s_{name}"] = fit_s + time.perf_counter() - t0
                    if name == "boostin":
                        t0 = time.perf_counter()
                        again = _explainer(name).fit(model, X, labels)
                        agg = again.get_local_influence(X_val, y_val).sum(axis=1)
                        out["time_boostin"] = np.float64(time.perf_counter() - t0)
                        out["agg_boostin"] = agg
                else:
                    t0 = time.perf_counter()
                    out[f"noise_{name}_valsum"] = explainer.get_local_influence(
                        X_val, y_val).sum(axis=1)
                    info[f"noise_s_{name}_valsum"] = fit_s + time.perf_counter() - t0
                    if name == "boostin":
                        t0 = time.perf_counter()
                        out["noise_boostin_self"] = explainer.get_self_influence(X, labels)
                        info["noise_s_boostin_self"] = fit_s + time.perf_counter() - t0
            except Exception as exc:  # recorded, not hidden
                last = traceback.extract_tb(exc.__traceback__)[-1]
                errors[tag] = (f"{type(exc).__name__}: {exc} (at {os.path.basename(last.filename)}"
                               f":{last.lineno} `{last.line}`)")
    np.savez(path_out, errors=json.dumps(errors), info=json.dumps(info),
             **{k: np.asarray(v, dtype=np.float64) for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
