"""
===========================================================
Explaining one prediction with ``influence_matrix``
===========================================================

Which training digits made the model predict what it predicts for one test
digit? :func:`skinfluence.influence_matrix` scores every training row for the
log-loss of every test row (row j is :func:`skinfluence.influence_scores`
with test row j alone as the validation data; higher = the training row
lowers that test row's loss). With ``top_k`` it returns only the strongest
*proponents* (highest scores) and *opponents* (lowest) of each test row,
without holding the whole matrix.

First figure: a test digit the model gets wrong, the six training digits
that most support its given label and the six that most oppose it. Second:
how well
the attributions predict refits on random halves of the training data, per
method, measured by :func:`skinfluence.metrics.linear_datamodeling_score`
(the linear datamodeling score, LDS).
"""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from skinfluence import influence_matrix
from skinfluence.metrics import linear_datamodeling_score

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixels in [0, 1]
rng = np.random.default_rng(0)
order = rng.permutation(len(y))
train, test = order[:1000], order[1000:1100]
X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
model = LogisticRegression(C=1.0, max_iter=5000).fit(X_train, y_train)

# %%
# The strongest proponents and opponents of a misclassified test digit
# --------------------------------------------------------------------
wrong = np.flatnonzero(model.predict(X_test) != y_test)
j = int(wrong[0]) if len(wrong) else 0
top = influence_matrix(model, X_train, y_train, X_test[j:j + 1], y_test[j:j + 1],
                       method="exact_hessian", top_k=6)

fig, axes = plt.subplots(2, 7, figsize=(10, 3.8))
for ax in axes.ravel():
    ax.axis("off")
axes[0, 0].imshow(X_test[j].reshape(8, 8), cmap="gray_r")
axes[0, 0].set_title(f"test digit\nlabel {y_test[j]}, predicted "
                     f"{model.predict(X_test[j:j + 1])[0]}", fontsize=9)
rows = [(top.proponents[0], top.proponent_scores[0], "proponent", "Greens"),
        (top.opponents[0], top.opponent_scores[0], "opponent", "Reds")]
for row, (idx, scores, name, cmap) in enumerate(rows):
    for k, (i, s) in enumerate(zip(idx, scores)):
        axes[row, k + 1].imshow(X_train[i].reshape(8, 8), cmap=cmap)
        axes[row, k + 1].set_title(f"{name}\nlabel {y_train[i]}, {s:+.1f}", fontsize=8)
fig.tight_layout()

# %%
# How well each method predicts refits (LDS)
# ------------------------------------------
# 20 random halves of the training rows, one refit each; per test row, the
# Spearman correlation between the summed scores of the half's rows and the
# refitted model's negative log-loss, averaged over the 100 test rows.
methods = ["ip", "exact_hessian", "newton_loo"]
matrices = {m: influence_matrix(model, X_train, y_train, X_test, y_test, method=m)
            for m in methods}
lds = linear_datamodeling_score(LogisticRegression(C=1.0, max_iter=5000), X_train, y_train,
                                X_test, y_test, matrices, n_subsets=20, random_state=0)
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.barh(methods, [lds[m] for m in methods], color="tab:blue")
ax.set_xlim(0, 1)
ax.set_xlabel("linear datamodeling score (higher = better predicts refits)")
fig.tight_layout()
plt.show()

headline = {
    "proponents_with_given_label": float(np.mean(y_train[top.proponents[0]] == y_test[j])),
    "opponents_with_given_label": float(np.mean(y_train[top.opponents[0]] == y_test[j])),
    **{f"lds_{m}": round(lds[m], 3) for m in methods},
}
