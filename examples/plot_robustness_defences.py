"""
=====================================================================
Defending against evasion attacks: trim, relabel or reweight
=====================================================================

The protocol of Section 7 of Z. Yang, H. Yue, J. Chen and H. Liu, "Revisit,
Extend, and Enhance Hessian-Free Influence Functions", on UCI Adult: an
attacker pushes a random 5-25% of the test points across a logistic
regression's decision boundary (``x' = x - 1.3 (w.x + b) / ||w||^2 w``). Before any attack, the defender
scores the training samples' influence on the loss of an attacked copy of a
validation set (``AdversarialRobustness``) and trims 5%, relabels 5% or
reweights them. Bars: accuracy on the attacked test sets, mean and standard
deviation over 10 attacks.
"""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import (AdversarialRobustness, InfluenceRelabeler, InfluenceReweighter,
                         InfluenceTrimmer)
from skinfluence.datasets import load_adult

d = load_adult()
X_train, X_val, y_train, y_val = train_test_split(d.X_train, d.y_train, test_size=0.2,
                                                  stratify=d.y_train, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, d.X_test))

plain = LogisticRegression(max_iter=1000).fit(X_train, y_train)
w, b = plain.coef_[0], plain.intercept_[0]
X_adv = X_test - 1.3 * ((X_test @ w + b) / (w @ w))[:, None] * w

rng = np.random.RandomState(0)
attacks = []
for _ in range(10):
    idx = rng.choice(len(X_test), int(rng.uniform(0.05, 0.25) * len(X_test)), replace=False)
    X_att = X_test.copy()
    X_att[idx] = X_adv[idx]
    attacks.append(X_att)

objective = AdversarialRobustness(gamma=1.3)
models = {
    "plain (post-attack)": plain,
    "trim 5%": InfluenceTrimmer(LogisticRegression(max_iter=1000), method="exact_hessian",
                                objective=objective, fraction=0.05),
    "relabel 5%": InfluenceRelabeler(LogisticRegression(max_iter=1000), method="exact_hessian",
                                     objective=objective, fraction=0.05),
    "reweight": InfluenceReweighter(LogisticRegression(max_iter=1000), method="exact_hessian",
                                    objective=objective),
}
means, stds = [plain.score(X_test, d.y_test)], [0.0]
for name, model in models.items():
    if model is not plain:
        model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    acc = [model.score(X_att, d.y_test) for X_att in attacks]
    means.append(np.mean(acc))
    stds.append(np.std(acc))
    print(f"{name:20s} accuracy under attack {means[-1]:.3f} +- {stds[-1]:.3f}")

fig, ax = plt.subplots(figsize=(7, 4))
labels = ["plain (pre-attack)", *models]
colors = ["grey", "tab:red", "tab:blue", "tab:blue", "tab:blue"]
ax.bar(labels, means, yerr=stds, capsize=4, color=colors)
ax.set_ylim(0.6, 0.9)
ax.set_ylabel("test accuracy")
plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
fig.tight_layout()
plt.show()
