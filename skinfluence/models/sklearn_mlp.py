"""Adapter for scikit-learn's fitted ``MLPClassifier`` and ``MLPRegressor``, through an
equivalent torch network.

The fitted ``coefs_`` / ``intercepts_`` are copied, in float64, into a
``torch.nn.Sequential`` of ``Linear`` layers and the hidden activation
(relu, tanh, logistic, identity), and the torch adapter does the rest: the
same forward passes, HVPs and scoring pass as for any network. torch is
needed (the ``torch`` extra); scikit-learn's own arrays are never modified.

The training objective is scikit-learn's: the mean log-loss (a regressor: half
the squared error, ``(f - y)^2 / 2``, scikit-learn's ``squared_error``) plus
``alpha / (2 n) * sum ||W||^2`` over the weights (not the intercepts), where
``n`` is the summed sample weight of the training rows (``solver="lbfgs"``) or
of one minibatch (``"sgd"`` / ``"adam"``: ``min(batch_size, n)`` rows, 200 for
``batch_size="auto"``; exact when the batch size divides n). So the weight
decay of the mean-form Hessian is ``alpha / n``, set once the training rows are
known. A binary classifier has one logistic output (``BCEWithLogitsLoss`` on
its logit); a multiclass one a softmax (``CrossEntropyLoss``); a regressor one
identity output (a regression, as skorch's ``NeuralNetRegressor``).

Not supported, with a clear error: multilabel targets and multi-output
regressors.

Examples
--------
>>> import numpy as np
>>> from sklearn.neural_network import MLPClassifier
>>> from skinfluence import influence_scores
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(80, 3))
>>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
>>> mlp = MLPClassifier((6,), solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
>>> influence_scores(mlp, X, y, X[:20], y[:20], method="exact_hessian").shape
(80,)
"""
import copy

import numpy as np

_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


def is_sklearn_mlp(estimator):
    """An ``MLPClassifier`` or ``MLPRegressor`` (subclasses included)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    return isinstance(estimator, (MLPClassifier, MLPRegressor))


def make_mlp_adapter(estimator, *, device="auto", **options):
    """The adapter for a fitted MLPClassifier / MLPRegressor; ``options``: ``params`` only."""
    unknown = sorted(set(options) - {"params"})
    if unknown:
        raise TypeError(f"Unknown option(s) {unknown} for an {type(estimator).__name__}; "
                        "expected 'params' (its loss and weight decay are read from the "
                        "estimator).")
    try:
        from .torch import TorchModelAdapter
    except ImportError as exc:  # pragma: no cover - torch is the optional extra
        raise ImportError(f"Scoring an {type(estimator).__name__} needs torch (pip install "
                          "'skinfluence[torch]').") from exc

    class MLPAdapter(_MLPMixin, TorchModelAdapter):
        pass

    return MLPAdapter(estimator, device=device, **options)


class _MLPMixin:
    """What an MLP adds to the torch adapter: its network, its loss and its weight decay."""

    def __init__(self, estimator, *, device="auto", params="all"):
        import torch

        if not hasattr(estimator, "coefs_"):
            raise ValueError(f"The {type(estimator).__name__} is not fitted (no coefs_); fit it "
                             "before scoring.")
        if estimator.activation not in _ACTIVATIONS:  # pragma: no cover - sklearn checks it
            raise ValueError(f"activation={estimator.activation!r} is not one of {_ACTIVATIONS}.")
        if not hasattr(estimator, "classes_"):  # MLPRegressor
            if getattr(estimator, "loss", "squared_error") != "squared_error":
                raise TypeError(f"This MLPRegressor has loss={estimator.loss!r}; only "
                                "loss='squared_error' is supported.")
            if estimator.n_outputs_ != 1:
                raise TypeError(f"This MLPRegressor has {estimator.n_outputs_} outputs; only "
                                "single-output regressors are supported (score each target "
                                "with a model of its own).")
            super().__init__((mlp_module(estimator), half_squared_error()), device=device,
                             params=params)
            self.mlp = estimator
            return
        if getattr(estimator, "out_activation_", None) not in ("logistic", "softmax") or (
                estimator.out_activation_ == "logistic" and estimator.n_outputs_ != 1):
            raise TypeError(
                f"This MLPClassifier has out_activation_={estimator.out_activation_!r} with "
                f"{estimator.n_outputs_} outputs (multilabel targets); only binary (one "
                "logistic output) and multiclass (softmax) classifiers are supported."
            )
        loss = (torch.nn.BCEWithLogitsLoss() if estimator.out_activation_ == "logistic"
                else torch.nn.CrossEntropyLoss())
        super().__init__((mlp_module(estimator), loss), device=device, params=params,
                         classes=np.asarray(estimator.classes_))
        self.mlp = estimator

    def training_data(self, X, y, sample_weight=None, *, name="X"):
        train = super().training_data(X, y, sample_weight, name=name)
        if name == "X":  # the rows the MLP was fitted on: the penalty's 1 / n is theirs
            self.weight_decay = self.space.diagonal(
                _decay(self.mlp, train.weight.double().cpu().numpy()), self.theta)
        return train

    def with_parameters(self, estimator, theta):
        """A deep copy of the MLPClassifier whose coefs_ / intercepts_ are ``theta``."""
        import torch

        values = self.space.unflatten(torch.as_tensor(theta))
        new = copy.deepcopy(estimator)
        for k in range(len(new.coefs_)):
            for name, target in ((f"{2 * k}.weight", new.coefs_), (f"{2 * k}.bias",
                                                                   new.intercepts_)):
                if name in values:
                    value = values[name].detach().cpu().numpy().astype(target[k].dtype)
                    target[k] = value.T if value.ndim == 2 else value
        return new


def half_squared_error():
    """``(f - y)^2 / 2``, scikit-learn's ``squared_error``: an ``MSELoss`` halved, so that
    the scores differentiate the MLPRegressor's own objective (and its ``alpha``)."""
    from torch import nn

    class HalfSquaredError(nn.MSELoss):
        def forward(self, input, target):
            return 0.5 * super().forward(input, target)

    return HalfSquaredError()


def mlp_module(estimator):
    """``torch.nn.Sequential`` (float64) computing the MLP's output-layer pre-activation.

    Layer ``2k`` is the k-th ``Linear``; the odd layers are the hidden activation.
    """
    import torch
    from torch import nn

    act = {"identity": nn.Identity, "logistic": nn.Sigmoid, "tanh": nn.Tanh,
           "relu": nn.ReLU}[estimator.activation]
    layers = []
    for k, (W, b) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(W, dtype=np.float64).T))
            lin.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float64)))
        layers.append(lin)
        if k < len(estimator.coefs_) - 1:
            layers.append(act())
    return nn.Sequential(*layers).eval()


def _decay(estimator, weights):
    """``{weight name: alpha / n}``: scikit-learn's L2 penalty in the mean-form objective."""
    n = float(np.sum(weights))
    if estimator.solver != "lbfgs":  # the penalty is divided by each minibatch's size
        rows = len(weights)
        batch = min(200, rows) if estimator.batch_size == "auto" else \
            int(np.clip(estimator.batch_size, 1, rows))
        n *= batch / rows
    return {f"{2 * k}.weight": estimator.alpha / n for k in range(len(estimator.coefs_))}
