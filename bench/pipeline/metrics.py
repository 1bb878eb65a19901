"""Accuracy of posterior draws against exact ones.

- ``mean_error``: the largest |mean - exact mean| over parameters, in exact posterior sd.
- ``sd_ratio``: per parameter sd / exact sd (the worst reported: farthest from 1 in log).
- ``c2st``: the classifier two-sample test (Lopez-Paz & Oquab 2017; as in sbibench,
  Lueckmann et al. 2021): the 5-fold cross-validated accuracy of an MLP telling the
  draws from exact ones, both z-scored by the exact draws' mean and sd. 0.5: the
  classifier cannot tell them apart; 1.0: disjoint.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_error", "sd_ratio", "c2st", "summary"]


def mean_error(draws: np.ndarray, exact: np.ndarray) -> float:
    return float(np.max(np.abs(draws.mean(0) - exact.mean(0)) / exact.std(0)))


def sd_ratio(draws: np.ndarray, exact: np.ndarray) -> float:
    r = draws.std(0) / exact.std(0)
    return float(r[np.argmax(np.abs(np.log(r)))])


def c2st(draws: np.ndarray, exact: np.ndarray, n: int = 5000, seed: int = 0) -> float:
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(seed)
    a = draws[rng.choice(len(draws), size=min(n, len(draws)), replace=False)]
    b = exact[rng.choice(len(exact), size=min(n, len(exact)), replace=False)]
    m, s = exact.mean(0), exact.std(0)
    x = np.concatenate([(a - m) / s, (b - m) / s])
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    d = x.shape[1]
    clf = MLPClassifier(hidden_layer_sizes=(10 * d, 10 * d), activation="relu", max_iter=1000, solver="adam",
                        random_state=seed)
    folds = KFold(n_splits=5, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, x, y, cv=folds, scoring="accuracy")))


def summary(draws: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    return {"mean_error_sd": mean_error(draws, exact), "sd_ratio": sd_ratio(draws, exact),
            "c2st": c2st(draws, exact)}
