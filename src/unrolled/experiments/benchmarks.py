"""Side-by-side benchmarks (``unrolled benchmark NAME``), reported as ratios measured in one run.

Families register theirs into :data:`unrolled.core.registry.BENCHMARKS` (re-exported here).
"""

from __future__ import annotations

from unrolled.core.registry import BENCHMARKS, Benchmark

__all__ = ["BENCHMARKS", "Benchmark"]
