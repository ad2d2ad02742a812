"""Names of the reproducible experiments, for ``unrolled reproduce NAME``.

Each family's experiments register themselves (``<prefix>_registry`` modules of
this package, imported by the family's ``registration`` module) into
:data:`unrolled.core.registry.EXPERIMENTS`, which this module re-exports.
"""

from __future__ import annotations

from unrolled.core.registry import EXPERIMENTS, Experiment

__all__ = ["EXPERIMENTS", "Experiment"]
