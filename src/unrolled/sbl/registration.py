"""Registers the sbl family with :mod:`unrolled.core.registry` (entry point ``sbl`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family(
    "sbl", "unrolled.sbl",
    "sparse Bayesian learning: y = Phi x + w, support recovery (SBL-derived and gated recurrent nets)", ("sbl",),
))

import unrolled.experiments.sbl_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
