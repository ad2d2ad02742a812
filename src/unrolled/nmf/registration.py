"""Registers the nmf family with :mod:`unrolled.core.registry` (entry point ``nmf`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family("nmf", "unrolled.nmf", "non-negative matrix factorisation of spectrograms: sparse beta-NMF multiplicative updates and deep NMF"))
