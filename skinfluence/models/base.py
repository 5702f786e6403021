"""The adapter protocol: what methods, objectives and estimators may ask of a model.

An adapter is a differentiable view of one fitted estimator. Everything above
the adapters (:mod:`skinfluence.methods`, :mod:`skinfluence.objectives`, the
NewtonLOO pass, unlearning, the Dask wrapper) talks to a model only through
:class:`ModelAdapter` and the two data types here, and asks what a model can
do through its declared capabilities, never through its family's name.

Adding a model family is one new module: a :class:`ModelAdapter` subclass,
registered with :func:`skinfluence.models.register_adapter`.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["ATTACK_NORMS", "Chunk", "ModelAdapter", "ObjectiveTerms", "TrainingData"]

#: balls of the robustness objective's budgeted attack (None: the transferred gamma attack)
ATTACK_NORMS = (None, "l2", "linf")


@dataclass
class TrainingData:
    """Validated training rows: numpy/scipy arrays (linear models) or tensors (nets).

    ``y`` holds class indices; ``weight`` is each sample's multiplier c_i in
    the sum-form training objective (1 for an unweighted net).
    """

    X: object
    y: object
    weight: object

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def relative_weight(self):
        """c_i / mean(c): 1 for every sample of an unweighted fit."""
        return self.weight / self.weight.mean()


@dataclass
class ObjectiveTerms:
    """An objective written as ``J = sum_j coef_j * phi(f_j)`` over rows of ``X``.

    ``kind="loss"``: phi is the model's own per-sample training loss of label
    ``y_j`` (the log-loss for probabilistic models; each adapter says what its
    family's loss is); ``kind="proba"``: phi is the predicted probability of
    class index ``positive``. Objectives build these; adapters differentiate them.
    """

    X: object
    y: np.ndarray
    coef: np.ndarray
    kind: str
    positive: int = 1


class ModelAdapter(ABC):
    """Base of every adapter: the protocol, its capabilities and their defaults.

    Required attributes: ``family`` (a name, for messages only), ``classes_``,
    ``n_params`` and ``theta`` (the flat parameter vector: numpy for linear
    models, a torch tensor for networks). Hessians are in mean form:
    ``H = (1 / sum c_i) * hess F`` for the training objective ``F``.

    Capabilities (class attributes, False unless an adapter declares them):

    - ``convex``: the training objective is convex, so an iterative solve needs
      no shift to make the Hessian positive definite;
    - ``supports_newton_loo``: outputs ``F = logits(theta, X)`` linear in the
      features (``n_outputs`` blocks of ``n_columns`` parameters, the last one
      the intercept when ``fit_intercept``), with closed-form
      ``probabilities(F)``, ``targets(y)``, ``curvature(P)`` and
      ``curvature_derivative(P, dF)`` of the per-sample loss in the logits,
      ``objective_hessian``, ``training_hessian_derivative`` and a
      ``score_pass`` taking a ``chunk_hook`` (NewtonLOO, and unlearning's
      Woodbury step, need these);
    - ``supports_dask``: ``training_data`` and every pass accept Dask rows
      through :class:`skinfluence.models._dask.DaskLinearAdapter`;
    - ``uses_numpy_blas``: the passes are many small numpy products, run
      with one BLAS thread;
    - ``linear_in_parameters``: the outputs are linear in ``theta``, so the
      Gauss-Newton matrix equals the Hessian (otherwise an adapter offers
      ``gauss_newton`` / ``gauss_newton_vp`` to have that curvature).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.models import make_adapter
    >>> from skinfluence.models.base import ModelAdapter
    >>> a = make_adapter(LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]))
    >>> isinstance(a, ModelAdapter), a.convex, a.n_params
    (True, True, 2)
    """

    family = "model"
    convex = False
    supports_newton_loo = False
    supports_dask = False
    uses_numpy_blas = False
    linear_in_parameters = False

    # ------------------------------------------------------------------ data
    @abstractmethod
    def training_data(self, X, y, sample_weight=None, *, name="X"):
        """Validated rows -> :class:`TrainingData` (y as class indices, c_i as weight)."""

    def checked_training_data(self, X, y, sample_weight=None, *, name="X"):
        """:meth:`training_data` for rows a meta-estimator validated already.

        ``validate_data`` made X a finite 2-D numeric array (or CSR matrix) and
        sample_weight a valid vector; an adapter may skip its own checks
        (the default validates again).
        """
        return self.training_data(X, y, sample_weight, name=name)

    @abstractmethod
    def check_X(self, X, name):
        """Validated rows the model can read (validation or attacked rows)."""

    @abstractmethod
    def encode(self, y, *, name, n):
        """Labels -> class indices; unknown labels raise a ValueError naming ``name``."""

    # ------------------------------------------------------------------ objective
    @abstractmethod
    def objective_value(self, terms, theta=None):
        """``J(theta)`` for :class:`ObjectiveTerms` (default: the fitted theta)."""

    @abstractmethod
    def objective_gradient(self, terms, theta=None):
        """``grad J(theta)``: a flat vector of the type of ``theta``."""

    def objective_gradients(self, terms, theta=None):
        """(P, m) block: column j is the gradient of row j's term ``coef_j * phi_j``.

        One gradient per row (attribution of single predictions); an adapter
        may compute them together. The default asks :meth:`objective_gradient`
        for each row, so each column is exactly a one-row objective's gradient.
        """
        cols = [self.objective_gradient(replace(terms, X=terms.X[j:j + 1], y=terms.y[j:j + 1],
                                                coef=terms.coef[j:j + 1]), theta)
                for j in range(len(terms.y))]
        if hasattr(cols[0], "detach"):  # torch: stay on the device
            import torch

            return torch.stack(cols, dim=1)
        return np.stack(cols, axis=1)

    def attack(self, X, y_idx, objective):
        """Attacked copy of ``X`` for the robustness objective."""
        raise TypeError(f"A {self.family} model has no attack for {type(objective).__name__}.")

    # ------------------------------------------------------------------ curvature
    @abstractmethod
    def hessian(self, train, indices=None, sample_weights=None, theta=None, batch_size=4096):
        """Mean-form Hessian of the training objective: P x P numpy float64."""

    @abstractmethod
    def hvp(self, train, vec, theta=None, batch_size=4096, indices=None, sample_weights=None):
        """Mean-form Hessian times ``vec`` (returns the type of ``vec``)."""

    def null_directions(self):
        """(P, r) orthonormal directions the objective does not see (e.g. softmax shift)."""
        return np.zeros((self.n_params, 0))

    def regulariser_hessian_mean(self, train):
        """Diagonal of the regulariser's Hessian in mean form for ``train`` (unlearning)."""
        return np.zeros(self.n_params)

    def explain(self, exc):
        """A clearer error for ``exc`` (a ``NotImplementedError`` raised while scoring)
        where the family knows its cause; else ``exc`` itself."""
        return exc

    def with_parameters(self, estimator, theta):
        """A deep copy of ``estimator`` holding the flat parameters ``theta`` (unlearning)."""
        raise TypeError(f"A {self.family} model cannot take new parameters.")

    # ------------------------------------------------------------------ samplers, ensembles
    def hessian_norms(self, train, theta=None):
        """Per-sample norms of the loss Hessian (leverage-score samplers)."""
        raise TypeError(f"A {self.family} model has no per-sample Hessian norms.")

    def embedding(self, X):
        """Rows in the space the samplers cluster (default: X itself)."""
        return X

    def perturbed_parameters(self, perturbation, level, rng):
        """A perturbed copy of ``theta`` (IPEnsemble's members)."""
        raise TypeError(f"A {self.family} model cannot perturb its parameters.")

    # ------------------------------------------------------------------ the pass
    @abstractmethod
    def score_pass(self, train, thetas, directions, *, batch_size, progress=None):
        """(n, M) scores ``<v_m, c_i / mean(c) grad l_i(theta_m)>``: one streamed pass.

        Adapters with ``supports_newton_loo`` also take ``chunk_hook``: an
        object with ``directions`` (R, P) and ``n_columns``, called as
        ``chunk_hook(rows, chunk)`` for every chunk with a :class:`Chunk`;
        its (rows, n_columns) output is returned as a second array.
        """


@dataclass
class Chunk:
    """What a ``chunk_hook`` sees of one chunk of the scoring pass (member 0).

    ``logits`` (n, K') at theta; ``direction`` (n, K'), or (n, B, K') for a
    block of B directions: the logits' derivative along member 0's
    direction(s); ``jvps`` (n, K', R): along each of the hook's R directions;
    ``y`` class indices, ``weight`` the c_i; ``adapter`` the adapter running
    the pass.
    """

    adapter: object
    logits: np.ndarray
    direction: np.ndarray
    jvps: np.ndarray
    y: np.ndarray
    weight: np.ndarray
