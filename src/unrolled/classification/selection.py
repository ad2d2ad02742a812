r"""Feature selection across cross-validation folds: the score of Fig. 4 and the FP/FN rates of Table I.

The paper scores a feature-set size ``q`` by "the 6th strategy of [22]", an
accuracy-and-stability score it does not spell out. We use, and document, a
simple one of that kind:

.. math:: P_q = \mathrm{acc}_q \times J_q ,

where :math:`\mathrm{acc}_q` is the cross-validated accuracy of models built on
the top-``q`` features of each fold and :math:`J_q` the mean pairwise Jaccard
index of the folds' top-``q`` sets :math:`V_{q,k}` (1 when every fold selects the
same features). The selected set :math:`V_q` is the ``q`` features chosen most
often across folds (ties broken by mean rank).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["top_q", "jaccard_stability", "selection_score", "consensus_set", "fp_fn_rates"]


def top_q(coef: np.ndarray, q: int) -> np.ndarray:
    """Indices of the ``q`` largest ``|coef|`` (ties by index), sorted."""
    coef = np.abs(np.asarray(coef, dtype=float).reshape(-1))
    if not 0 <= q <= coef.size:
        raise ValueError(f"q must be in [0, {coef.size}], got {q}")
    order = np.lexsort((np.arange(coef.size), -coef))
    return np.sort(order[:q])


def jaccard_stability(sets: list[np.ndarray]) -> float:
    """Mean pairwise Jaccard index ``|A & B| / |A | B|`` of the sets (1 for fewer than 2 sets)."""
    pairs = list(itertools.combinations([set(map(int, s)) for s in sets], 2))
    if not pairs:
        return 1.0
    return float(np.mean([len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]))


def selection_score(accuracy: float, sets: list[np.ndarray]) -> float:
    """:math:`P_q = \\mathrm{acc}_q \\times J_q` (see the module notes)."""
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    return float(accuracy * jaccard_stability(sets))


def consensus_set(rankings: list[np.ndarray], q: int) -> np.ndarray:
    """The ``q`` features most often in the folds' top-``q`` sets (ties by mean rank), sorted.

    ``rankings`` holds one ``|coef|`` vector per fold.
    """
    R = np.abs(np.asarray(rankings, dtype=float))
    counts = np.zeros(R.shape[1])
    ranks = np.zeros(R.shape[1])
    for r in R:
        counts[top_q(r, q)] += 1
        ranks += np.argsort(np.argsort(-r, kind="stable"), kind="stable")
    order = np.lexsort((ranks, -counts))
    return np.sort(order[:q])


def fp_fn_rates(selected: np.ndarray, true_support: np.ndarray, n_features: int) -> tuple[float, float]:
    """False-positive rate ``|selected \\ S| / (p - |S|)`` and false-negative rate ``|S \\ selected| / |S|``."""
    sel, true = set(map(int, selected)), set(map(int, true_support))
    if not true or len(true) >= n_features:
        raise ValueError("true_support must be a non-empty proper subset of the features")
    return len(sel - true) / (n_features - len(true)), len(true - sel) / len(true)
