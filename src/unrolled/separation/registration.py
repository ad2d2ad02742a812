"""Registers the separation family with :mod:`unrolled.core.registry` (entry point ``separation`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family(
    "separation", "unrolled.separation",
    "sparse semi-blind source separation: X = A S + N, A of unit-norm spectra (LPALM)", ("palm",),
))

import unrolled.experiments.lpalm_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
