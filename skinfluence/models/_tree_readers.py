"""Read a fitted gradient-boosted model round by round through its library's own predictions.

A reader gives, for any rows, each round's leaf (``round_leaves``) and each
round's additive contribution to the raw margin (``round_values``), plus the
initial margin ``base`` and the model's own final margin (``margin``). Trees
are never re-parsed from a dump: the library routes every row itself, so
missing values and categorical splits go where the model sends them.

- scikit-learn ``HistGradientBoosting*``: each fitted tree predictor is asked
  again with its leaf values replaced by the leaves' node numbers (the same
  routing code, the model's own categorical bitsets and missing-value
  directions), and once as it is (the round's contribution);
- LightGBM: ``predict(pred_leaf=True, start_iteration=..., num_iteration=...)``
  for a block of rounds per call, and each leaf's value from
  ``get_leaf_output``; its boost-from-average initial score is folded into the
  first round's leaves, and is taken out again here;
- XGBoost: ``predict(pred_leaf=True)`` on a slice of a block of rounds and
  ``predict(output_margin=True, iteration_range=(t, t + 1))`` on a DMatrix
  whose base margin is zero, so
  each call returns one round's contribution; the initial margin is the
  model's margin minus the rounds' sum.

``problems`` lists the settings under which a leaf is not one Newton step of
the training rows' gradients (row sampling, L1, ``max_delta_step``...): the
adapter refuses them by name.
"""
import json

import numpy as np

#: the losses a boosted model is scored with: the per-row loss of each library's objective
LOG_LOSS, SQUARED_ERROR = "log_loss", "squared_error"


class _Reader:
    """What every reader holds: rounds, outputs per round, step size, L2 term, loss."""

    n_rounds = 0
    n_outputs = 1          # trees per round: 1, or K for a K-class softmax
    learning_rate = 1.0
    l2 = 0.0
    loss = LOG_LOSS
    hessian_factor = 1.0   # the library's multiclass Hessian is factor * p (1 - p)
    classes_ = None
    library = ""

    @property
    def l2_choices(self):
        """The L2 terms a leaf may have been computed with (LightGBM adds one for categories)."""
        return (self.l2,)

    def problems(self):  # pragma: no cover - every reader lists its own
        return []


# ---------------------------------------------------------------------------- scikit-learn
class HistGradientBoostingReader(_Reader):
    library = "scikit-learn"

    def __init__(self, estimator):
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        self.estimator = estimator
        self.n_rounds = len(estimator._predictors)
        self.n_outputs = estimator.n_trees_per_iteration_
        self.learning_rate = float(estimator.learning_rate)
        self.l2 = float(estimator.l2_regularization)
        self.loss = LOG_LOSS if hasattr(estimator, "classes_") else str(estimator.loss)
        self.classes_ = getattr(estimator, "classes_", None)
        self.base = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
        self._threads = _openmp_effective_n_threads()
        self._bitsets = estimator._bin_mapper.make_known_categories_bitsets()
        # the same trees, their leaf values replaced by node numbers: predict -> leaf number
        self._numbered = []
        for round_ in estimator._predictors:
            row = []
            for predictor in round_:
                nodes = predictor.nodes.copy()
                nodes["value"] = np.arange(len(nodes), dtype=nodes["value"].dtype)
                row.append(TreePredictor(nodes, predictor.binned_left_cat_bitsets,
                                         predictor.raw_left_cat_bitsets))
            self._numbered.append(row)

    def prepare(self, X):
        return _Rows(self.estimator._preprocess_X(X, reset=False))

    def _predict(self, predictor, X):
        known, f_idx_map = self._bitsets
        return predictor.predict(X, known, f_idx_map, self._threads)

    def round_leaves(self, X, t):
        return X.block(t, self.n_rounds, self.n_outputs, lambda t0, t1: np.stack(
            [self._predict(p, X.data) for s in range(t0, t1) for p in self._numbered[s]],
            axis=1))

    def round_values(self, X, t):
        leaves = self.round_leaves(X, t)  # the leaves' stored values, by node number
        return np.stack([p.nodes["value"][leaves[:, k]]
                         for k, p in enumerate(self.estimator._predictors[t])], axis=1)

    def margin(self, X):
        # the model's own prediction loop on rows already preprocessed (categories first)
        raw = np.zeros((X.n, self.n_outputs), order="F") + self.base
        self.estimator._predict_iterations(X.data, self.estimator._predictors, raw,
                                           False, self._threads)
        return raw

    def problems(self):
        est = self.estimator
        out = []
        if est.loss not in ("log_loss", "squared_error"):
            out.append(("loss", f"loss={est.loss!r} updates its leaves after the Newton step "
                        "(or has no Newton step); supported: 'log_loss', 'squared_error'"))
        if getattr(est, "do_early_stopping_", False) and est.validation_fraction is not None:
            out.append(("early_stopping", "its trees were grown on a random "
                        f"{1 - est.validation_fraction:.0%} of the rows (the rest was the "
                        "early-stopping hold-out); refit with early_stopping=False, or "
                        "validation_fraction=None to stop on the training loss"))
        if getattr(est, "class_weight", None) is not None:
            out.append(("class_weight", "pass the weights as sample_weight instead (fit and "
                        "score with the same sample_weight)"))
        return out


