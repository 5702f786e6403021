"""Synthetic data sets with known flipped labels, label-noise helpers, bundled real data.

Every generator returns a :class:`sklearn.utils.Bunch` with ``X_train``,
``y_train``, ``X_test``, ``y_test``, the boolean mask ``flipped`` of training
labels that were flipped, and ``y_train_clean``.
"""
import numpy as np
from sklearn.datasets import make_blobs, make_moons
from sklearn.utils import Bunch, check_random_state


def flip_labels(y, fraction=0.1, *, random_state=None):
    """Flip a random ``fraction`` of labels to another class (returns a copy and the mask).

    Binary labels go to the other class; multiclass labels to a uniformly
    chosen other class.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.datasets import flip_labels
    >>> y_noisy, flipped = flip_labels(np.array([0, 1] * 10), 0.1, random_state=0)
    >>> int(flipped.sum())
    2
    """
    rng = check_random_state(random_state)
    y = np.asarray(y)
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}.")
    classes = np.unique(y)
    n_flip = int(round(fraction * len(y)))
    idx = rng.choice(len(y), size=n_flip, replace=False)
    y_noisy = y.copy()
    for i in idx:
        others = classes[classes != y[i]]
        y_noisy[i] = others[rng.randint(len(others))]
    flipped = np.zeros(len(y), dtype=bool)
    flipped[idx] = True
    return y_noisy, flipped


def make_flipped_blobs(n_train=150, n_test=100, n_flipped=10, *, random_state=None):
    """Two Gaussian blobs, some training labels flipped (a linear test case).

    The blobs sit symmetrically about the origin, so a model without intercept
    (``LogisticRegression(C=100, fit_intercept=False)``) fits them. This is the
    linear case of Z. Yang, H. Yue, J. Chen and H. Liu, "Revisit, Extend, and
    Enhance Hessian-Free Influence Functions".

    Examples
    --------
    >>> from skinfluence.datasets import make_flipped_blobs
    >>> d = make_flipped_blobs(random_state=0)
    >>> d.X_train.shape, int(d.flipped.sum())
    ((150, 2), 10)
    """
    rng = check_random_state(random_state)
    centers = np.array([[-1.5, -1.5], [1.5, 1.5]])
    X, y = make_blobs(n_train + n_test, centers=centers, cluster_std=1.0, random_state=rng)
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    flipped = np.zeros(n_train, dtype=bool)
    flipped[rng.choice(n_train, size=n_flipped, replace=False)] = True
    y_noisy = np.where(flipped, 1 - y_train, y_train)
    return Bunch(X_train=X_train, y_train=y_noisy, X_test=X_test, y_test=y_test,
                 flipped=flipped, y_train_clean=y_train)


def make_flipped_moons(*, random_state=42):
    """Half-moons, 250 train / 100 test, 20 labels flipped in two regions.

    10 of class 0 with ``x2 >= 0.8`` and ``|x1| <= 0.5``; 10 of class 1 with
    ``x2 <= -0.45`` and ``0.5 <= x1 <= 1.5``: the non-convex case of Yang et al.,
    "Revisit, Extend, and Enhance Hessian-Free Influence Functions".

    Examples
    --------
    >>> from skinfluence.datasets import make_flipped_moons
    >>> d = make_flipped_moons()
    >>> d.X_train.shape, int(d.flipped.sum())
    ((250, 2), 20)
    """
    rng = check_random_state(random_state)
    X, y = make_moons(250, noise=0.125, random_state=42)
    X_test, y_test = make_moons(100, noise=0.1, random_state=42)
    region0 = np.flatnonzero((y == 0) & (X[:, 1] >= 0.8) & (np.abs(X[:, 0]) <= 0.5))
    region1 = np.flatnonzero((y == 1) & (X[:, 1] <= -0.45) & (X[:, 0] >= 0.5) & (X[:, 0] <= 1.5))
    chosen = np.concatenate([
        rng.choice(region0, size=min(10, len(region0)), replace=False),
        rng.choice(region1, size=min(10, len(region1)), replace=False),
    ])
    flipped = np.zeros(len(y), dtype=bool)
    flipped[chosen] = True
    return Bunch(X_train=X, y_train=np.where(flipped, 1 - y, y), X_test=X_test, y_test=y_test,
                 flipped=flipped, y_train_clean=y)


_ADULT_NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
_ADULT_CATEGORICAL = ["workclass", "marital_status", "occupation", "relationship", "race",
                      "sex", "native_country"]
_ADULT_SENSITIVE = {"sex": ("Male", "sex: 1 = Male, 0 = Female"),
                    "race": ("White", "race: 1 = White, 0 = any other")}


