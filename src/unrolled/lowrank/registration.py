"""Registers the lowrank family with :mod:`unrolled.core.registry` (entry point ``lowrank`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family("lowrank", "unrolled.lowrank", "low rank + sparse movies D = H1 L + H2 S + N: robust PCA by ISTA/FISTA and CORONA"))
