"""Registers the segmentation family with :mod:`unrolled.core.registry` (entry point ``segmentation`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family("segmentation", "unrolled.segmentation", "dense CRF mean-field inference on images and CRF-RNN"))
