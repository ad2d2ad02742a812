"""Registers the classification family with :mod:`unrolled.core.registry` (entry point ``classification`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family(
    "classification", "unrolled.classification",
    "l1 logistic regression with feature selection: P(y=1|x) = sigmoid(beta^T x) (deep IRLS-ADMM)", ("irls_admm",),
))

import unrolled.experiments.irls_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
