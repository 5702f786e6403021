"""
===========================================================
Corrupted regression targets: trimming and relabeling
===========================================================

Shift 10% of the training targets of the diabetes data by 5-10 standard
deviations (a data-entry or unit error), then wrap ``Ridge`` in
:class:`skinfluence.InfluenceTrimmer` and :class:`skinfluence.InfluenceRelabeler`
with ``fraction="auto"``: 5-fold cross-fitting finds the targets whose held-out
residual is a robust outlier (beyond 3.5 MAD standard deviations), and the
trimmer drops them while the relabeler replaces each by its held-out
prediction. Both are regressors (``score`` is R^2). Left: test RMSE of the plain
model, of trimming the lowest-influence share, and of the two ``"auto"``
estimators, with the model fitted on the clean targets for reference. Right:
given target against held-out prediction, the flagged rows in red.
"""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import HuberRegressor, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceRelabeler, InfluenceTrimmer

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
rng = np.random.RandomState(0)
bad = rng.choice(len(y_train), len(y_train) // 10, replace=False)
y_noisy = y_train.astype(float).copy()
y_noisy[bad] += rng.choice([-1.0, 1.0], len(bad)) * rng.uniform(5, 10, len(bad)) * y_train.std()
corrupted = np.zeros(len(y_train), dtype=bool)
corrupted[bad] = True


def rmse(model):
    return float(np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2)))


plain = Ridge().fit(X_train, y_noisy)
clean = Ridge().fit(X_train, y_train)
huber = HuberRegressor(max_iter=1000).fit(X_train, y_noisy)
auto = InfluenceTrimmer(Ridge(), fraction="auto", random_state=0).fit(X_train, y_noisy)
relabel = InfluenceRelabeler(Ridge(), fraction="auto", random_state=0).fit(X_train, y_noisy)
print(f"plain {rmse(plain):.1f}, clean {rmse(clean):.1f}, Huber {rmse(huber):.1f}, "
      f"trim auto {rmse(auto):.1f} ({auto.n_trimmed_} rows), "
      f"relabel auto {rmse(relabel):.1f}")

# trimming by the influence score alone, at fixed shares (the scores are reused)
fractions = [0.0, 0.05, 0.1, 0.15, 0.2]
sweep = [rmse(InfluenceTrimmer(Ridge(), fraction=f).fit(X_train, y_noisy, scores=auto.scores_))
         for f in fractions]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.plot(fractions, sweep, "o-", label="trim lowest influence")
ax1.axhline(rmse(plain), color="grey", ls="--", label="plain Ridge, corrupted")
ax1.axhline(rmse(clean), color="green", ls=":", label="plain Ridge, clean")
ax1.plot([auto.noise_rate_], [rmse(auto)], "r*", ms=12, label='InfluenceTrimmer "auto"')
ax1.plot([relabel.noise_rate_], [rmse(relabel)], "ms", label='InfluenceRelabeler "auto"')
ax1.set_xlabel("share of training targets acted on")
ax1.set_ylabel("test RMSE")
ax1.legend(fontsize=8)
held_out = np.where(relabel.relabeled_, relabel.y_relabeled_, np.nan)
ax2.scatter(y_noisy[~relabel.relabeled_], y_noisy[~relabel.relabeled_], s=6, c="grey",
            label="kept (on the diagonal)")
ax2.scatter(held_out[relabel.relabeled_], y_noisy[relabel.relabeled_], s=12, c="red",
            label="flagged: given vs held-out prediction")
ax2.set_xlabel("held-out prediction (flagged) / target (kept)")
ax2.set_ylabel("given target")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()

# the figure this example is about
headline = {
    "plain_rmse": rmse(plain),
    "clean_rmse": rmse(clean),
    "auto_rmse": rmse(auto),
    "relabel_rmse": rmse(relabel),
    "corrupted_among_trimmed": float(corrupted[~auto.support_].mean()),
    "recall": float(corrupted[~auto.support_].sum() / corrupted.sum()),
}