# ---------------------------------------------------------------------------- LightGBM
class LightGBMReader(_Reader):
    library = "LightGBM"

    def __init__(self, estimator, X=None, y=None, sample_weight=None):
        self.estimator = estimator
        self.booster = estimator.booster_
        params = self.booster.params
        self.objective = str(params.get("objective", estimator.objective or ""))
        multi = self.objective in ("multiclass", "softmax", "multiclassova")
        self.n_outputs = int(params.get("num_class", 1)) if multi else 1
        best = getattr(estimator, "best_iteration_", None)
        total = self.booster.current_iteration()
        self.n_rounds = int(best) if best else total
        self.learning_rate = float(_first(params, ("learning_rate", "shrinkage_rate", "eta"),
                                          estimator.learning_rate))
        self.l2 = float(_first(params, ("lambda_l2", "reg_lambda", "lambda_l2"), 0.0))
        self.loss = SQUARED_ERROR if self.objective in ("regression", "regression_l2", "l2",
                                                        "mean_squared_error", "mse") \
            else LOG_LOSS
        self.hessian_factor = self.n_outputs / (self.n_outputs - 1.0) if multi else 1.0
        self.classes_ = getattr(estimator, "classes_", None)
        self._params = params
        self._tables = {}
        self.base = np.zeros(self.n_outputs)  # set by fit_base(y, weight) once rows are known

    @property
    def l2_choices(self):
        # a leaf made by a many-vs-many categorical split has cat_l2 on top of lambda_l2
        return (self.l2, self.l2 + float(_first(self._params, ("cat_l2",), 10.0)))

    def fit_base(self, y_idx, weight):
        """Boost-from-average: the initial score LightGBM folds into the first round's leaves."""
        if not _truthy(self._params.get("boost_from_average", True)):
            return
        w = weight / weight.sum()
        if self.loss == SQUARED_ERROR:
            self.base = np.array([np.dot(w, y_idx)])
        elif self.n_outputs == 1:
            p = float(np.dot(w, y_idx))
            self.base = np.array([np.log(p / (1 - p))])
        else:
            prior = np.bincount(y_idx, weights=w, minlength=self.n_outputs)
            self.base = np.log(np.maximum(prior, 1e-15))

    def prepare(self, X):
        return _Rows(X)

    def round_leaves(self, X, t):
        # LightGBM's per-call cost is high: one call gives a block of rounds' leaves
        return X.block(t, self.n_rounds, self.n_outputs, lambda t0, t1: self.booster.predict(
            X.data, pred_leaf=True, start_iteration=t0, num_iteration=t1 - t0))

    def round_values(self, X, t):
        leaves = self.round_leaves(X, t)
        out = np.empty(leaves.shape)
        for k in range(self.n_outputs):  # the library's leaf values, looked up by leaf number
            out[:, k] = self._leaf_values(t * self.n_outputs + k, int(leaves[:, k].max()))[
                leaves[:, k]]
        return out - self.base if t == 0 else out

    def _leaf_values(self, tree, largest):
        table = self._tables.get(tree)
        if table is None or len(table) <= largest:
            table = np.array([self.booster.get_leaf_output(tree, leaf)
                              for leaf in range(largest + 1)])
            self._tables[tree] = table
        return table

    def margin(self, X):
        raw = self.booster.predict(X.data, raw_score=True, num_iteration=self.n_rounds)
        return np.asarray(raw, dtype=np.float64).reshape(X.n, self.n_outputs)

    def problems(self):
        p, out = self._params, []
        boosting = str(_first(p, ("boosting", "boosting_type", "boost"), "gbdt"))
        if boosting != "gbdt":
            out.append(("boosting_type", f"boosting_type={boosting!r} is not one Newton step "
                        "per leaf on every row; use 'gbdt'"))
        if self.objective not in ("binary", "multiclass", "softmax", "regression",
                                  "regression_l2", "l2", "mean_squared_error", "mse"):
            out.append(("objective", f"objective={self.objective!r}; supported: 'binary', "
                        "'multiclass', 'regression' (squared error)"))
        if float(_first(p, ("bagging_fraction", "subsample"), 1.0)) < 1.0 and \
                int(_first(p, ("bagging_freq", "subsample_freq"), 0)) > 0:
            out.append(("subsample", "row subsampling (bagging) grows each tree on a random "
                        "part of the rows; refit with subsample=1.0"))
        if str(p.get("data_sample_strategy", "bagging")) == "goss":
            out.append(("data_sample_strategy", "GOSS reweights and drops rows per round"))
        for names, what in ((("lambda_l1", "reg_alpha"), "reg_alpha (L1) shrinks leaves by a "
                             "soft threshold"),
                            (("max_delta_step",), "max_delta_step clips the leaves"),
                            (("path_smooth",), "path_smooth pulls leaves toward their parents")):
            if float(_first(p, names, 0.0)) > 0:
                out.append((names[-1], what + "; refit with it at 0"))
        if _truthy(p.get("linear_tree", False)):
            out.append(("linear_tree", "leaves are linear models"))
        for name in ("is_unbalance", "scale_pos_weight", "class_weight"):
            value = p.get(name, getattr(self.estimator, name, None))
            if name == "class_weight" and getattr(self.estimator, name, None) is not None:
                value = True
            if value not in (None, False, 1.0, 1, "false", "False"):
                out.append((name, "pass the weights as sample_weight instead"))
        return out


