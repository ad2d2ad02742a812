"""Registers the graph family with :mod:`unrolled.core.registry` (entry point ``graph`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family(
    "graph", "unrolled.graph",
    "blind deconvolution of graph diffusion (source localization): Y = H X, H a graph filter (SLoG-Net)", ("admm",),
))

import unrolled.experiments.slognet_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
