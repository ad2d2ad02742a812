"""Registers the imaging family with :mod:`unrolled.core.registry` (entry point ``imaging`` in ``pyproject.toml``)."""

from __future__ import annotations

from unrolled.core.registry import Family, register_family

FAMILY = register_family(Family("imaging", "unrolled.imaging", "images through matrix-free operators: compressive MRI (ADMM-CSNet) and blind deblurring (DUBLID)", ("admm_cs", "hqs_blind_deblur")))
import unrolled.imaging.csmri_registration  # noqa: E402,F401
import unrolled.imaging.deblur_registration  # noqa: E402,F401