# ---------------------------------------------------------------------------- XGBoost
class XGBoostReader(_Reader):
    library = "XGBoost"

    def __init__(self, estimator):
        self.estimator = estimator
        self.booster = estimator.get_booster()
        config = json.loads(self.booster.save_config())
        learner = config["learner"]
        self.objective = learner["objective"]["name"]
        self.n_outputs = max(1, int(learner["learner_model_param"].get("num_class", "0")))
        best = getattr(estimator, "best_iteration", None) if _has_best(estimator) else None
        self.n_rounds = best + 1 if best is not None else self.booster.num_boosted_rounds()
        train_param = _tree_param(config)
        self.learning_rate = float(train_param.get("eta", train_param.get("learning_rate", 0.3)))
        self.l2 = float(train_param.get("lambda", train_param.get("reg_lambda", 1.0)))
        self._train_param = train_param
        self._config = config
        self.loss = SQUARED_ERROR if self.objective == "reg:squarederror" else LOG_LOSS
        self.hessian_factor = 2.0 if self.objective.startswith("multi:") else 1.0
        self.classes_ = getattr(estimator, "classes_", None)
        self.base = None  # the model's margin minus the rounds' sum: set by the adapter
        self._tables = {}

    def prepare(self, X):
        import xgboost

        n = X.shape[0]
        zero = np.zeros((n, self.n_outputs) if self.n_outputs > 1 else n)
        options = {"missing": getattr(self.estimator, "missing", np.nan),
                   "enable_categorical": bool(getattr(self.estimator, "enable_categorical",
                                                      False))}
        if not hasattr(X, "columns"):  # an array: the names and types the model was fitted with
            options.update(feature_names=self.booster.feature_names,
                           feature_types=self.booster.feature_types)
        return _XGBRows(xgboost.DMatrix(X, base_margin=zero, **options),
                        xgboost.DMatrix(X, **options), n)

    def round_leaves(self, X, t):
        # XGBoost gives leaves for whole ranges [0, t) only: a slice of a block of rounds
        return X.block(t, self.n_rounds, self.n_outputs, lambda t0, t1: self.booster[
            t0:t1].predict(X.zero, pred_leaf=True))

    def round_values(self, X, t):
        leaves = self.round_leaves(X, t)
        table = self._tables.get(t)
        if table is not None and table.shape[0] > leaves.max() and \
                not np.isnan(np.take_along_axis(table, leaves, 0)).any():
            return np.take_along_axis(table, leaves, 0)  # every leaf's value read before
        raw = self.booster.predict(X.zero, output_margin=True, iteration_range=(t, t + 1))
        values = np.asarray(raw, dtype=np.float64).reshape(X.n, self.n_outputs)
        # remember each leaf's value (one round's table, by node number): the second sweep
        # over the same rows reads it instead of asking the library again
        size = max(int(leaves.max()) + 1, 0 if table is None else table.shape[0])
        grown = np.full((size, self.n_outputs), np.nan)
        if table is not None:
            grown[:table.shape[0]] = table
        np.put_along_axis(grown, leaves, values, 0)
        self._tables[t] = grown
        return values

    def rounds_total(self, X):
        """The rounds' summed contribution to the margin of rows ``X``, in one call."""
        raw = self.booster.predict(X.zero, output_margin=True, iteration_range=(0, self.n_rounds))
        return np.asarray(raw, dtype=np.float64).reshape(X.n, self.n_outputs)

    def margin(self, X):
        raw = self.booster.predict(X.plain, output_margin=True, iteration_range=(0, self.n_rounds))
        return np.asarray(raw, dtype=np.float64).reshape(X.n, self.n_outputs)

    def problems(self):
        p, out = self._train_param, []
        gbtree = self._config["learner"]["gradient_booster"].get("name", "gbtree")
        if gbtree != "gbtree":
            out.append(("booster", f"booster={gbtree!r}; use 'gbtree'"))
        if self.objective not in ("binary:logistic", "multi:softprob", "multi:softmax",
                                  "reg:squarederror"):
            out.append(("objective", f"objective={self.objective!r}; supported: "
                        "'binary:logistic', 'multi:softprob', 'reg:squarederror'"))
        if float(p.get("subsample", 1.0)) < 1.0:
            out.append(("subsample", "row subsampling grows each tree on a random part of "
                        "the rows; refit with subsample=1.0"))
        if float(p.get("alpha", p.get("reg_alpha", 0.0))) > 0:
            out.append(("reg_alpha", "L1 shrinks leaves by a soft threshold; refit with "
                        "reg_alpha=0"))
        if float(p.get("max_delta_step", 0.0)) > 0:
            out.append(("max_delta_step", "it clips the leaves; refit with max_delta_step=0"))
        if int(p.get("num_parallel_tree", 1)) > 1:
            out.append(("num_parallel_tree", "a forest per round is not one Newton step"))
        spw = self._config["learner"]["objective"].get("reg_loss_param", {}).get(
            "scale_pos_weight", "1")
        if float(spw) != 1.0:
            out.append(("scale_pos_weight", "pass the weights as sample_weight instead"))
        return out


