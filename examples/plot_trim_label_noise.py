"""
===========================================================
Trimming flipped labels with ``InfluenceTrimmer``
===========================================================

Flip 10% of the training labels of the digits data, then let
:class:`skinfluence.InfluenceTrimmer` drop the training samples whose
influence on the validation loss is most detrimental (5-fold cross-fitted IP
scores; higher = more beneficial) and refit. Left: test accuracy against the
share trimmed, with the plain model for reference, and the point
``fraction="auto"`` chooses by itself (per class, as many as the held-out
predictions say are mislabeled, and only if refitting the folds without them
predicts the held-out rows better). Right: the distribution of the scores,
the 10% trimmed marked in red and the flipped labels as a rug
(:func:`skinfluence.plotting.plot_score_distribution`).
"""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceTrimmer
from skinfluence.datasets import flip_labels
from skinfluence.plotting import plot_score_distribution

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
y_noisy, flipped = flip_labels(y_train, 0.1, random_state=0)

plain = LogisticRegression(max_iter=2000).fit(X_train, y_noisy)
clean = LogisticRegression(max_iter=2000).fit(X_train, y_train)

# Score once, then reuse the scores for every fraction (same result as refitting
# each InfluenceTrimmer from scratch with the same random_state).
trimmer = InfluenceTrimmer(LogisticRegression(max_iter=2000), random_state=0)
trimmer.fit(X_train, y_noisy)
fractions = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2]
accuracy, share_flipped = [], []
for fraction in fractions:
    trimmer.set_params(fraction=fraction).fit(X_train, y_noisy, scores=trimmer.scores_)
    accuracy.append(trimmer.score(X_test, y_test))
    share_flipped.append(flipped[~trimmer.support_].mean() if fraction else np.nan)
    print(f"trim {fraction:5.3f}: test accuracy {accuracy[-1]:.3f}, "
          f"flipped among trimmed {share_flipped[-1]:.2f}")

# Let the trimmer decide how many: fraction="auto"
auto = InfluenceTrimmer(LogisticRegression(max_iter=2000), fraction="auto", random_state=0)
auto.fit(X_train, y_noisy)
auto_share = 1 - auto.support_.mean()
print(f"fraction='auto': estimated {auto.noise_rate_:.1%} wrong labels, trimmed "
      f"{auto_share:.1%} (refit check: {auto.refit_check_}), test accuracy "
      f"{auto.score(X_test, y_test):.3f}, flipped among trimmed "
      f"{flipped[~auto.support_].mean():.2f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.plot(fractions, accuracy, "o-", label="InfluenceTrimmer (IP)")
ax1.plot([auto_share], [auto.score(X_test, y_test)], "r*", markersize=14,
         label='fraction="auto"')
ax1.axhline(plain.score(X_test, y_test), color="grey", ls="--", label="plain, noisy labels")
ax1.axhline(clean.score(X_test, y_test), color="green", ls=":", label="plain, clean labels")
ax1.set_xlabel("share of training samples trimmed")
ax1.set_ylabel("test accuracy")
ax1.legend()
# right: the scores, the 10% trimmed in red, the flipped labels as a rug
trimmer.set_params(fraction=0.1).fit(X_train, y_noisy, scores=trimmer.scores_)
plot_score_distribution(trimmer, truth=flipped, truth_label="flipped", ax=ax2)
ax2.set_yscale("log")
fig.tight_layout()
plt.show()

# the figure this example is about
headline = {
    "plain_accuracy": plain.score(X_test, y_test),
    "trimmed_10pct_accuracy": accuracy[fractions.index(0.1)],
    "flipped_among_trimmed_5pct": share_flipped[fractions.index(0.05)],
    "auto_accuracy": auto.score(X_test, y_test),
    "auto_trimmed_share": auto_share,
    "auto_flipped_among_trimmed": flipped[~auto.support_].mean(),
}