def load_adult(*, sensitive="sex", as_frame=False, dropna=True):
    """UCI Adult (census income): predict income > 50K, with a sensitive attribute.

    A compressed copy ships with skinfluence (``skinfluence/data/adult.csv.gz``;
    UCI Machine Learning Repository, Becker & Kohavi 1996, CC BY 4.0; see
    ``skinfluence/data/README_adult.txt`` for provenance and changes). The
    original train/test split is kept: 30,162 / 15,060 rows once rows with
    unknown values are dropped. Needs pandas.

    Parameters
    ----------
    sensitive : {"sex", "race"}, default="sex"
        Attribute returned as ``s_train`` / ``s_test``, binarised: sex 1 = Male;
        race 1 = White. It stays among the features.
    as_frame : bool, default=False
        False: ``X_*`` are float64 arrays, numeric columns as they are plus
        one-hot categorical columns (``feature_names``; the redundant
        ``education`` text column is left out). Scale before fitting a linear
        model. True: ``X_*`` are DataFrames of the raw columns.
    dropna : bool, default=True
        Drop rows with an unknown ("?") value.

    Returns
    -------
    data : Bunch
        ``X_train, y_train, X_test, y_test`` (y: 1 = income > 50K),
        ``s_train, s_test`` (0/1), ``feature_names``, ``sensitive_description``,
        ``frame`` (all rows, raw columns, with a ``split`` column).

    Examples
    --------
    >>> from skinfluence.datasets import load_adult
    >>> d = load_adult()
    >>> d.X_train.shape[0], d.X_test.shape[0]
    (30162, 15060)
    >>> round(float(d.y_train.mean()), 3), round(float(d.s_train.mean()), 3)
    (0.249, 0.676)
    """
    import importlib.resources

    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover
        raise ImportError("load_adult needs pandas (pip install pandas).") from exc
    if sensitive not in _ADULT_SENSITIVE:
        raise ValueError(f"sensitive must be one of {sorted(_ADULT_SENSITIVE)}, got {sensitive!r}.")
    ref = importlib.resources.files("skinfluence") / "data" / "adult.csv.gz"
    with importlib.resources.as_file(ref) as path:
        frame = pd.read_csv(path, compression="gzip")
    if dropna:
        frame = frame.dropna().reset_index(drop=True)
    y = (frame["income"] == ">50K").to_numpy().astype(np.int64)
    privileged, description = _ADULT_SENSITIVE[sensitive]
    s = (frame[sensitive] == privileged).to_numpy().astype(np.int64)
    raw = frame[_ADULT_NUMERIC[:1] + ["workclass", "education", "education_num",
                                      "marital_status", "occupation", "relationship", "race",
                                      "sex"] + _ADULT_NUMERIC[2:] + ["native_country"]]
    if as_frame:
        X, names = raw, list(raw.columns)
    else:
        encoded = pd.get_dummies(frame[_ADULT_NUMERIC + _ADULT_CATEGORICAL],
                                 columns=_ADULT_CATEGORICAL, dtype=np.float64)
        X, names = encoded.to_numpy(dtype=np.float64), list(encoded.columns)
    train = (frame["split"] == "train").to_numpy()

    def rows(a, mask):
        return a[mask].reset_index(drop=True) if hasattr(a, "iloc") else a[mask]

    return Bunch(X_train=rows(X, train), y_train=y[train], X_test=rows(X, ~train),
                 y_test=y[~train], s_train=s[train], s_test=s[~train], feature_names=names,
                 sensitive_description=description, frame=frame)


def make_memorised_moons(n_train=300, n_flipped=30, n_test=200, noise=0.1, *,
                         random_state=None):
    """Half-moons with labels flipped far from the class boundary.

    A network trained long enough without weight decay memorises such flips,
    which is where IP stops seeing them and checkpoint ensembles help. The
    flipped samples are drawn uniformly from the half of the training points
    farthest from the nearest point of the other (clean) class.

    Examples
    --------
    >>> from skinfluence.datasets import make_memorised_moons
    >>> d = make_memorised_moons(random_state=0)
    >>> d.X_train.shape, int(d.flipped.sum()), d.X_test.shape
    ((300, 2), 30, (200, 2))
    """
    rng = check_random_state(random_state)
    X, y = make_moons(n_train + n_test, noise=noise, random_state=rng)
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    dist = np.sqrt(((X_train[:, None, :] - X_train[None, :, :]) ** 2).sum(-1))
    dist[y_train[:, None] == y_train[None, :]] = np.inf
    far = np.argsort(-dist.min(axis=1))[: max(n_flipped, n_train // 2)]
    flipped = np.zeros(n_train, dtype=bool)
    flipped[rng.choice(far, size=n_flipped, replace=False)] = True
    return Bunch(X_train=X_train, y_train=np.where(flipped, 1 - y_train, y_train),
                 X_test=X_test, y_test=y_test, flipped=flipped, y_train_clean=y_train)