#: bytes of leaf numbers one block of rounds may hold (LightGBM, XGBoost)
BLOCK_BYTES = 64 * 2**20


class _Rows:
    """Rows as a library reads them, with the leaves of the block of rounds last read."""

    def __init__(self, data):
        self.data, self.n = data, data.shape[0]
        self.shape = (self.n,)
        self._start, self._leaves = None, None

    def block(self, t, n_rounds, n_outputs, predict_leaves):
        """Round t's (n, K) leaves, from a block of rounds read in one call when needed."""
        size = max(1, BLOCK_BYTES // (4 * max(self.n, 1) * n_outputs))
        start = (t // size) * size
        if self._start != start:
            stop = min(start + size, n_rounds)
            leaves = np.asarray(predict_leaves(start, stop), dtype=np.int32)
            self._leaves = leaves.reshape(self.n, stop - start, n_outputs)
            self._start = start
        return self._leaves[:, t - start, :].astype(np.intp)


class _XGBRows(_Rows):
    """The two DMatrix views of one block of rows: base margin zero, and as the model sees it."""

    def __init__(self, zero, plain, n):
        self.zero, self.plain, self.n = zero, plain, n
        self.shape = (n,)
        self._start, self._leaves = None, None


def _tree_param(config):
    """The tree booster's training parameters from XGBoost's saved configuration."""
    booster = config["learner"]["gradient_booster"]
    return dict(booster.get("tree_train_param", {}))


def _has_best(estimator):
    try:
        return estimator.best_iteration is not None
    except AttributeError:  # XGBoost raises when no early stopping ran
        return False


def _first(params, names, default):
    for name in names:
        if name in params and params[name] is not None:
            return params[name]
    return default


def _truthy(value):
    return value is True or str(value).lower() in ("true", "1")
