"""
=====================================================================
Defending against evasion attacks: transferred and adaptive attacks
=====================================================================

Left: the protocol of the IP paper on UCI Adult. An attacker pushes a random
15% of the test points across a logistic regression's decision boundary
(``x' = x - 1.3 (w.x + b) / ||w||^2 w``). Before the attack, the defender
scores the training samples' influence on the loss of an attacked copy of a
validation set (``AdversarialRobustness(gamma=1.3)``) and trims 5% of them. The
trimmed model resists the attack made on the plain model. The same attack
recomputed against the trimmed model works as well as before: the defence
only moved the weights away from the ones that were attacked.

Right: the budgeted, adaptive attack. A test point is robustly correct only if
no perturbation of l2 norm <= 0.5 changes the prediction of the model under
test (``skinfluence.metrics.robust_accuracy``, exact for linear models). Plain
models over a sweep of C trace a clean-vs-robust front. Trimming by influence
on the budgeted objective (``AdversarialRobustness(epsilon=1.0, norm="l2")``)
gives another set of models to compare with that front.
"""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import AdversarialRobustness, InfluenceTrimmer
from skinfluence.datasets import load_adult
from skinfluence.metrics import robust_accuracy
from skinfluence.plotting import plot_robustness_front

d = load_adult()
X_train, X_val, y_train, y_val = train_test_split(d.X_train, d.y_train, test_size=0.2,
                                                  stratify=d.y_train, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, d.X_test))
y_test = d.y_test


def gamma_attack(model, X, gamma=1.3):
    w, b = model.coef_[0], model.intercept_[0]
    return X - gamma * ((X @ w + b) / (w @ w))[:, None] * w


# --- transferred attack (the paper's protocol) -----------------------------------
rng = np.random.RandomState(0)
idx = rng.choice(len(X_test), int(0.15 * len(X_test)), replace=False)


def attacked(model):
    X_att = X_test.copy()
    X_att[idx] = gamma_attack(model, X_test[idx])
    return X_att


plain = LogisticRegression(max_iter=1000).fit(X_train, y_train)
trimmed = InfluenceTrimmer(LogisticRegression(max_iter=1000), method="exact_hessian",
                           objective=AdversarialRobustness(gamma=1.3), fraction=0.05)
trimmed.fit(X_train, y_train, X_val=X_val, y_val=y_val)
bars = {
    "plain, clean": plain.score(X_test, y_test),
    "plain, attacked": plain.score(attacked(plain), y_test),
    "trimmed, attack\nmade on plain": trimmed.score(attacked(plain), y_test),
    "trimmed, attack\nmade on it": trimmed.score(attacked(trimmed.estimator_), y_test),
}
for name, acc in bars.items():
    print(f"{name.replace(chr(10), ' '):32s} {acc:.3f}")

# --- budgeted attack, recomputed against each model --------------------------------
EPS = 0.5


def point(model):
    return model.score(X_test, y_test), robust_accuracy(model, X_test, y_test, epsilon=EPS)


sweep = [point(LogisticRegression(C=C, max_iter=1000).fit(X_train, y_train))
         for C in (1e-4, 2e-4, 5e-4, 1e-3, 3e-3, 1e-2, 1.0)]
curated = []
for fraction in (0.05, 0.1, 0.2):
    model = InfluenceTrimmer(LogisticRegression(C=1e-3, max_iter=1000), method="ip",
                             objective=AdversarialRobustness(epsilon=1.0, norm="l2"),
                             fraction=fraction)
    curated.append(point(model.fit(X_train, y_train, X_val=X_val, y_val=y_val)))
    print(f"trim {fraction:.0%} on the budgeted objective: clean {curated[-1][0]:.3f}, "
          f"robust (l2, eps {EPS}) {curated[-1][1]:.3f}")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
ax0.bar(list(bars), list(bars.values()), color=["grey", "tab:red", "tab:blue", "tab:red"])
ax0.set_ylim(0.6, 0.9)
ax0.set_ylabel("test accuracy")
ax0.set_title("transferred attack (gamma 1.3, 15% of test points)")
plt.setp(ax0.get_xticklabels(), fontsize=8)
plot_robustness_front({
    "plain, C sweep": {"clean": [s[0] for s in sweep], "robust": [s[1] for s in sweep]},
    "influence trim": {"clean": [c[0] for c in curated], "robust": [c[1] for c in curated],
                       "label": ["5%", "10%", "20%"]},
}, ax=ax1)
ax1.set_ylabel(f"robust accuracy (l2, eps {EPS})")
ax1.set_title("adaptive budgeted attack")
fig.tight_layout()
plt.show()

# the figures this example is about
headline = {
    "plain_clean": bars["plain, clean"],
    "plain_attacked": bars["plain, attacked"],
    "trimmed_attack_on_plain": bars["trimmed, attack\nmade on plain"],
    "trimmed_attack_on_it": bars["trimmed, attack\nmade on it"],
    "best_robust_trimmed": max(c[1] for c in curated),
    "best_robust_plain": max(s[1] for s in sweep),
}
